"""A study that adapts to its corpus: subsets spread over all of it, ladders sized by a FLOPs budget,
the name from the corpus, and a selection that machine load cannot change."""

import math
import re

import pytest

from apcscale.sweep.design import DesignConfig, choose_subsets, corpus_name, design_grid, family
from apcscale.sweep.planner import build_plan
from apcscale.sweep.probe import ProbeResult
from apcscale.sweep.recipe import SweepRecipe
from apcscale.utils.schema import RecipeError, from_dict


def eleven_subsets(d0=1000, utts_per_frame=1 / 300):
    """d0..d10, each twice the one before (as preparation cuts them)."""
    return {f"d{k}": {"frames": d0 * 2**k, "utterances": max(1, int(d0 * 2**k * utts_per_frame))} for k in range(11)}


def test_default_study_uses_subsets_spread_over_all_eleven():
    subsets = eleven_subsets()
    chosen, notes = choose_subsets(subsets, DesignConfig(min_subset_frames=3000), step=1)
    frames = [subsets[s]["frames"] for s in chosen]
    assert chosen[-1] == "d10"  # all of the training audio
    assert math.log10(frames[-1] / frames[0]) == pytest.approx(
        2.0, abs=0.16
    )  # two decades, as near as the ladder allows
    assert all(b / a == 2 for a, b in zip(frames, frames[1:]))  # about 2x apart
    assert chosen == [f"d{k}" for k in range(3, 11)]  # d3 is 2.1 decades below d10, d4 1.8
    # every other subset when asked: still from the largest, still two decades
    chosen4, _ = choose_subsets(subsets, DesignConfig(min_subset_frames=3000), step=2)
    assert chosen4[-1] == "d10" and chosen4 == ["d4", "d6", "d8", "d10"]
    # a corpus too small for two decades says so, and still takes all of it
    small = {k: v for k, v in eleven_subsets(d0=100).items()}
    chosen_s, notes_s = choose_subsets(small, DesignConfig(min_subset_frames=3000), step=1)
    assert chosen_s[-1] == "d10" and any("less than the 2 wanted" in n for n in notes_s)
    assert any("left out" in n for n in notes_s)


def fake_count(arch, shape):
    n = (8 if arch == "lstm" else 12) * shape["width"] ** 2 * shape["depth"]
    return {"N": n, "flops_per_frame": 6.0 * n}


def cap(D):
    return int(min(max(10 * D, 100_000), 1_000_000))


def test_ladders_grow_with_the_budget_and_span_two_decades():
    subsets = eleven_subsets()
    kw = dict(auto_subsets=True, fixed_subsets=[], seeds=[0], count=fake_count, cap_frames=cap)
    archs = {"lstm": "auto", "transformer": "auto"}
    small = design_grid(archs, subsets, DesignConfig(), budget_flops=2e12, **kw)
    large = design_grid(archs, subsets, DesignConfig(), budget_flops=2e14, **kw)
    assert small.flops <= 2e12 and large.flops <= 2e14
    for d in (small, large):
        for arch, ladder in d.ladders.items():
            ns = [fake_count(arch, s)["N"] for s in ladder]
            assert ns == sorted(ns) and len(ns) >= 3
    top = lambda d, a: fake_count(a, d.ladders[a][-1])["N"]  # noqa: E731
    assert top(large, "lstm") > top(small, "lstm") and top(large, "transformer") > top(small, "transformer")
    # the top rung never exceeds what the data supports (N <= frames of all training data)
    huge = design_grid(archs, subsets, DesignConfig(), budget_flops=1e20, **kw)
    assert top(huge, "lstm") <= subsets["d10"]["frames"]
    ns = [fake_count("lstm", s)["N"] for s in huge.ladders["lstm"]]
    assert math.log10(ns[-1] / ns[0]) >= 2.0 - 0.35
    # the same inputs, the same design (nothing here reads a clock)
    again = design_grid(archs, subsets, DesignConfig(), budget_flops=2e12, **kw)
    assert again.ladders == small.ladders and again.subsets == small.subsets
    with pytest.raises(RecipeError, match="budget"):
        design_grid(archs, subsets, DesignConfig(), budget_flops=1e6, **kw)


def test_families_are_valid_models():
    from apcscale.models.config import ModelConfig

    for arch in ("lstm", "transformer"):
        shapes = family(arch)
        assert len(shapes) >= 10
        for s in shapes:
            from_dict(ModelConfig, {"arch": arch, **s}).validate()


def test_corpus_names():
    assert corpus_name("/data/speechocean762") == "speechocean762"
    assert corpus_name("/data/mycorpus/recordings/") == "mycorpus"
    assert corpus_name("/tmp/a b(c)") == "a-b-c"


def auto_recipe(manifest, budget=3e11):
    return from_dict(
        SweepRecipe,
        {
            "name": "auto",
            "data": {
                "manifest": str(manifest),
                "crop_frames": 64,
                "batch_size": 16,
                "num_workers": 0,
                "eval_crop_frames": 200,
            },
            "grid": {"models": {"lstm": "auto", "transformer": "auto"}, "subsets": "auto"},
            "design": {"spread_seeds": [1], "min_subset_frames": 2000},
            "train_budget": {"epochs": 5, "min_frames": 50_000, "max_frames": 200_000},
            "stopping": {"enabled": True},
            "budget": {"flops": budget},
            "trainer": {"accelerator": "cpu"},
        },
    )


def test_the_same_recipe_selects_the_same_runs_on_a_busy_or_an_idle_machine(prepared_fsdd, tmp_path, monkeypatch):
    """The probe of a busy machine measures a third of the idle rate: the plan's runs are the same."""

    def probe(rate):
        def fn(model, feature_dim, batches, *, steps, threads, device="cpu"):
            return ProbeResult(rate, 3 * rate, device, threads)

        return fn

    recipe = auto_recipe(prepared_fsdd)
    kw = dict(capacity={"cpus": 2, "gpus": 0}, log=lambda *a: None)
    monkeypatch.setenv("APCSCALE_CACHE", str(tmp_path / "idle"))  # a fresh probe cache each time
    idle = build_plan(recipe, prepared_fsdd, probe_fn=probe(300_000.0), **kw)
    monkeypatch.setenv("APCSCALE_CACHE", str(tmp_path / "busy"))
    busy = build_plan(recipe, prepared_fsdd, probe_fn=probe(100_000.0), **kw)
    assert [r.run_id for r in idle.runs] == [r.run_id for r in busy.runs]
    assert not idle.backlog and not busy.backlog
    rates = lambda plan: {v["train_frames_per_s"] for v in plan.probe["sizes"].values()}  # noqa: E731
    assert rates(idle) == {300_000.0} and rates(busy) == {100_000.0}  # the probes differed, the selection did not
    # what it chose, and why, is in the plan's notes: the subsets with their minutes and the dev split
    notes = "\n".join(idle.notes)
    assert "subsets:" in notes and re.search(r"\b\d+ whole speakers? held out", notes) and "lstm:" in notes
    # the spread seed runs on all the data only
    spread = [r for r in idle.runs if r.seed == 1]
    assert spread and {r.subset for r in spread} == {max(idle.runs, key=lambda r: r.D).subset}
    assert all(r.recipe["stopping"]["enabled"] for r in idle.runs)


def test_an_auto_ladder_needs_a_flops_budget(prepared_fsdd):
    recipe = auto_recipe(prepared_fsdd)
    recipe.budget.flops = None
    recipe.budget.cpu_hours = 0.1
    with pytest.raises(RecipeError, match="budget.flops"):
        build_plan(recipe, prepared_fsdd, probe=False, capacity={"cpus": 2, "gpus": 0}, log=lambda *a: None)


def test_searcher_ledger_counts_planned_hours_not_measured_seconds():
    pytest.importorskip("ray")
    from apcscale.sweep.searcher import PlanSearcher

    meta = [
        {"run_id": f"r{i}", "cpus": 1.0, "gpus": 0.0, "workers": 1, "planned_flops": 100.0, "est_seconds": 3600.0}
        for i in range(3)
    ]
    results = []
    for seconds in (10.0, 100_000.0):  # an idle and a very busy machine
        s = PlanSearcher(meta[:2], meta[2:], {"cpu_hours": 2.5}, common={})
        s.suggest("a")
        s.suggest("b")
        s.on_trial_complete("a", {"flops": 50.0, "time_total_s": seconds})
        s.on_trial_complete("b", {"flops": 50.0, "time_total_s": seconds})
        nxt = s.suggest("c")
        results.append(nxt["run_id"] if isinstance(nxt, dict) else nxt)
    assert results == ["r2", "r2"]  # each ended run counts half its planned hour, however long it took
