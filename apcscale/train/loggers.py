"""The Lightning loggers a run writes to: the recipe's `trainer.loggers` (default [csv]).

    csv          run_dir/logs/version_k/metrics.csv (and hparams.yaml): Lightning's CSVLogger
    tensorboard  run_dir/tensorboard/version_k/events.out.tfevents.*: Lightning's TensorBoardLogger,
                 through the tensorboard package or tensorboardX (in requirements.lock)
    mlflow       an MLflow run named after the run directory, in the experiment named after the
                 recipe: to $MLFLOW_TRACKING_URI when set, else to run_dir/mlruns (`mlflow ui
                 --backend-store-uri run_dir/mlruns`); needs the mlflow package

Each resume of a run adds a version (csv, tensorboard). A backend's package is imported only
when the recipe names it; a missing one fails when the recipe is validated, with the package
to install.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from pathlib import Path

LOGGERS = ("csv", "tensorboard", "mlflow")
_WRITERS = itertools.count()


def _suffix() -> str:
    return f".{os.getpid()}.{next(_WRITERS)}"


# logger -> (importable module names, any one of which serves; what to install)
_NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "csv": ((), ""),
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install tensorboard (or tensorboardX)"),
    "mlflow": (("mlflow",), "pip install mlflow"),
}


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: an import that is blocked
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_backend(name: str) -> str | None:
    """None if logger `name` can be used here, else what to do about it."""
    modules, install = _NEEDS[name]
    if not modules or any(_importable(m) for m in modules):
        return None
    return f"the {name} logger needs the {' or '.join(modules)} package, which is not installed: {install}"


def build_loggers(names: list[str] | tuple[str, ...], run_dir: str | Path, *, experiment: str) -> list:
    """Lightning loggers for `names` (in that order; the first is the Trainer's `logger`)."""
    run_dir = Path(run_dir)
    out = []
    for name in names:
        problem = missing_backend(name)
        if problem:
            raise ModuleNotFoundError(problem)
        if name == "csv":
            from lightning.pytorch.loggers import CSVLogger

            out.append(CSVLogger(run_dir, name="logs"))
        elif name == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger

            class EventFiles(TensorBoardLogger):
                """tensorboardX names an event file by the second and the host, and opens it "wb": the writer of
                the untrained evaluation and that of fit, in one second, shared a file and the second erased the
                first. Each Trainer call here writes a file of its own (a suffix unique in the process)."""

                def finalize(self, status: str) -> None:
                    super().finalize(status)
                    self._experiment = None
                    self._kwargs["filename_suffix"] = _suffix()

            out.append(EventFiles(run_dir, name="tensorboard", default_hp_metric=False, filename_suffix=_suffix()))
        elif name == "mlflow":
            from lightning.pytorch.loggers import MLFlowLogger

            uri = os.environ.get("MLFLOW_TRACKING_URI") or (run_dir / "mlruns").resolve().as_uri()
            out.append(MLFlowLogger(experiment_name=experiment, run_name=run_dir.name, tracking_uri=uri))
        else:  # the recipe schema admits only LOGGERS
            raise ValueError(f"unknown logger {name!r}; choose from {', '.join(LOGGERS)}")
    return out
