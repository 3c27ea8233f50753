"""A linear probe: L2-regularised softmax (multinomial logistic) regression, cross-validated.

scikit-learn is not a dependency of this project, so the classifier is a few lines of torch:
inputs standardised with the training fold's mean and std, the convex objective

    mean cross-entropy + l2 / 2 * ||W||^2        (the bias is not penalised)

minimised in float64 by L-BFGS with a strong-Wolfe line search until the gradient is below 1e-6
(`fit_softmax` reports whether it got there). The L2 strength is chosen per outer fold from
`L2_GRID` on an inner split of the training fold (held out the same way as the outer folds), then
the classifier is refitted on the whole training fold.

Folds (`folds`): held-out *speakers* (each speaker in exactly one test fold, speakers dealt to
K = min(folds, speakers) folds in a hashed order), or held-out *utterances* of the training
speakers (each speaker's utterances dealt to the K folds in a hashed order, so every speaker is in
training and test). Accuracy is pooled over the folds (correct / tested). The majority baseline
is the share of the commonest label among the utterances probed: always answering that label.
(Answering each fold's training majority instead scores below it when whole speakers are held out
from balanced classes, 41% on speechocean762's 50/50 gender: a fold that holds out more women
trains on more men.)
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

from apcscale.utils.threads import torch_threads

L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
FOLDS = 5


def _order(seed: int, name: str) -> str:
    return hashlib.sha1(f"{seed}|{name}".encode()).hexdigest()


def folds(groups: list[str], keys: list[str], held_out: str, n_folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """The test fold of each item (0..K-1). held_out "speakers": whole groups per fold;
    "utterances": each group's items spread over the folds."""
    out = np.zeros(len(groups), dtype=int)
    if held_out == "speakers":
        speakers = sorted(set(groups), key=lambda s: _order(seed, s))
        k = min(n_folds, len(speakers))
        fold_of = {s: i % k for i, s in enumerate(speakers)}
        return np.array([fold_of[g] for g in groups], dtype=int)
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    for g, items in by_group.items():
        items.sort(key=lambda i: _order(seed, keys[i]))
        start = int(_order(seed, g)[:8], 16) % n_folds  # so that small speakers do not all sit in fold 0
        for j, i in enumerate(items):
            out[i] = (start + j) % n_folds
    return out


@dataclass
class Softmax:
    weight: torch.Tensor  # (dim, classes)
    bias: torch.Tensor  # (classes,)
    mean: torch.Tensor
    std: torch.Tensor
    converged: bool
    iterations: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = (torch.as_tensor(x, dtype=torch.float64) - self.mean) / self.std
        return (z @ self.weight + self.bias).argmax(1).numpy()


def fit_softmax(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    l2: float,
    *,
    max_iter: int = 2000,
    tol: float = 1e-6,
    init: Softmax | None = None,
) -> Softmax:
    """Minimise mean cross-entropy + l2/2 ||W||^2 on standardised x (float64, L-BFGS), from zero weights
    or from `init`'s (a warm start: the optimum is the same, it is reached in fewer steps)."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    mean = xt.mean(0)
    std = xt.std(0, unbiased=False).clamp_min(1e-8)
    z = (xt - mean) / std
    yt = torch.as_tensor(y, dtype=torch.long)
    if init is not None:
        w = init.weight.clone().requires_grad_(True)
        b = init.bias.clone().requires_grad_(True)
    else:
        w = torch.zeros(z.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w + b, yt) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    closure()
    grad = max(float(w.grad.abs().max()), float(b.grad.abs().max()))
    iterations = int(opt.state[opt._params[0]].get("n_iter", 0))
    return Softmax(w.detach(), b.detach(), mean, std, converged=grad <= tol * 10, iterations=iterations)


@dataclass
class ProbeResult:
    accuracy: float
    majority: float
    n: int  # items tested (each once)
    classes: int
    groups: int  # speakers
    folds: int
    l2: list[float] = field(default_factory=list)  # the L2 strength chosen in each fold
    converged: bool = True


def _fit_best(
    x: np.ndarray, y: np.ndarray, n_classes: int, groups: list[str], keys: list[str], held_out: str, seed: int
) -> tuple[Softmax, float]:
    """Choose l2 on an inner split of (x, y), refit on all of it."""
    inner = folds(groups, keys, held_out, n_folds=4, seed=seed + 1)
    test = inner == 0
    best, best_acc, best_model = L2_GRID[-1], -1.0, None
    if test.any() and (~test).any():
        model = None
        for l2 in sorted(L2_GRID, reverse=True):  # strong to weak penalty, each warm-started from the last
            model = fit_softmax(x[~test], y[~test], n_classes, l2, init=model)
            acc = float((model.predict(x[test]) == y[test]).mean())
            if acc > best_acc + 1e-12:  # ties: the stronger penalty, met first
                best, best_acc, best_model = l2, acc, model
    return fit_softmax(x, y, n_classes, best, init=best_model), best


def cross_validate(
    x: np.ndarray,
    labels: list[str],
    groups: list[str],
    keys: list[str],
    held_out: str,
    *,
    n_folds: int = FOLDS,
    seed: int = 0,
) -> ProbeResult:
    """Accuracy of the linear probe on held-out folds, beside the majority baseline (see the module doc).
    x: (items, dim); labels, groups (speakers) and keys (utterance ids) per item."""
    with torch_threads(1):
        return _cross_validate(x, labels, groups, keys, held_out, n_folds=n_folds, seed=seed)


def _cross_validate(
    x: np.ndarray, labels: list[str], groups: list[str], keys: list[str], held_out: str, *, n_folds: int, seed: int
) -> ProbeResult:
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[c] for c in labels], dtype=int)
    fold = folds(groups, keys, held_out, n_folds, seed)
    correct = tested = 0
    chosen: list[float] = []
    converged = True
    for k in sorted(set(fold.tolist())):
        test, train = fold == k, fold != k
        if not train.any():
            continue
        tr_idx = np.flatnonzero(train)
        model, l2 = _fit_best(
            x[train], y[train], len(classes), [groups[i] for i in tr_idx], [keys[i] for i in tr_idx], held_out, seed
        )
        chosen.append(l2)
        converged = converged and model.converged
        correct += int((model.predict(x[test]) == y[test]).sum())
        tested += int(test.sum())
    if tested == 0:
        return ProbeResult(math.nan, math.nan, 0, len(classes), len(set(groups)), 0, chosen, converged)
    majority = Counter(y.tolist()).most_common(1)[0][1] / len(y)
    return ProbeResult(
        correct / tested, majority, tested, len(classes), len(set(groups)), len(set(fold.tolist())), chosen, converged
    )
