"""The laws of a sweep: the compute frontier L(C) (all runs and per architecture) and L(N, D)
per architecture, each fitted with bootstrap intervals; errors are reported, not raised."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd



def frontier_fit(curves: dict[str, tuple[np.ndarray, np.ndarray]], *, sizes: dict[str, float] | None = None,
                 bootstrap: int = 200) -> dict[str, Any]:
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
    out.update({
        "alpha": float(p[alpha_key]), "alpha_interval": list(fit.intervals.get(alpha_key, (math.nan, math.nan))),
        "L_inf": float(p[floor_key]), "L_inf_interval": list(fit.intervals.get(floor_key, (math.nan, math.nan))),
        "L_inf_identifiable": bool(fit.identifiable.get(floor_key, True)),
        "C_c": float(p[scale_key]) if scale_key else math.nan, "fit": fit,
        "segments": _segments(fr),
    })
    return out


def _segments(fr) -> list[dict[str, Any]]:
    """The frontier's segments as plain records (run id, compute range, points) for fit.json."""
    import dataclasses

    out = []
    for s in getattr(fr, "segments", None) or []:
        d = dataclasses.asdict(s) if dataclasses.is_dataclass(s) else dict(s)
        out.append({k: (str(v) if k == "run_id" else v.item() if isinstance(v, np.generic) else v)
                    for k, v in d.items()})
    return out


def joint_fit(selection: pd.DataFrame, arch: str) -> dict[str, Any]:
    from apcscale.scaling import fit_joint

    sel = selection[selection["arch"] == arch]
    if sel["N"].nunique() < 2 or sel["D"].nunique() < 2:
        return {"error": f"{arch}: L(N, D) needs at least 2 sizes and 2 data sizes with settled losses"}
    try:
        fit = fit_joint(sel["N"].to_numpy(float), sel["D"].to_numpy(float), sel["median_min_dev_loss"].to_numpy(float),
                        law="droppo", bootstrap=200)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"fit": fit, "params": fit.params, "intervals": {k: list(v) for k, v in fit.intervals.items()}}


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
