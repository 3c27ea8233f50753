"""Scaling laws of loss against model size, data and compute: fits, intervals, frontier, extrapolation.

Pure numpy/scipy (matplotlib for plots); imports neither torch nor ray, so it
runs anywhere a table of runs can be read.

    from apcscale.scaling import fit_joint, compute_frontier, derived_statements
    fit = fit_joint(N, D, loss, law="droppo")        # L_inf + [(N_c/N)^(a_N/a_D) + D_c/D]^a_D
    print(fit.summary())
    frontier = compute_frontier({run: (flops, loss) for run, ...})
    derived_statements(frontier.fit.params["alpha"])  # "Doubling compute cuts the reducible loss by ..."

See docs/scaling.md for the methods and their checks.
"""

from .extrapolate import Prediction, calibration, extrapolate_curve, synthetic_curves
from .fitting import FitResult, Outlier, fit_joint, fit_law, fit_learning_curve, fit_power_law
from .frontier import Frontier, Segment, TrainingCost, compute_frontier, compute_optimal
from .influence import outlier_influence
from .report import fit_by, fit_table
from .statements import derived_statements
from .validate import FitError

__all__ = [
    "FitError",
    "FitResult",
    "Frontier",
    "Outlier",
    "Prediction",
    "Segment",
    "TrainingCost",
    "calibration",
    "compute_frontier",
    "compute_optimal",
    "derived_statements",
    "extrapolate_curve",
    "fit_joint",
    "fit_law",
    "fit_learning_curve",
    "fit_power_law",
    "fit_by",
    "fit_table",
    "outlier_influence",
    "synthetic_curves",
]
