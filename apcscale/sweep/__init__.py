"""Budget-aware scaling sweeps on Ray Tune with frontier pruning.

    recipe.py     the sweep recipe (YAML schema)
    plan.py       grid -> runs with recipes, counts, cost estimates (throughput probe), budget fit, order
    policy.py     frontier pruning: curves in, decisions out (no Ray)
    replay.py     the policy replayed over the curves of a finished sweep
    searcher.py   the plan as a Tune Searcher (and budget saved by pruning -> backlog runs)
    scheduler.py  the policy as a Tune TrialScheduler; ASHA with the same log, for comparison
    callback.py   Lightning -> Tune reports at every evaluation, with the run's extrapolation
    trainable.py  one Tune trial = one training run, resumable from its checkpoint
    status.py     the driver's part of a run's status (a trial Tune gave up on: failed)
    lock.py       the sweep directory's lock, held by the running driver
    runner.py     the Tuner: resources, storage, retries, --resume, --address
    progress.py   live table in the terminal
    results.py    tidy tables, fits, plots, report

`python -m apcscale.recipes.sweep` runs a recipe. Only the framework-free parts
are imported here; the Ray-facing modules import Ray when they are imported.
"""

from apcscale.sweep.plan import Plan, PlannedRun
from apcscale.sweep.planner import build_plan
from apcscale.sweep.policy import Decision, Envelope, FrontierPolicy, PolicyConfig
from apcscale.sweep.recipe import SweepRecipe, load_sweep_recipe

__all__ = [
    "SweepRecipe",
    "load_sweep_recipe",
    "Plan",
    "PlannedRun",
    "build_plan",
    "FrontierPolicy",
    "PolicyConfig",
    "Decision",
    "Envelope",
]
