"""Synthetic data from known laws: for tests, benchmarks and trying the fit command without a GPU."""

from __future__ import annotations

import numpy as np
import pandas as pd

# A plausible APC-like truth (Droppo & Elibol's L_inf = 0.306; exponents and scales chosen so that
# two decades of N and D reach from about 3x to 1.2x the floor).
TRUTH = {"L_inf": 0.306, "N_c": 3e4, "D_c": 3e5, "alpha_N": 0.6, "alpha_D": 0.5}


def droppo_loss(N, D, p=TRUTH):
    N, D = np.asarray(N, float), np.asarray(D, float)
    return p["L_inf"] + ((p["N_c"] / N) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / D) ** p["alpha_D"]


def joint_grid(
    n_N: int = 12,
    n_D: int = 12,
    *,
    N_range=(1e5, 1e7),
    D_range=(1e6, 1e8),
    noise: float = 0.01,
    seed: int = 0,
    truth=TRUTH,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Final losses of an n_N x n_D grid of runs, log-spaced, with multiplicative log-normal noise."""
    rng = np.random.default_rng(seed)
    N, D = (a.ravel() for a in np.meshgrid(np.geomspace(*N_range, n_N), np.geomspace(*D_range, n_D)))
    y = droppo_loss(N, D, truth) * np.exp(noise * rng.standard_normal(N.size))
    return N, D, y


def synthetic_sweep(
    n_N: int = 6,
    n_D: int = 5,
    *,
    evals: int = 25,
    noise: float = 0.005,
    seed: int = 0,
    N_range=(1e5, 1e7),
    D_range=(1e6, 1e8),
    truth=TRUTH,
    flops_per_param_frame: float = 6.0,
) -> pd.DataFrame:
    """A sweep table: one row per evaluation of every (N, D) run (one pass over D frames).

    The loss after s frames of a run is the joint law at (N, s) (Kaplan's L(N, S)
    analogue): larger models learn faster from the same data. Columns: run,
    n_params, train_frames, frames, flops, dev/loss.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for N in np.geomspace(*N_range, n_N):
        for D in np.geomspace(*D_range, n_D):
            s = np.geomspace(D / 100, D, evals)
            L = droppo_loss(N, s, truth) * np.exp(noise * rng.standard_normal(evals))
            run = f"N{N:.3g}_D{D:.3g}"
            for si, li in zip(s, L):
                rows.append(
                    {
                        "run": run,
                        "n_params": N,
                        "train_frames": D,
                        "frames": si,
                        "flops": flops_per_param_frame * N * si,
                        "dev/loss": li,
                    }
                )
    return pd.DataFrame(rows)


# Epoch AI's fit of Hoffmann et al.'s law to the 240 Chinchilla runs they recovered (Besiroglu et al. 2024)
EPOCH_HOFFMANN = {"E": 1.82, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


def hoffmann_runs(
    n: int = 240,
    *,
    noise: float = 0.0,
    seed: int = 0,
    truth=EPOCH_HOFFMANN,
    N_range=(7e7, 1.6e10),
    tokens_per_param=(1.0, 100.0),
) -> pd.DataFrame:
    """A table shaped like Chinchilla's: ``n`` runs with N log-uniform in ``N_range`` and D/N log-uniform in
    ``tokens_per_param``, final losses from Hoffmann's law with ``truth`` and multiplicative log-normal noise.
    Columns N, D, loss."""
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(*np.log(N_range), n))
    D = N * np.exp(rng.uniform(*np.log(tokens_per_param), n))
    t = truth
    y = (t["E"] + t["A"] / N ** t["alpha"] + t["B"] / D ** t["beta"]) * np.exp(noise * rng.standard_normal(n))
    return pd.DataFrame({"N": N, "D": D, "loss": y})
