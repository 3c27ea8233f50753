"""Linear probes of frozen encoders: does a lower APC loss buy better representations?

    table = probe_sweep("sweeps/default")              # the best run of each (arch, N), and log-Mel
    table = probe_encoders([load_encoder("enc/")], "../shared/data/fsdd", tasks=["digit"])

Each utterance becomes one vector: the mean over its frames of one layer's context vectors
(`layer`, default -1: the last). The reference "log-mel" is the same probe on the network's
input, the normalised log-Mel features, mean-pooled the same way; "majority" is the share of the
commonest label (always answering it). The classifier and its folds: apcscale.downstream.classifier;
the tasks and their labels: apcscale.downstream.labels.

A sweep's probe takes, for each (architecture, N), the run with the lowest minimum dev loss
that has a best checkpoint (whatever its subset or seed), loads that checkpoint's weights in
memory (apcscale.models.export.encoder_from_run: nothing is written but the results) and probes
it on the sweep's own corpus (its manifest's source) unless `audio` names another.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apcscale.downstream.classifier import FOLDS, cross_validate
from apcscale.downstream.extract import Corpus, load_corpus, pooled, torch_threads
from apcscale.downstream.labels import TASKS, ProbeError, available_tasks, labels_for

COLUMNS = [
    "task",
    "held_out",
    "model",
    "arch",
    "N",
    "D",
    "subset",
    "dev_loss",
    "layer",
    "dim",
    "accuracy",
    "majority",
    "utterances",
    "speakers",
    "classes",
    "folds",
    "l2",
    "converged",
    "seconds",
]
LOG_MEL = "log-mel"


def _quiet(_msg: str) -> None:
    pass


def task_data(task: str, corpus: Corpus) -> dict[str, Any]:
    """Labels, speakers and keys of the utterances `task` can use, and which of the corpus's files they are."""
    labels = labels_for(task, corpus.files, corpus.root)
    keep = [i for i, (f, lab) in enumerate(zip(corpus.files, labels)) if lab is not None and f.speaker is not None]
    speakers = {corpus.files[i].speaker for i in keep}
    if TASKS[task].held_out == "speakers" and len(speakers) < 2:
        raise ProbeError(
            f"task '{task}': {corpus.root} has {len(speakers)} speaker(s) with {TASKS[task].title} "
            "labels; holding out speakers needs two or more"
        )
    return {
        "index": keep,
        "labels": [labels[i] for i in keep],
        "groups": [corpus.files[i].speaker for i in keep],
        "keys": [corpus.files[i].key for i in keep],
    }


def probe_features(
    x: np.ndarray, tasks: list[str], data: dict[str, dict[str, Any]], *, n_folds: int = FOLDS, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per task for pooled features x (one row per corpus file; NaN: no features)."""
    rows = []
    for task in tasks:
        d = data[task]
        idx = [j for j, i in enumerate(d["index"]) if np.isfinite(x[i]).all()]
        started = time.perf_counter()
        res = cross_validate(
            x[[d["index"][j] for j in idx]],
            [d["labels"][j] for j in idx],
            [d["groups"][j] for j in idx],
            [d["keys"][j] for j in idx],
            TASKS[task].held_out,
            n_folds=n_folds,
            seed=seed,
        )
        rows.append(
            {
                "task": task,
                "held_out": TASKS[task].held_out,
                "dim": int(x.shape[1]),
                "accuracy": res.accuracy,
                "majority": res.majority,
                "utterances": res.n,
                "speakers": res.groups,
                "classes": res.classes,
                "folds": res.folds,
                "l2": "/".join(f"{v:g}" for v in res.l2),
                "converged": res.converged,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
    return rows


def resolve_tasks(tasks: list[str] | None, corpus: Corpus) -> list[str]:
    if tasks:
        for t in tasks:
            labels_for(t, corpus.files, corpus.root)  # fails, naming the task and the corpus, without labels
        return tasks
    found = available_tasks(corpus.files, corpus.root)
    if not found:
        raise ProbeError(
            f"{corpus.root} carries no labels any probe task reads ({', '.join(TASKS)}); see docs/encoders.md"
        )
    return found


def probe_encoders(
    models: list[dict[str, Any]],
    corpus: Corpus | str | Path,
    tasks: list[str] | None = None,
    *,
    layer: int = -1,
    reference: bool = True,
    n_folds: int = FOLDS,
    seed: int = 0,
    threads: int | None = 1,
    log: Callable[[str], None] = _quiet,
) -> pd.DataFrame:
    """Probe each model ({"model": name, "encoder": Encoder, plus arch, N, D, subset, dev_loss}) and,
    with `reference`, the normalised log-Mel input (the first model's feature settings and statistics)."""
    if not isinstance(corpus, Corpus):
        corpus = load_corpus(corpus)
    if not corpus.files:
        raise ProbeError(f"{corpus.root}: no audio to probe")
    tasks = resolve_tasks(tasks, corpus)
    data = {t: task_data(t, corpus) for t in tasks}
    rows: list[dict[str, Any]] = []
    for i, m in enumerate(models):
        enc = m["encoder"]
        started = time.perf_counter()
        mels = corpus.log_mel(enc.feature_config)
        if i == 0 and reference:
            x = pooled(enc, mels, log_mel=True)
            for row in probe_features(x, tasks, data, n_folds=n_folds, seed=seed):
                rows.append({"model": LOG_MEL, "layer": None, **row})
            log(f"{LOG_MEL}: " + ", ".join(f"{r['task']} {r['accuracy']:.3f}" for r in rows[-len(tasks) :]))
        with torch_threads(threads):
            x = pooled(enc, mels, layer)
        meta = {k: m.get(k) for k in ("model", "arch", "N", "D", "subset", "dev_loss")}
        out = probe_features(x, tasks, data, n_folds=n_folds, seed=seed)
        for row in out:
            rows.append({**meta, "layer": enc.layer_index(layer), **row})
        log(
            f"{m['model']}: "
            + ", ".join(f"{r['task']} {r['accuracy']:.3f}" for r in out)
            + f" ({time.perf_counter() - started:.0f} s)"
        )
    table = pd.DataFrame(rows)
    return table.reindex(columns=COLUMNS)


def best_runs(sweep_dir: str | Path) -> pd.DataFrame:
    """Per (arch, N) the run with the lowest minimum dev loss that has a best checkpoint."""
    sweep = Path(sweep_dir).expanduser()
    if not sweep.is_dir():
        raise ProbeError(f"{sweep}: no such sweep directory")
    runs_csv = sweep / "results" / "runs.csv"
    if not runs_csv.is_file():
        raise ProbeError(
            f"{sweep}: no results/runs.csv (not a sweep directory, or its tables are not written yet: "
            f"apcscale sweep --report {sweep})"
        )
    runs = pd.read_csv(runs_csv)
    missing = {"run_id", "arch", "N", "min_dev_loss"} - set(runs.columns)
    if missing:
        raise ProbeError(f"{runs_csv}: lacks column(s) {', '.join(sorted(missing))}")
    runs = runs[np.isfinite(pd.to_numeric(runs["min_dev_loss"], errors="coerce"))].copy()
    runs["run_dir"] = [sweep / "runs" / str(r) for r in runs["run_id"]]
    runs = runs[[(d / "checkpoints" / "best.ckpt").is_file() for d in runs["run_dir"]]]
    if runs.empty:
        raise ProbeError(f"{sweep}: no run has a best checkpoint (runs/*/checkpoints/best.ckpt) to probe")
    best = runs.loc[runs.groupby(["arch", "N"])["min_dev_loss"].idxmin()]
    return best.sort_values(["arch", "N"]).reset_index(drop=True)


def probe_sweep(
    sweep_dir: str | Path,
    tasks: list[str] | None = None,
    *,
    audio: str | Path | None = None,
    layer: int = -1,
    n_folds: int = FOLDS,
    seed: int = 0,
    plot: bool = True,
    out: str | Path | None = None,
    threads: int | None = 1,
    log: Callable[[str], None] = _quiet,
) -> tuple[pd.DataFrame, list[Path]]:
    """Probe the best run of each (arch, N) of a sweep and the log-Mel input; write probe.csv and
    probe.png (.pdf) to `out` (default: the sweep's results/). Returns the table and the files written."""
    from apcscale.models.export import encoder_from_run

    sweep = Path(sweep_dir).expanduser()
    best = best_runs(sweep)
    models = []
    for r in best.itertuples():
        enc = encoder_from_run(r.run_dir)
        models.append(
            {
                "model": r.run_id,
                "encoder": enc,
                "arch": r.arch,
                "N": int(r.N),
                "D": int(r.D) if "D" in best.columns and pd.notna(r.D) else None,
                "subset": getattr(r, "subset", None),
                "dev_loss": float(r.min_dev_loss),
            }
        )
    corpus_root = audio or models[0]["encoder"].config["provenance"].get("corpus")
    if not corpus_root:
        raise ProbeError(f"{sweep}: its manifest does not name the audio it was prepared from; give --audio")
    if not Path(corpus_root).exists():
        raise ProbeError(f"{sweep}: the audio it was prepared from is gone ({corpus_root}); give --audio")
    log(f"probing {len(models)} encoders (the best run of each architecture and size) on {corpus_root}")
    corpus = load_corpus(corpus_root)
    table = probe_encoders(models, corpus, tasks, layer=layer, n_folds=n_folds, seed=seed, threads=threads, log=log)
    out = Path(out) if out is not None else sweep / "results"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "probe.csv", index=False)
    files = [out / "probe.csv"]
    if plot:
        from apcscale.downstream.plot import plot_probe

        files += plot_probe(
            table,
            out / "probe",
            title=f"linear probes, {Path(corpus_root).name}: layer {'last' if layer == -1 else layer}",
        )
    return table, files


def format_table(table: pd.DataFrame) -> str:
    """The probe table in plain text: one line per (task, model), accuracy beside the majority baseline."""
    lines = [
        f"{'task':8s} {'held out':10s} {'model':28s} {'N':>9s} {'dev loss':>8s} {'accuracy':>8s} "
        f"{'majority':>8s} {'utts':>5s} {'spk':>4s}"
    ]
    for r in table.itertuples():
        n = "" if pd.isna(r.N) else f"{int(r.N):,}"
        loss = "" if pd.isna(r.dev_loss) else f"{r.dev_loss:.4f}"
        lines.append(
            f"{r.task:8s} {r.held_out:10s} {str(r.model)[:28]:28s} {n:>9s} {loss:>8s} "
            f"{_pct(r.accuracy):>8s} {_pct(r.majority):>8s} {int(r.utterances):>5d} {int(r.speakers):>4d}"
        )
    return "\n".join(lines)


def _pct(v: float) -> str:
    return "" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"
