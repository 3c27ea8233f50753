"""The laws of a sweep: the compute frontier L(C) (all runs and per architecture) and L(N, D)
per architecture, each fitted with bootstrap intervals; errors are reported, not raised."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def frontier_fit(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], *, sizes: dict[str, float] | None = None, bootstrap: int = 200
) -> dict[str, Any]:
    """The compute-efficient frontier of a set of curves and its fit L(C) = L_inf + (C_c/C)^alpha_C.

    With the runs' sizes, the fit leaves out the stretches of the envelope formed by the smallest
    or the largest model (there a smaller or larger model would likely have done better)."""
    from apcscale.scaling import compute_frontier

    if len(curves) < 2:
        return {"error": f"{len(curves)} curve(s): a frontier needs at least 2 runs"}
    try:
        fr = compute_frontier(curves, sizes={k: v for k, v in (sizes or {}).items() if k in curves} or None)
        fr.fit_law(bootstrap=bootstrap)
    except Exception as exc:  # FitError and friends: reported, not raised
        return {"error": f"{type(exc).__name__}: {exc}"}
    fit = getattr(fr, "fit", None)
    out: dict[str, Any] = {"frontier": fr}
    if fit is None:
        out["error"] = "the frontier could not be fitted"
        return out
    p = fit.params
    alpha_key = next(k for k in p if k.startswith("alpha"))
    floor_key = fit.law_obj.floor if getattr(fit, "law_obj", None) is not None else "L_inf"
    scale_key = next((k for k in p if k not in (alpha_key, floor_key)), None)
    out.update(
        {
            "alpha": float(p[alpha_key]),
            "alpha_interval": list(fit.intervals.get(alpha_key, (math.nan, math.nan))),
            "L_inf": float(p[floor_key]),
            "L_inf_interval": list(fit.intervals.get(floor_key, (math.nan, math.nan))),
            "L_inf_identifiable": bool(fit.identifiable.get(floor_key, True)),
            "C_c": float(p[scale_key]) if scale_key else math.nan,
            "fit": fit,
            "segments": _segments(fr),
        }
    )
    return out


def _segments(fr) -> list[dict[str, Any]]:
    """The frontier's segments as plain records (run id, compute range, points) for fit.json."""
    import dataclasses

    out = []
    for s in getattr(fr, "segments", None) or []:
        d = dataclasses.asdict(s) if dataclasses.is_dataclass(s) else dict(s)
        out.append(
            {k: (str(v) if k == "run_id" else v.item() if isinstance(v, np.generic) else v) for k, v in d.items()}
        )
    return out


def _joint_arrays(sel: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X = np.stack([sel["N"].to_numpy(float), sel["D"].to_numpy(float)], axis=1)
    return X, sel["loss"].to_numpy(float), sel["lo"].to_numpy(float), sel["hi"].to_numpy(float)


def _fit_droppo(bootstrap: int, level: float = 0.9):
    from apcscale.scaling import fit_joint

    def fit(X, y, *, lo=None, hi=None):
        return fit_joint(X[:, 0], X[:, 1], y, law="droppo", bootstrap=bootstrap, level=level, lo=lo, hi=hi)

    return fit


def joint_fit(selection: pd.DataFrame, arch: str, *, bootstrap: int = 200) -> dict[str, Any]:
    """L(N, D) of one architecture on its selected points: exact where converged, intervals where not."""
    sel = selection[(selection["arch"] == arch) & selection["in_fit"].astype(bool)]
    if sel["N"].nunique() < 2 or sel["D"].nunique() < 2:
        return {"error": f"{arch}: L(N, D) needs at least 2 sizes and 2 data sizes with a point"}
    n_exact = int((sel["lo"] >= sel["hi"]).sum())
    if n_exact < 6:
        return {
            "error": f"{arch}: only {n_exact} converged points (at least 6 needed; {len(sel) - n_exact} "
            "more are intervals from runs that did not converge or were stopped)"
        }
    X, y, lo, hi = _joint_arrays(sel)
    try:
        fit = _fit_droppo(bootstrap)(X, y, lo=lo, hi=hi)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    kinds = sel["kind"].value_counts().to_dict()
    return {
        "fit": fit,
        "params": fit.params,
        "intervals": {k: list(v) for k, v in fit.intervals.items()},
        "points": {str(k): int(v) for k, v in kinds.items()},
    }


def holdout_checks(selection: pd.DataFrame, arch: str, *, bootstrap: int = 100, level: float = 0.9) -> dict[str, Any]:
    """The law refitted without the largest model rung (and, separately, the largest subset), and its
    predictions of the runs it did not see (apcscale.scaling.checks.holdout)."""
    from apcscale.scaling.checks import holdout

    sel = selection[(selection["arch"] == arch) & selection["in_fit"].astype(bool)].reset_index(drop=True)
    out: dict[str, Any] = {}
    if sel.empty:
        return {"error": f"{arch}: no points"}
    X, y, lo, hi = _joint_arrays(sel)
    labels = [f"N {_si(n)} D {_si(d)}" for n, d in zip(sel["N"], sel["D"])]
    for name, col in (("largest_N", "N"), ("largest_D", "D")):
        values = sorted(sel[col].unique())
        if len(values) < 3:
            out[name] = {"error": f"{len(values)} distinct {col}: holding out the largest leaves too few"}
            continue
        held = (sel[col] == values[-1]).to_numpy()
        try:
            out[name] = holdout(_fit_droppo(bootstrap, level), X, y, lo, hi, held, level=level, labels=labels)
        except Exception as exc:
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def frontier_holdout(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    sizes: dict[str, float],
    *,
    bootstrap: int = 100,
    level: float = 0.9,
) -> dict[str, Any]:
    """The frontier fitted without the runs of the largest model, against the envelope of all runs at
    the compute where that model was on it (does L(C) extrapolate to a larger model?)."""
    from apcscale.scaling import compute_frontier
    from apcscale.scaling.checks import _prediction_band

    if not sizes:
        return {"error": "no model sizes"}
    top = max(sizes[r] for r in curves if r in sizes)
    rest = {r: c for r, c in curves.items() if sizes.get(r) != top}
    try:
        full = compute_frontier(curves, sizes={k: v for k, v in sizes.items() if k in curves})
        part = compute_frontier(rest, sizes={k: v for k, v in sizes.items() if k in rest})
        fit = part.fit_law(bootstrap=bootstrap, level=level)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    seg = [(c, l) for c, l, r in full.envelope if sizes.get(r) == top and c > part.envelope[-1][0]]
    if not seg:
        return {"error": "the largest model never leads the envelope beyond the others' compute"}
    C = np.array([c for c, _ in seg])
    L = np.array([l for _, l in seg])
    mid, plo, phi = _prediction_band(fit, C[:, None], level)
    err = mid / L - 1.0
    return {
        "n_points": int(len(C)),
        "C_range": [float(C.min()), float(C.max())],
        "median_abs_error": float(np.median(np.abs(err))),
        "max_abs_error": float(np.max(np.abs(err))),
        "coverage": float(np.mean((L >= plo) & (L <= phi))),
        "horizon": float(C.max() / part.envelope[-1][0]),
        "level": level,
    }


def shared_floor(selection: pd.DataFrame, level: float = 0.95) -> dict[str, Any]:
    """Droppo & Elibol's one irreducible loss for every architecture, tested (scaling.checks)."""
    from apcscale.scaling.checks import shared_floor_test
    from apcscale.scaling.laws import Droppo

    parts = {}
    for arch, sel in selection[selection["in_fit"].astype(bool)].groupby("arch"):
        if sel["N"].nunique() >= 2 and sel["D"].nunique() >= 2 and int((sel["lo"] >= sel["hi"]).sum()) >= 6:
            X, y, lo, hi = _joint_arrays(sel)
            parts[str(arch)] = (Droppo(), X, y, lo, hi)
    if len(parts) < 2:
        return {"error": "needs at least two architectures with 6 converged L(N, D) points each"}
    try:
        return shared_floor_test(parts, level=level)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _si(x: float) -> str:
    from apcscale.sweep.plan import _si as si

    return si(x)


def _jsonable_fit(entry: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in entry.items():
        if k in ("frontier",):
            continue
        if k == "fit" and v is not None:
            out["fit"] = v.to_dict()
        else:
            out[k] = v
    return out


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


__all__ = ["frontier_fit", "joint_fit"]
