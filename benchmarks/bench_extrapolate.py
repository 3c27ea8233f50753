"""Speed of the learning-curve extrapolation the sweep runs at every evaluation of every run.

    .venv/bin/python benchmarks/bench_extrapolate.py

The calls a sweep makes: 20 synthetic curves, each extrapolated to its end from prefixes of
20%, 50% and 90% of its evaluations (the loop tests/test_scaling_extrapolate.py once timed,
with an assertion that failed on a loaded machine). Printed: the median time per call, and
as a ratio against a baseline measured in the same run on the same prefixes: one plain
`scipy.optimize.curve_fit` of L = a + b x^-c (what a first attempt would do, without the
interval). The goal of issue 3 was < 50 ms per call on 2 cores.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apcscale.scaling import extrapolate_curve, synthetic_curves  # noqa: E402


def _plain_fit(x: np.ndarray, y: np.ndarray) -> None:
    from scipy.optimize import curve_fit

    s = x / x[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            curve_fit(lambda s, a, b, c: a + b * s ** (-c), s, y, p0=(0.5 * y.min(), 0.5 * y.min(), 0.3), maxfev=2000)
        except RuntimeError:
            pass


def main() -> None:
    curves = synthetic_curves(20, seed=9)
    ours, plain = [], []
    for c in curves:
        for frac in (0.2, 0.5, 0.9):
            k = max(int(len(c["x"]) * frac), 3)
            x, y = np.asarray(c["x"][:k], float), np.asarray(c["y"][:k], float)
            t = time.perf_counter()
            extrapolate_curve(x, y, c["x"][-1])
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            _plain_fit(x, y)
            plain.append(time.perf_counter() - t)
    med, base = statistics.median(ours), statistics.median(plain)
    print(
        f"extrapolate_curve: median {med * 1000:.1f} ms per call over {len(ours)} calls "
        f"(20 curves x prefixes of 20/50/90%); goal < 50 ms"
    )
    print(
        f"baseline, one plain curve_fit of a + b x^-c on the same prefixes: median {base * 1000:.2f} ms "
        f"-> the extrapolation costs {med / base:.1f}x the plain fit"
    )


if __name__ == "__main__":
    main()
