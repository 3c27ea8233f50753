"""Training until converged: the stopping rule on scripted curves, the cooldown it starts, and a real
run on FSDD that stops itself and says so."""

import math

import pytest

from apcscale.train.budget import BudgetConfig, Clock
from apcscale.train.stopping import EarlyStopping, StoppingConfig, cooldown_end, cooldown_points, plateaued


def test_plateau_after_patience_evaluations_without_improvement():
    curve = [1.0, 0.8, 0.7, 0.65, 0.64, 0.66, 0.65]
    # best before the last 3 is 0.65; none of 0.64, 0.66, 0.65 is below 0.65 * (1 - 0.02)
    assert plateaued(curve, patience=3, min_delta=0.02)
    assert not plateaued(curve[:-1], patience=3, min_delta=0.02)  # 0.64 < 0.7 * 0.98 within the window
    assert not plateaued(curve, patience=3, min_delta=0.0)  # any improvement counts with min_delta 0: 0.64 < 0.65
    assert not plateaued([0.5, 0.5, 0.5], patience=3, min_delta=0.01)  # fewer than patience + 1 evaluations
    assert plateaued([0.5, math.nan, math.nan, math.nan], patience=3, min_delta=0.01)  # NaN is no improvement


def test_a_slow_improver_is_never_stopped():
    # a power law with a small exponent: 0.4% better at each log-spaced evaluation, for 40 evaluations
    curve = [0.3 + 0.2 * (1.25**i) ** -0.08 for i in range(40)]
    gains = [1 - b / a for a, b in zip(curve, curve[1:])]
    assert min(gains) > 0.0009 and max(gains) < 0.01
    assert not any(plateaued(curve[: i + 1], patience=3, min_delta=0.002) for i in range(len(curve)))
    # the same curve flattening at its end is stopped 3 evaluations after its last gain
    flat = curve + [curve[-1]] * 4
    fired = [i for i in range(len(flat)) if plateaued(flat[: i + 1], patience=3, min_delta=0.002)]
    assert fired and fired[0] == len(curve) - 1 + 3


def test_cooldown_after_the_rule_fires():
    assert cooldown_end(800, "wsd", 0.2) == 1000  # the cooldown is the last 20% of the now shorter run
    assert cooldown_end(800, "constant", 0.2) == 800  # no cooldown: stop at once
    assert cooldown_points(800, 1000, 3) == [850, 900, 950, 1000]
    from apcscale.models.optim import OptimConfig, lr_factor

    clock = Clock(unit="frames", total=10_000, points=[0, 100, 300, 800, 2000, 5000, 10_000])
    clock.mark_evaluated(800, 0)
    clock.end_at(1000, cooldown_points(800, 1000, 3))
    assert clock.total == 1000 and clock.points == [0, 100, 300, 800, 850, 900, 950, 1000]
    assert clock.next_index == 4 and not clock.eval_due(820, 0) and clock.eval_due(850, 0)
    cfg = OptimConfig(schedule="wsd", warmup=0.05, decay=0.2)
    assert lr_factor(clock.fraction(799, 0), cfg) == 1.0  # the stable phase up to the rule
    assert lr_factor(clock.fraction(900, 0), cfg) == pytest.approx(1 - math.sqrt(0.5))  # half-way down
    assert lr_factor(clock.fraction(1000, 0), cfg) == pytest.approx(0.0, abs=1e-12)


class _FakeTrainer:
    sanity_checking = False
    global_step = 0
    should_stop = False

    class state:
        fn = "fit"


class _FakeModule:
    def __init__(self, total):
        self.clock = Clock(unit="frames", total=total, points=list(range(0, total + 1, 100)))
        self.frames_seen = 0
        self.last_eval = {}


def test_the_callback_ends_the_run_after_a_cooldown_and_records_why():
    cb = EarlyStopping(StoppingConfig(enabled=True, patience=2, min_delta=0.01), "wsd", 0.2)
    module, trainer = _FakeModule(10_000), _FakeTrainer()
    losses = [0.9, 0.7, 0.6, 0.59, 0.6, 0.6, 0.6]
    for i, loss in enumerate(losses):
        module.frames_seen = 100 * (i + 1)
        module.clock.mark_evaluated(module.frames_seen, 0)
        module.last_eval = {"dev/loss": loss}
        cb.on_validation_end(trainer, module)
        if module.stopping_state["fired"]:
            break
    st = module.stopping_state
    # at 500 frames 0.59 is still 1% below the best before it (0.6); at 600 the window [0.6, 0.6] does not
    # improve on 0.59: the rule fires there, and the run ends after a cooldown over the last 20%
    assert st["fired"] and st["fired_at"] == 600 and st["ends_at"] == 750
    assert module.clock.total == 750 and not trainer.should_stop


def test_budget_caps_scale_with_the_subset():
    b = BudgetConfig(epochs=10, min_frames=1000, max_frames=50_000)
    assert b.resolve(50) == ("frames", 1000)
    assert b.resolve(2000) == ("frames", 20_000)
    assert b.resolve(1_000_000) == ("frames", 50_000)
    from apcscale.utils.schema import RecipeError

    with pytest.raises(RecipeError, match="min_frames"):
        BudgetConfig(frames=100, min_frames=10).validate()


@pytest.mark.slow
def test_a_run_on_fsdd_stops_itself_once_converged(prepared_fsdd, tmp_path):
    from apcscale.train.config import TrainRecipe
    from apcscale.train.run import run_training
    from apcscale.utils.schema import from_dict

    recipe = from_dict(
        TrainRecipe,
        {
            "name": "es",
            "output_dir": str(tmp_path),
            "data": {
                "manifest": str(prepared_fsdd),
                "subset": "d2",
                "crop_frames": 64,
                "batch_size": 16,
                "num_workers": 0,
                "eval_crop_frames": 200,
            },
            "model": {"arch": "lstm", "width": 32, "depth": 1},
            "optim": {"lr": 1e-2, "schedule": "wsd", "warmup": 0.02, "decay": 0.2},
            "budget": {"epochs": 1000, "min_frames": 100_000, "max_frames": 1_500_000},
            "eval": {"points": 30, "first": 0.005},
            "stopping": {"enabled": True, "patience": 2, "min_delta": 0.005},
            "trainer": {"accelerator": "cpu", "checkpoint": False},
        },
    )
    res = run_training(recipe, progress=False)
    s = res.summary
    assert s["end"] == "stopping_rule" and s["converged"] is True
    fired, until = s["stopping"]["fired_at"], s["stopping"]["cooldown_until"]
    assert until == math.ceil(fired / 0.8) and s["frames"] >= until and s["frames"] < 1_500_000
    losses = [p["dev/loss"] for p in res.curve]
    assert min(losses) < 0.8 * losses[0]  # it learned before it stopped
    assert res.curve[-1]["lr"] < 0.05 * 1e-2  # and it ended cooled down
