"""Sweep recipes and plans: shipped recipes validate, bad recipes fail before any trial starts,
the budget-aware selection keeps coverage, the order is cheap first, the searcher redeploys savings."""

import json
from pathlib import Path

import pytest

from apcscale.recipes.sweep import main as sweep_main
from apcscale.sweep.budget import select_runs
from apcscale.sweep.plan import Plan, PlannedRun, simulate_makespan
from apcscale.sweep.planner import build_plan, order_runs
from apcscale.sweep.recipe import ComputeBudget, SweepRecipe, load_sweep_recipe
from apcscale.utils.schema import RecipeError, from_dict

RECIPES = Path(__file__).resolve().parents[1] / "apcscale" / "recipes" / "configs"  # the shipped recipes


@pytest.mark.parametrize("path", sorted(RECIPES.glob("sweep_*.yaml")), ids=lambda p: p.stem)
def test_shipped_sweep_recipes_validate(path):
    recipe = load_sweep_recipe(path)
    assert isinstance(recipe, SweepRecipe) and recipe.grid.models
    first = path.read_text().splitlines()[0]
    assert first.startswith("# "), "the first line describes the recipe (shown by --list)"


def small_recipe(manifest, **over):
    data = {
        "name": "t",
        "data": {
            "manifest": str(manifest),
            "crop_frames": 64,
            "batch_size": 16,
            "num_workers": 0,
            "eval_crop_frames": 200,
        },
        "grid": {
            "models": {
                "lstm": [{"width": 8, "depth": 1}, {"width": 32, "depth": 2}],
                "transformer": [{"width": 8, "depth": 1, "heads": 1}, {"width": 32, "depth": 2, "heads": 1}],
            },
            "subsets": ["d1", "d7"],
        },
        "train_budget": {"frames": 20_000},
        "eval": {"points": 6},
        "trainer": {"accelerator": "cpu"},
        "resources": {"cpus": 1},
    }
    for key, value in over.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return from_dict(SweepRecipe, data)


def write_recipe(tmp_path, recipe_text):
    path = tmp_path / "sweep_bad.yaml"
    path.write_text(recipe_text)
    return path


BASE = """# a test sweep
name: bad
data: {{manifest: {manifest}, crop_frames: 64, batch_size: 16, num_workers: 0}}
grid:
  models: {models}
  subsets: {subsets}
train_budget: {{frames: 20000}}
eval: {{points: 6}}
trainer: {{accelerator: cpu}}
{extra}
"""


@pytest.mark.parametrize(
    "models, subsets, extra, message",
    [
        (
            "{rnn: [{width: 8, depth: 1}]}",
            "[d1, d7]",
            "",
            r"grid\.models\.rnn: unknown architecture 'rnn' \(choose from lstm, gru, transformer\)",
        ),
        (
            "{gru: [{width: 8, depth: 1, heads: 2}]}",
            "[d1, d7]",
            "",
            r"grid\.models\.gru: size 8x1: only transformers have heads",
        ),
        (
            "{lstm: [{width: 8, depth: 1}, {width: 16, depth: 1}]}",
            "[d1, d99]",
            "",
            r"grid\.subsets\[1\]: the manifest has no subset 'd99' \(it has d0 .*d7",
        ),
        (
            "{lstm: [{width: 8, depth: 1}, {width: 16, depth: 1}]}",
            "[d1, d7]",
            "budget: {flops: 1000}",
            r"budget: the smallest plan .* needs .*FLOP of 1kFLOP",
        ),
        (
            "{lstm: [{width: 8, depth: 1}, {width: 16, depth: 1}]}",
            "[d1, d7]",
            "rules: [{match: {width: 16}, set: {optim.lr: fast}}]",
            r"rules\[0\]: for run lstm-w16-d1-d1-s0: .*optim\.lr: expected a number, got 'fast'",
        ),
        (
            "{transformer: [{width: 48, depth: 1, heads: 5}]}",
            "[d1, d7]",
            "",
            r"grid\.models\.transformer\[0\]: size 48x1: .*heads: width 48 is not divisible by 5 heads",
        ),
    ],
)
def test_bad_recipes_fail_before_any_trial_starts(tmp_path, prepared_fsdd, capsys, models, subsets, extra, message):
    import re

    import ray

    path = write_recipe(tmp_path, BASE.format(manifest=prepared_fsdd, models=models, subsets=subsets, extra=extra))
    ray_before = ray.is_initialized()
    code = sweep_main([str(path), "--output", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().out
    assert code == 2
    assert re.search(message, " ".join(err.split())), err
    # nothing was planned, nothing started: no plan, no Tune experiment, no run directory, no Ray
    sweep = tmp_path / "out" / "bad"
    assert not (sweep / "plan.json").exists() and not (sweep / "tune").exists() and not (sweep / "runs").exists()
    assert ray.is_initialized() == ray_before


def test_plan_counts_and_costs(prepared_fsdd):
    from apcscale.models.config import ModelConfig
    from apcscale.models.counting import count_parameters
    from apcscale.models.net import APCNet

    plan = build_plan(small_recipe(prepared_fsdd), prepared_fsdd, capacity={"cpus": 2, "gpus": 0}, log=lambda *a: None)
    assert len(plan.runs) == 8 and not plan.backlog
    for r in plan.runs:
        cfg = ModelConfig(**{k: v for k, v in r.recipe["model"].items()})
        assert r.N == count_parameters(APCNet(40, cfg)).n_context
        assert r.planned_frames == 20_000
        assert r.planned_flops == pytest.approx(r.flops_per_frame * 20_000)
        assert r.est_seconds > 0 and r.recipe["data"]["subset"] == r.subset
    # cheap first; at equal cost, more data first
    flops = [float(f"{r.planned_flops:.2g}") for r in plan.runs]
    assert flops == sorted(flops)
    first_two = plan.runs[:2]
    assert first_two[0].label == first_two[1].label and first_two[0].D > first_two[1].D
    assert plan.makespan() > 0


def test_a_gru_grid_plans_with_frame_batches_and_shows_the_padding(prepared_fsdd):
    from apcscale.models.config import ModelConfig
    from apcscale.models.counting import count_parameters
    from apcscale.models.net import APCNet
    from apcscale.sweep.display import plan_summary

    recipe = small_recipe(
        prepared_fsdd,
        **{
            "grid.models": {"gru": [{"width": 8, "depth": 1}, {"width": 16, "depth": 2}]},
            "data.batch_size": None,
            "data.batch_frames": 1024,
        },
    )
    plan = build_plan(recipe, prepared_fsdd, capacity={"cpus": 2, "gpus": 0}, log=lambda *a: None)
    assert len(plan.runs) == 4 and {r.arch for r in plan.runs} == {"gru"}
    for r in plan.runs:
        assert r.N == count_parameters(APCNet(40, ModelConfig(**r.recipe["model"]))).n_context
        assert r.recipe["data"]["batch_frames"] == 1024 and r.recipe["data"]["batching"] == "bucket"
    assert 1.0 <= plan.probe["executed_per_counted"] < 1.10  # measured on the probe's real batches
    line = next(s for s in plan_summary(plan) if s.startswith("batches:"))
    assert "bucket, 1,024 frames each" in line and f"{plan.probe['executed_per_counted']:.2f} frames" in line


def run(arch, N, D, seed=0, flops=None, secs=10.0):
    return PlannedRun(
        run_id=f"{arch}-{N}-{D}-{seed}",
        arch=arch,
        width=N,
        depth=1,
        label=f"{arch}-{N}",
        subset=f"s{D}",
        D=D,
        hours=D / 360000,
        seed=seed,
        N=N,
        N_total=N,
        flops_per_frame=6 * N,
        planned_frames=1000,
        planned_flops=flops if flops is not None else 6.0 * N * 1000,
        est_seconds=secs,
        cpus=1,
        gpus=0,
        workers=1,
        recipe={},
    )


def grid(sizes=(1e3, 1e4, 1e5, 1e6), data=(1e3, 1e4, 1e5), seeds=(0,)):
    return [run(a, int(n), int(d), s) for a in ("lstm", "transformer") for n in sizes for d in data for s in seeds]


def test_selection_keeps_two_decades_and_drops_seeds_first():
    runs = grid(seeds=(0, 1))
    total = sum(r.planned_flops for r in runs)
    chosen, backlog, notes = select_runs(runs, ComputeBudget(flops=0.45 * total))
    assert sum(r.planned_flops for r in chosen) <= 0.45 * total
    assert {r.seed for r in chosen} == {0}  # seeds go before any ladder rung
    for arch in ("lstm", "transformer"):
        ns = sorted({r.N for r in chosen if r.arch == arch})
        assert ns[-1] / ns[0] >= 100  # still two decades of N
    ds = sorted({r.D for r in chosen})
    assert ds[-1] / ds[0] >= 100
    assert {r.run_id for r in chosen} | {r.run_id for r in backlog} == {r.run_id for r in runs}
    assert notes and "backlog" in notes[0]


def test_selection_when_everything_fits_and_when_nothing_does():
    runs = grid()
    total = sum(r.planned_flops for r in runs)
    chosen, backlog, _ = select_runs(runs, ComputeBudget(flops=total))
    assert len(chosen) == len(runs) and not backlog
    with pytest.raises(RecipeError, match="budget: the smallest plan"):
        select_runs(runs, ComputeBudget(flops=1.0))
    # a tight budget still fits, with the ladders cut to two rungs each
    chosen, _, _ = select_runs(runs, ComputeBudget(flops=0.02 * total))
    assert sum(r.planned_flops for r in chosen) <= 0.02 * total
    assert all(len({r.N for r in chosen if r.arch == a}) >= 2 for a in ("lstm", "transformer"))


def test_makespan_packs_runs_on_the_cpus():
    runs = [run("lstm", 10, 10, s, secs=10.0) for s in range(4)]
    assert simulate_makespan(runs, cpus=2, gpus=0) == pytest.approx(20.0)
    assert simulate_makespan(runs, cpus=4, gpus=0) == pytest.approx(10.0)


def test_order_cheap_first_more_data_first():
    runs = [run("lstm", 100, 10), run("lstm", 10, 10), run("lstm", 10, 1000), run("lstm", 1000, 5)]
    assert [(r.N, r.D) for r in order_runs(runs, "cheap_first")] == [(10, 1000), (10, 10), (100, 10), (1000, 5)]


def test_searcher_redeploys_saved_compute_to_the_backlog():
    pytest.importorskip("ray")
    from ray.tune.search import Searcher

    from apcscale.sweep.searcher import PlanSearcher

    planned = [run("lstm", 10, 10), run("lstm", 100, 10)]  # 60k + 600k FLOPs
    backlog = [run("lstm", 50, 10)]  # 300k FLOPs
    meta = lambda rs: [{k: v for k, v in r.to_dict().items() if k != "recipe"} for r in rs]  # noqa: E731
    s = PlanSearcher(meta(planned), meta(backlog), {"flops": 700_000.0}, common={"sweep_dir": "x"})
    a = s.suggest("t1")
    b = s.suggest("t2")
    assert (a["run_id"], b["run_id"]) == (planned[0].run_id, planned[1].run_id)
    assert s.suggest("t3") is None  # nothing saved yet, but runs are going: wait
    s.on_trial_complete("t1", {"flops": 60_000.0, "time_total_s": 1.0})
    assert s.suggest("t3") is None  # finished as planned: nothing saved
    s.on_trial_complete("t2", {"flops": 200_000.0, "time_total_s": 1.0})  # pruned at a third of its budget
    c = s.suggest("t3")
    assert c["run_id"] == backlog[0].run_id and s.redeployed == [backlog[0].run_id]
    assert s.suggest("t4") == Searcher.FINISHED
    # its state survives a save/restore (what --resume relies on)
    state = s.get_state()
    s2 = PlanSearcher(meta(planned), meta(backlog), {"flops": 700_000.0}, common={})
    s2.set_state(json.loads(json.dumps(state)))
    assert s2.trials == s.trials and s2.redeployed == s.redeployed


def test_plan_round_trips_through_json(tmp_path, prepared_fsdd):
    plan = build_plan(small_recipe(prepared_fsdd), prepared_fsdd, capacity={"cpus": 2, "gpus": 0}, log=lambda *a: None)
    plan.save(tmp_path / "plan.json")
    again = Plan.load(tmp_path / "plan.json")
    assert [r.to_dict() for r in again.runs] == [r.to_dict() for r in plan.runs]


def test_yaml_off_means_pruning_off(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("grid: {models: {lstm: [{width: 8, depth: 1}]}}\npruning: {policy: off}\n")
    assert load_sweep_recipe(path).pruning.policy == "off"


def test_every_recipe_in_the_docs_is_valid(tmp_path):
    """docs/sweep.md's YAML blocks: the default study's design fields and the annotated example."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "sweep.md").read_text()
    recipes = []
    for i, block in enumerate(b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]):
        path = tmp_path / f"sweep_example_{i}.yaml"
        path.write_text(block)
        recipes.append(load_sweep_recipe(path))
    default, example = recipes
    assert default.name is None and default.grid.subsets == "auto" and default.stopping.enabled
    assert example.name == "my-study" and example.rules and example.pruning.envelope == "arch"


def test_data_twins_are_the_same_recipe_on_more_data(prepared_fsdd):
    recipe = small_recipe(prepared_fsdd, **{"grid.subsets": ["d1", "d4", "d7"]})
    plan = build_plan(recipe, prepared_fsdd, capacity={"cpus": 2, "gpus": 0}, log=lambda *a: None)
    twins = {r.run_id: r.twins for r in plan.runs}
    assert twins["lstm-w8-d1-d1-s0"] == ["lstm-w8-d1-d7-s0", "lstm-w8-d1-d4-s0"]  # largest first
    assert twins["transformer-w32-d2-d4-s0"] == ["transformer-w32-d2-d7-s0"]
    assert twins["lstm-w8-d1-d7-s0"] == []  # all the data: nothing larger
    # a rule that changes one subset's recipe makes those runs no longer twins of the others
    ruled = small_recipe(
        prepared_fsdd,
        **{"grid.subsets": ["d1", "d4", "d7"], "rules": [{"match": {"subset": "d7"}, "set": {"optim.lr": 4e-4}}]},
    )
    plan = build_plan(ruled, prepared_fsdd, capacity={"cpus": 2, "gpus": 0}, log=lambda *a: None)
    assert {r.run_id: r.twins for r in plan.runs}["lstm-w8-d1-d1-s0"] == ["lstm-w8-d1-d4-s0"]
    # found again from the manifest for a plan saved before twins were recorded
    from apcscale.sweep.plan import plan_twins

    for r in plan.runs:
        r.twins = []
    assert plan_twins(plan)["lstm-w8-d1-d1-s0"] == ["lstm-w8-d1-d4-s0"]
