"""trainer.loggers: a real run logs to TensorBoard too; a missing backend fails at validation, naming the package."""

from __future__ import annotations

import struct
import sys

import pytest

from apcscale.train.config import TrainRecipe, load_train_recipe
from apcscale.train.run import run_training
from apcscale.utils.schema import RecipeError, from_dict


def read_events(path) -> list[tuple[float, int, str, float]]:
    """(wall time, step, tag, value) of every scalar in a TensorBoard event file (TFRecord framing, Event protos)."""
    from tensorboardX.proto.event_pb2 import Event

    out = []
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        event = Event.FromString(data[pos + 12 : pos + 12 + length])  # after the length and its crc
        pos += 12 + length + 4  # and the payload's crc
        for value in event.summary.value:
            out.append((event.wall_time, event.step, value.tag, value.simple_value))
    return out


def test_a_run_logs_to_tensorboard_as_well_as_csv(prepared_fsdd, tmp_path):
    recipe = from_dict(
        TrainRecipe,
        {
            "name": "tb",
            "data": {"manifest": str(prepared_fsdd), "crop_frames": 64, "batch_size": 16, "num_workers": 0},
            "model": {"arch": "lstm", "width": 24, "depth": 1},
            "optim": {"lr": 3e-3},
            "budget": {"frames": 12_000},
            "eval": {"points": 3},
            "trainer": {"accelerator": "cpu", "log_every_n_steps": 2, "loggers": ["csv", "tensorboard"]},
        },
    )
    result = run_training(recipe, run_dir=tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "logs" / "version_0" / "metrics.csv").is_file()  # csv as before
    # one event file per Trainer call (the untrained model's evaluation, then fit); TensorBoard reads them all
    files = sorted((tmp_path / "run" / "tensorboard" / "version_0").glob("events.out.tfevents.*"))
    assert files
    # in the order written (two files of one second have no order by name); in a full suite run both calls
    # fell in one second and, before each writer had a file of its own, the second erased the first
    scalars = sorted((item for f in files for item in read_events(f)), key=lambda item: item[0])
    dev = [value for _, _, tag, value in scalars if tag == "dev/loss"]
    # every dev evaluation of the curve (the untrained start included) is in the event file
    assert dev == pytest.approx([p["dev/loss"] for p in result.curve], rel=1e-6)
    assert len(dev) == 4 and dev[-1] < dev[0]
    train = [(step, value) for _, step, tag, value in scalars if tag == "train/loss"]
    assert len(train) >= 5 and [s for s, _ in train] == sorted(s for s, _ in train)


def test_a_missing_backend_fails_at_validation_naming_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # not installed (mlflow is not in requirements.lock)
    path = tmp_path / "r.yaml"
    path.write_text("trainer: {loggers: [csv, mlflow]}\n")
    with pytest.raises(
        RecipeError,
        match=r"r\.yaml: trainer\.loggers\[1\]: the mlflow logger needs the mlflow "
        r"package, which is not installed: pip install mlflow$",
    ):
        load_train_recipe(path)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(
        RecipeError,
        match=r"trainer\.loggers\[0\]: the tensorboard logger needs the tensorboard or "
        r"tensorboardX package, which is not installed: pip install tensorboard",
    ):
        load_train_recipe(path, ["trainer.loggers=[tensorboard]"])


def test_logger_names_are_checked(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("trainer: {loggers: [csv, wandb]}\n")
    with pytest.raises(
        RecipeError,
        match=r"trainer\.loggers\[1\]: expected one of 'csv', 'tensorboard', 'mlflow', "
        r"got 'wandb'",
    ):
        load_train_recipe(path)
    path.write_text("trainer: {loggers: [csv, csv]}\n")
    with pytest.raises(RecipeError, match=r"trainer\.loggers: names a logger twice"):
        load_train_recipe(path)
    path.write_text("name: quiet\n")
    assert load_train_recipe(path).trainer.loggers == ["csv"]  # the default: Lightning's CSV log, as before


def test_two_trainer_calls_in_one_second_keep_both_event_files(tmp_path):
    """tensorboardX names an event file by the second: without a file of its own per call, the second erased
    the first (the untrained evaluation's dev loss was lost when it and fit started in one second)."""
    from apcscale.train.loggers import build_loggers

    (logger,) = build_loggers(["tensorboard"], tmp_path, experiment="x")
    logger.log_metrics({"dev/loss": 1.0}, step=0)
    logger.finalize("success")
    logger.log_metrics({"dev/loss": 0.5}, step=1)  # within the same second as the first
    logger.finalize("success")
    files = sorted((tmp_path / "tensorboard" / "version_0").glob("events.out.tfevents.*"))
    scalars = sorted((item for f in files for item in read_events(f)), key=lambda item: item[0])
    assert len(files) == 2 and [(step, value) for _, step, _, value in scalars] == [(0, 1.0), (1, 0.5)]
