"""Scaling laws as vectorised functions of internal, log-space parameters.

Every law predicts the *log* of the loss, because the fits minimise a Huber
loss on log residuals (Hoffmann et al. 2022). Parameters live in an internal
space where the law is smooth and well scaled:

* the covariates enter as ``u = log(x / x_ref)``, with ``x_ref`` the geometric
  mean of the data, so that amplitudes are of order one;
* positive quantities (irreducible loss, amplitudes) are fitted as logs.

A law evaluates a whole batch of parameter vectors at once: ``theta`` has shape
``(K, P)`` and the result ``(K, n)``. That is what lets the fitter score an
initialisation grid of thousands of points, or run hundreds of bootstrap
refits, in one numpy pass.

Reported ("natural") parameters are the ones of the papers:

=============  ===================================================  ============================
law            formula                                              natural parameters
=============  ===================================================  ============================
power_law      L = L_inf + (x_c / x)^alpha                          L_inf, x_c, alpha
learning_curve L = L_final + (S_c / S)^alpha_S                      L_final, S_c, alpha_S
droppo         L = L_inf + [(N_c/N)^(a_N/a_D) + D_c/D]^a_D          L_inf, N_c, D_c, alpha_N, alpha_D
hoffmann       L = E + A / N^alpha + B / D^beta                     E, A, B, alpha, beta
=============  ===================================================  ============================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# How far below the smallest observed loss the irreducible loss may go: exp(-14)
# ~ 1e-6 of it, i.e. "zero" for every practical purpose. A fit that ends there
# says the data show no floor.
FLOOR_SPAN = 14.0
# How far above the smallest observed loss it may go (noise can put one point
# a little under the true floor).
FLOOR_SLACK = 0.05
EXPONENT_BOUNDS = (1e-3, 4.0)
AMPLITUDE_BOUND = 60.0

_EXPONENTS = np.array([0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.1, 1.6])
_FLOOR_FRACTIONS = np.array([0.0, 0.2, 0.4, 0.6, 0.75, 0.85, 0.93, 0.98])


@dataclass(frozen=True)
class Design:
    """Covariates of one data set in the internal coordinates of a law."""

    U: np.ndarray  # (n, n_vars) log(x / ref)
    ref: np.ndarray  # (n_vars,) geometric means used as reference


def _floor_grid(ymin: float, lo: float) -> np.ndarray:
    """Internal log-floor values for the init grid: fractions of the smallest loss (0 -> lower bound)."""
    with np.errstate(divide="ignore"):
        e = np.log(_FLOOR_FRACTIONS * ymin)
    e[~np.isfinite(e)] = lo
    return np.maximum(e, lo)


class Law:
    """Base class: a law of ``n_vars`` covariates with ``P`` parameters."""

    name: str = ""
    formula: str = ""
    variables: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # natural parameter names, in reporting order
    internal: tuple[str, ...] = ()
    floor: str = "L_inf"  # name of the irreducible-loss parameter
    exponents: tuple[str, ...] = ()  # natural names of the exponents
    floor_index: int = 0  # index of the log-floor in the internal vector

    @property
    def n_params(self) -> int:
        return len(self.internal)

    # -- coordinates -------------------------------------------------------------
    def design(self, X: np.ndarray, ref: np.ndarray | None = None) -> Design:
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[:, None]
        logX = np.log(X)
        if ref is None:
            ref = np.exp(logX.mean(axis=0))
        return Design(U=logX - np.log(ref), ref=np.asarray(ref, dtype=float))

    # -- to be provided by each law ---------------------------------------------------
    def log_predict(self, theta: np.ndarray, U: np.ndarray) -> np.ndarray:  # (K, P), (n, v) -> (K, n)
        raise NotImplementedError

    def log_predict_jac(self, theta: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log prediction (B, n) and its Jacobian with respect to theta (B, n, P)."""
        raise NotImplementedError

    def natural(self, theta: np.ndarray, ref: np.ndarray) -> np.ndarray:  # (B, P) -> (B, P) natural
        raise NotImplementedError

    def bounds(self, logy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def grid(self, logy: np.ndarray, U: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- shared helpers -------------------------------------------------------------
    def floor_bounds(self, logy: np.ndarray) -> tuple[float, float]:
        m = float(np.min(logy))
        return m - FLOOR_SPAN, m + FLOOR_SLACK

    def reducible_scale(self, logy: np.ndarray) -> float:
        """Typical loss of the data, used to scale the amplitudes of the init grid."""
        return float(np.exp(np.median(logy)))

    def fixed_floor(self, theta: np.ndarray, logy: np.ndarray) -> np.ndarray:
        """theta with the floor pinned at its lower bound (the pure power law)."""
        out = np.array(theta, dtype=float, copy=True)
        out[..., self.floor_index] = self.floor_bounds(logy)[0]
        return out


class PowerLaw(Law):
    """L(x) = L_inf + (x_c / x)^alpha. Internal: (e, a, alpha), log L = logaddexp(e, a - alpha*u)."""

    name = "power_law"
    formula = "L = L_inf + (x_c / x)^alpha"
    variables = ("x",)
    names = ("L_inf", "x_c", "alpha")
    internal = ("log_L_inf", "a", "alpha")
    floor = "L_inf"
    exponents = ("alpha",)

    def __init__(self, variable: str = "x"):
        self.variables = (variable,)
        if variable != "x":
            self.formula = f"L = L_inf + ({variable}_c / {variable})^alpha_{variable}"

    def log_predict(self, theta, U):
        theta = np.atleast_2d(theta)
        e, a, al = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
        return np.logaddexp(e, a - al * U[:, 0][None, :])

    def log_predict_jac(self, theta, U):
        theta = np.atleast_2d(theta)
        u = U[:, 0][None, :]
        e, a, al = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
        t = a - al * u
        lp = np.logaddexp(e, t)
        w0 = np.exp(e - lp)
        w1 = np.exp(t - lp)
        J = np.stack([w0, w1, -u * w1], axis=-1)
        return lp, J

    def natural(self, theta, ref):
        theta = np.atleast_2d(theta)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            xc = ref[0] * np.exp(theta[:, 1] / theta[:, 2])
        return np.stack([np.exp(theta[:, 0]), xc, theta[:, 2]], axis=-1)

    def bounds(self, logy):
        flo, fhi = self.floor_bounds(logy)
        lo = np.array([flo, -AMPLITUDE_BOUND, EXPONENT_BOUNDS[0]])
        hi = np.array([fhi, AMPLITUDE_BOUND, EXPONENT_BOUNDS[1]])
        return lo, hi

    def grid(self, logy, U):
        flo, _ = self.floor_bounds(logy)
        ymin = float(np.exp(np.min(logy)))
        scale = self.reducible_scale(logy)
        es = _floor_grid(ymin, flo)
        out = []
        for e in es:
            red = max(scale - np.exp(e), 0.05 * scale)
            for mult in (0.5, 1.0, 2.0):
                for al in _EXPONENTS:
                    out.append((e, np.log(red * mult), al))
        return np.array(out)


class LearningCurve(PowerLaw):
    """L(S) = L_final + (S_c / S)^alpha_S for one run; S in steps, frames or FLOPs."""

    name = "learning_curve"
    formula = "L = L_final + (S_c / S)^alpha_S"
    names = ("L_final", "S_c", "alpha_S")
    internal = ("log_L_final", "a", "alpha_S")
    floor = "L_final"
    exponents = ("alpha_S",)

    def __init__(self, variable: str = "S"):
        self.variables = (variable,)
        self.formula = f"L = L_final + (S_c / {variable})^alpha_S"


class Droppo(Law):
    """Kaplan's L(N, D) with an irreducible loss (Droppo & Elibol 2021).

    L = L_inf + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D.
    Internal: (e, k, m, p, alpha_D) with p = alpha_N/alpha_D, k = p*log(N_c/N_ref),
    m = log(D_c/D_ref); log reducible = alpha_D * logaddexp(k - p*u_N, m - u_D).
    """

    name = "droppo"
    formula = "L = L_inf + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D"
    variables = ("N", "D")
    names = ("L_inf", "N_c", "D_c", "alpha_N", "alpha_D")
    internal = ("log_L_inf", "k", "m", "p", "alpha_D")
    floor = "L_inf"
    exponents = ("alpha_N", "alpha_D")

    def _parts(self, theta, U):
        theta = np.atleast_2d(theta)
        e, k, m, p, aD = (theta[:, i : i + 1] for i in range(5))
        uN, uD = U[:, 0][None, :], U[:, 1][None, :]
        q1 = k - p * uN
        q2 = m - uD
        S = np.logaddexp(q1, q2)
        lr = aD * S
        lp = np.logaddexp(e, lr)
        return e, aD, uN, q1, q2, S, lr, lp

    def log_predict(self, theta, U):
        return self._parts(theta, U)[-1]

    def log_predict_jac(self, theta, U):
        e, aD, uN, q1, q2, S, lr, lp = self._parts(theta, U)
        w0 = np.exp(e - lp)
        w1 = np.exp(lr - lp)
        v1 = np.exp(q1 - S)
        v2 = np.exp(q2 - S)
        g = w1 * aD
        J = np.stack([w0, g * v1, g * v2, -g * v1 * uN, w1 * S], axis=-1)
        return lp, J

    def natural(self, theta, ref):
        theta = np.atleast_2d(theta)
        e, k, m, p, aD = theta.T
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            Nc = ref[0] * np.exp(k / p)
            Dc = ref[1] * np.exp(m)
        return np.stack([np.exp(e), Nc, Dc, p * aD, aD], axis=-1)

    def bounds(self, logy):
        flo, fhi = self.floor_bounds(logy)
        lo = np.array([flo, -AMPLITUDE_BOUND, -AMPLITUDE_BOUND, 0.02, EXPONENT_BOUNDS[0]])
        hi = np.array([fhi, AMPLITUDE_BOUND, AMPLITUDE_BOUND, 50.0, EXPONENT_BOUNDS[1]])
        return lo, hi

    def grid(self, logy, U):
        flo, _ = self.floor_bounds(logy)
        ymin = float(np.exp(np.min(logy)))
        scale = self.reducible_scale(logy)
        out = []
        for e in _floor_grid(ymin, flo):
            red = max(scale - np.exp(e), 0.05 * scale)
            for mult in (0.5, 1.0, 2.0):
                lr0 = np.log(red * mult)
                for aD in _EXPONENTS[1:]:
                    S0 = lr0 / aD
                    for p in (0.3, 0.6, 1.0, 1.6, 3.0):
                        for split in (-3.0, -1.0, 0.0, 1.0, 3.0):  # k - m: which term dominates at the centre
                            m = S0 - np.logaddexp(split, 0.0)
                            out.append((e, m + split, m, p, aD))
        return np.array(out)


class Hoffmann(Law):
    """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022).

    Internal: (e, a, b, alpha, beta), log L = logsumexp(e, a - alpha*u_N, b - beta*u_D).
    """

    name = "hoffmann"
    formula = "L = E + A / N^alpha + B / D^beta"
    variables = ("N", "D")
    names = ("E", "A", "B", "alpha", "beta")
    internal = ("log_E", "a", "b", "alpha", "beta")
    floor = "E"
    exponents = ("alpha", "beta")

    def _terms(self, theta, U):
        theta = np.atleast_2d(theta)
        e, a, b, al, be = (theta[:, i : i + 1] for i in range(5))
        uN, uD = U[:, 0][None, :], U[:, 1][None, :]
        t1 = a - al * uN
        t2 = b - be * uD
        lp = np.logaddexp(np.logaddexp(e, t1), t2)
        return e, t1, t2, uN, uD, lp

    def log_predict(self, theta, U):
        return self._terms(theta, U)[-1]

    def log_predict_jac(self, theta, U):
        e, t1, t2, uN, uD, lp = self._terms(theta, U)
        w0, w1, w2 = np.exp(e - lp), np.exp(t1 - lp), np.exp(t2 - lp)
        J = np.stack([w0, w1, w2, -uN * w1, -uD * w2], axis=-1)
        return lp, J

    def natural(self, theta, ref):
        theta = np.atleast_2d(theta)
        e, a, b, al, be = theta.T
        with np.errstate(over="ignore"):
            A = np.exp(a + al * np.log(ref[0]))
            B = np.exp(b + be * np.log(ref[1]))
        return np.stack([np.exp(e), A, B, al, be], axis=-1)

    def bounds(self, logy):
        flo, fhi = self.floor_bounds(logy)
        lo = np.array([flo, -AMPLITUDE_BOUND, -AMPLITUDE_BOUND, EXPONENT_BOUNDS[0], EXPONENT_BOUNDS[0]])
        hi = np.array([fhi, AMPLITUDE_BOUND, AMPLITUDE_BOUND, EXPONENT_BOUNDS[1], EXPONENT_BOUNDS[1]])
        return lo, hi

    def grid(self, logy, U):
        flo, _ = self.floor_bounds(logy)
        ymin = float(np.exp(np.min(logy)))
        scale = self.reducible_scale(logy)
        out = []
        for e in _floor_grid(ymin, flo):
            red = max(scale - np.exp(e), 0.05 * scale)
            for mult in (0.5, 1.0, 2.0):
                for share in (0.2, 0.5, 0.8):
                    a = np.log(red * mult * share)
                    b = np.log(red * mult * (1 - share))
                    for al in _EXPONENTS[1:]:
                        for be in _EXPONENTS[1:]:
                            out.append((e, a, b, al, be))
        return np.array(out)


LAWS = {"power_law": PowerLaw, "learning_curve": LearningCurve, "droppo": Droppo, "hoffmann": Hoffmann}


def get_law(name: str, **kwargs) -> Law:
    try:
        return LAWS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown law {name!r}; known: {', '.join(LAWS)}") from None
