"""Wall time of the scaling-law fits and calibration of the learning-curve extrapolation.

    .venv/bin/python benchmarks/bench_fit.py            # about a minute on 2 cores
    .venv/bin/python benchmarks/bench_fit.py --naive    # also time the one-fit-per-replicate loop it replaces
    .venv/bin/python benchmarks/bench_fit.py --table chinchilla.csv   # the thread comparison on your own N, D, loss table

Goals (issue 3, on a 2-core machine): one full joint fit with its initialisation
grid on 250 points < 5 s; 200 bootstrap refits < 60 s; the nominal 80%
extrapolation interval covering 70-90% of held-out outcomes; < 50 ms per
extrapolation. Issue 13: a 240-point Hoffmann fit with 200 bootstrap refits
< 1 s with the default environment: the fit limits BLAS to one thread
(``apcscale.scaling.fitting.BLAS_THREADS``); the first section times it against
the library's default threads, alternating, in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info

from apcscale.scaling import calibration, extrapolate_curve, fit_joint, fitting, synthetic_curves
from apcscale.scaling.fitting import lbfgs
from apcscale.scaling.synthetic import joint_grid


def hoffmann_table(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """240 runs of Hoffmann's law with Epoch AI's fitted parameters (E 1.82, A 482, B 2085, alpha 0.348, beta 0.366),
    N 70M..16B and 1-100 tokens per parameter, 1% noise: the size and shape of their Chinchilla table."""
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(7e7), np.log(1.6e10), 240))
    D = N * np.exp(rng.uniform(np.log(1.0), np.log(100.0), 240))
    y = (1.82 + 482.0 / N**0.348 + 2085.0 / D**0.366) * np.exp(0.01 * rng.standard_normal(240))
    return N, D, y


def bench_threads(table: str | None, repeat: int) -> None:
    if table:
        import pandas as pd

        df = pd.read_csv(table)
        N, D, y, what = df["N"].to_numpy(float), df["D"].to_numpy(float), df["loss"].to_numpy(float), table
    else:
        (N, D, y), what = hoffmann_table(), "synthetic Hoffmann table"
    blas = ", ".join(
        f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info() if i["user_api"] == "blas"
    )
    print(
        f"BLAS threads: Hoffmann fit, {N.size} points ({what}), 200 bootstrap refits; default BLAS: {blas}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    times: dict[str, list[float]] = {"default threads": [], "one thread (the fit's setting)": []}
    for _ in range(repeat):  # alternate, so that the load of the machine hits both alike
        for name, limit in (("default threads", None), ("one thread (the fit's setting)", 1)):
            fitting.BLAS_THREADS = limit
            t = time.perf_counter()
            fit = fit_joint(N, D, y, law="hoffmann", bootstrap=200, delta=1e-3)
            times[name].append(time.perf_counter() - t)
    fitting.BLAS_THREADS = 1
    base = statistics.median(times["default threads"])
    for name, ts in times.items():
        m = statistics.median(ts)
        print(
            f"  {name:32s} median {m:6.3f} s (min {min(ts):.3f}, max {max(ts):.3f}, {len(ts)} runs)  "
            f"{m / base:5.2f}x the default" + ("  [goal < 1 s]" if "one" in name else "")
        )
    p = fit.params
    print(f"  fit: E {p['E']:.4g}, A {p['A']:.4g}, B {p['B']:.4g}, alpha {p['alpha']:.4g}, beta {p['beta']:.4g}")


def _median_time(fn, repeat: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def bench_joint(naive: bool) -> None:
    N, D, y = joint_grid(10, 25, noise=0.01, seed=0)  # 250 runs: 10 model sizes x 25 data sizes, 2 decades each
    print(f"joint L(N, D) on {N.size} points (1% noise), {os.cpu_count()} CPU cores")
    for law in ("droppo", "hoffmann"):
        t_fit, fit = _median_time(lambda: fit_joint(N, D, y, law=law, bootstrap=0))
        t_all, fitb = _median_time(lambda: fit_joint(N, D, y, law=law, bootstrap=200))
        d = fitb.diagnostics
        print(
            f"  {law:9s} full fit (grid of {d['grid_size']} inits + {d['starts']} L-BFGS-B starts + LM polish "
            f"+ floor profile): {t_fit:6.3f} s  [goal < 5 s]"
        )
        print(
            f"  {law:9s} 200 bootstrap refits (runs resampled, batched LM, grid basin check): "
            f"{d['time_intervals_s']:6.3f} s  [goal < 60 s]   (fit + bootstrap: {t_all:.3f} s; "
            f"{d['bootstrap_other_basin']} replicates re-started from another basin, "
            f"{d['bootstrap_unconverged']} unconverged)"
        )
        if naive:
            law_obj, theta = fitb.law_obj, fitb.theta
            U = law_obj.design(np.stack([N, D], 1), fitb.ref).U
            logy = np.log(y)
            lo, hi = law_obj.bounds(logy)
            rng = np.random.default_rng(0)
            t = time.perf_counter()
            for _ in range(10):
                w = np.bincount(rng.integers(0, y.size, y.size), minlength=y.size).astype(float)
                lbfgs(law_obj, theta, U, logy, w, fitb.stats["huber_delta"], lo, hi)
            per = (time.perf_counter() - t) / 10
            print(f"  {law:9s} for comparison, one L-BFGS-B refit per replicate in a loop: {per * 200:6.3f} s per 200")


def bench_extrapolation() -> None:
    print("learning-curve extrapolation (nominal 80% interval; held-out final loss; prefixes 15-70% of the run)")
    fractions = [0.15, 0.3, 0.5, 0.7]
    for family, seed in (("shifted", 101), ("transient", 202)):
        curves = synthetic_curves(250, seed=seed, family=family)
        t = time.perf_counter()
        res = calibration(curves, fractions, level=0.8)
        per = (time.perf_counter() - t) / res["n"]
        by = ", ".join(f"{f:.2f}: {v['coverage']:.3f}" for f, v in res["by_fraction"].items())
        print(
            f"  {family:9s} coverage {res['coverage']:.3f} (reliable only {res['coverage_reliable']:.3f}, "
            f"n={res['n']}, flags {res['flags']}); by prefix {by}; median |log error| "
            f"{res['median_abs_log_error']:.4f}; {per * 1000:.1f} ms per call  [goal 0.70-0.90, < 50 ms]"
        )
    c = synthetic_curves(1, seed=0, n_evals=(200, 200))[0]
    t, _ = _median_time(lambda: extrapolate_curve(c["x"][:150], c["y"][:150], c["x"][-1]), repeat=5)
    print(f"  one call on a 150-point prefix: {t * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--naive", action="store_true", help="also time a plain loop of L-BFGS-B refits")
    parser.add_argument("--table", help="CSV with columns N, D, loss for the thread comparison (default: synthetic)")
    parser.add_argument("--repeat", type=int, default=5, help="fits per thread setting (alternated)")
    args = parser.parse_args()
    bench_threads(args.table, args.repeat)
    bench_joint(args.naive)
    bench_extrapolation()


if __name__ == "__main__":
    main()
