"""Encoders as artefacts (issue 14, part 2): export a real run, load it without Lightning, get the run's own
features; the per-utterance features command; the s3prl-style wrapper; a linear probe that beats the majority
class on FSDD digits; one-line errors for the export, features and probe commands."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from apcscale.cli import main as cli
from apcscale.train.config import TrainRecipe
from apcscale.train.run import run_training
from apcscale.utils.schema import from_dict

ROOT = Path(__file__).resolve().parents[1]


def tiny_recipe(manifest: Path, arch: str) -> TrainRecipe:
    return from_dict(
        TrainRecipe,
        {
            "name": f"enc-{arch}",
            "data": {"manifest": str(manifest), "crop_frames": 64, "batch_size": 16, "num_workers": 0},
            "model": {"arch": arch, "width": 16, "depth": 2, **({"heads": 2} if arch == "transformer" else {})},
            "optim": {"lr": 3e-3, "warmup": 0.05},
            "budget": {"frames": 25_000},
            "eval": {"points": 3},
            "trainer": {"accelerator": "cpu", "log_every_n_steps": 5},
        },
    )


@pytest.fixture(scope="module")
def trained(prepared_fsdd, tmp_path_factory) -> dict[str, Path]:
    """An LSTM and a Transformer (width 16, depth 2) trained for a few seconds on FSDD: their run directories."""
    root = tmp_path_factory.mktemp("encoder_runs")
    return {
        arch: run_training(tiny_recipe(prepared_fsdd, arch), run_dir=root / arch, progress=False).run_dir
        for arch in ("lstm", "transformer")
    }


LOAD_WITHOUT_LIGHTNING = textwrap.dedent("""
    import importlib.abc, json, sys
    import numpy as np

    class NoLightning(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("lightning", "pytorch_lightning", "ray"):
                raise ImportError(f"{name} must not be imported to load an export")
            return None

    sys.meta_path.insert(0, NoLightning())
    from apcscale.data.audio import read_audio
    from apcscale.models.export import load_encoder

    export, out, paths = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    enc = load_encoder(export)
    waves = [read_audio(p) for p in paths]
    rate = waves[0][1]
    result = {"mel": np.concatenate([enc.log_mel(w, sr).numpy() for w, sr in waves])}
    for layer in (0, 1, -1):
        hs = enc.encode([w for w, _ in waves], layer=layer, sample_rate=rate)
        result[f"h{layer}"] = np.concatenate([h.numpy() for h in hs])
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning", "ray"))
    result["loaded"] = np.array(loaded, dtype=object) if loaded else np.array([], dtype=str)
    np.savez(out, **result)
    print("loaded:", loaded)
""")


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_export_round_trip_gives_the_runs_own_features_without_lightning(trained, tmp_path, arch):
    from apcscale.data.manifest import Manifest
    from apcscale.data.stream import _normaliser, collate, read_shard
    from apcscale.models.apc import APCModule

    run = trained[arch]
    assert cli(["export", str(run), str(tmp_path / "export")]) == 0
    config = json.loads((tmp_path / "export" / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert config["N"] == summary["N"] and config["model"]["arch"] == arch and config["feature_dim"] == 40
    assert config["provenance"]["checkpoint"] == "checkpoints/best.ckpt"
    assert config["provenance"]["checkpoint_dev_loss"] == pytest.approx(summary["min_dev_loss"])
    assert config["provenance"]["run_id"] == f"enc-{arch}"

    # the run's own model on the run's own data: its best checkpoint, dev utterances from the shards, normalised
    # by the training stream's collate
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    m = Manifest.load(recipe["data"]["manifest"])
    module = APCModule.load_from_checkpoint(run / "checkpoints" / "best.ckpt", map_location="cpu").eval()
    shard = m.shard_paths(m.dev["shards"])[0]
    items, paths = [], []
    for key, feats, meta in read_shard(shard, m.feature_dim):
        items.append((key, 0, feats))
        paths.append(str(Path(m.data["source"]["root"]) / meta["path"]))
        if len(items) == 12:
            break
    batch = collate(items, *_normaliser(m.mean, m.std))
    lengths = batch["lengths"]
    with torch.no_grad():
        own = {
            layer: torch.cat(
                [h[: int(n)] for h, n in zip(module.net.encode(batch["feats"], lengths, layer=layer), lengths)]
            ).numpy()
            for layer in (0, 1, -1)
        }

    # the export, in a fresh interpreter where Lightning (and Ray) cannot be imported
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_WITHOUT_LIGHTNING,
            str(tmp_path / "export"),
            str(tmp_path / "out.npz"),
            json.dumps(paths),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "out.npz", allow_pickle=True)
    assert list(got["loaded"]) == []
    stored = np.concatenate([x.astype(np.float32) for _, _, x in items])
    assert np.array_equal(got["mel"], stored)  # the export's fbank is preparation's, to the bit
    for layer in (0, 1, -1):
        assert got[f"h{layer}"].shape == own[layer].shape == (int(lengths.sum()), 16)
        assert np.array_equal(got[f"h{layer}"], own[layer]), (
            f"layer {layer}: max diff {np.abs(got[f'h{layer}'] - own[layer]).max()}"
        )
    assert np.abs(own[-1]).max() > 0


def test_the_s3prl_style_wrapper_returns_every_layer(trained, tmp_path, fsdd_dir):
    """The wrapper of docs/encoders.md (apcscale.downstream.upstream, the package's module): hidden states of
    every layer, (B, T, width), for a list of 16 kHz waveforms of different lengths."""
    import torchaudio.functional as AF

    from apcscale.data.audio import read_audio
    from apcscale.downstream.upstream import APCUpstream
    from apcscale.models.export import export_run, load_encoder

    export_run(trained["transformer"], tmp_path / "export")
    up = APCUpstream(tmp_path / "export")  # s3prl gives 16 kHz; this export was trained at 8 kHz
    waves = []
    for name in ("3_jackson_0.wav", "7_theo_12.wav", "0_lucas_3.wav"):
        w, sr = read_audio(fsdd_dir / "recordings" / name)
        waves.append(AF.resample(torch.from_numpy(w), sr, 16000))
    out = up(waves)
    hidden, lengths = out["hidden_states"], out["lengths"]
    frames = [up.encoder.feature_config.num_frames(len(w), 16000) for w in waves]
    assert lengths.tolist() == frames
    assert len(hidden) == 3  # the input projection and 2 layers
    assert all(h.shape == (3, max(frames), 16) for h in hidden)
    assert out["last_hidden_state"] is hidden[-1]
    assert up.get_downsample_rates("hidden_states") == 160
    enc = load_encoder(tmp_path / "export")
    for i, w in enumerate(waves):  # each row is that utterance alone, zeros after its end
        alone = enc.encode(w, layer=1, sample_rate=16000)
        assert torch.allclose(hidden[1][i, : frames[i]], alone, atol=1e-5)
        assert not hidden[1][i, frames[i] :].any()


def test_features_command_writes_one_npy_per_utterance(trained, tmp_path, fsdd_slice):
    from apcscale.models.export import load_encoder

    assert cli(["export", str(trained["lstm"]), str(tmp_path / "export")]) == 0
    out = tmp_path / "feats"
    assert cli(["features", str(fsdd_slice), str(out), "--model", str(tmp_path / "export"), "--layer", "1"]) == 0
    rows = list(csv.DictReader((out / "index.csv").open()))
    assert len(rows) == 300 and {r["speaker"] for r in rows} == {
        "george",
        "jackson",
        "lucas",
        "nicolas",
        "theo",
        "yweweler",
    }
    info = json.loads((out / "features.json").read_text())
    assert info["layer"] == 1 and info["utterances"] == 300 and info["encoder"]["provenance"]["run_id"] == "enc-lstm"
    enc = load_encoder(tmp_path / "export")
    row = rows[17]
    h = np.load(out / row["file"])
    from apcscale.data.audio import read_audio

    w, sr = read_audio(fsdd_slice / row["path"])
    assert h.shape == (int(row["frames"]), 16)
    assert np.allclose(h, enc.encode(w, layer=1, sample_rate=sr).numpy(), atol=1e-5)


def test_a_probe_of_a_tiny_export_beats_the_majority_on_fsdd_digits(trained, tmp_path, fsdd_slice, capsys):
    assert cli(["export", str(trained["lstm"]), str(tmp_path / "export")]) == 0
    assert (
        cli(
            [
                "probe",
                "--model",
                str(tmp_path / "export"),
                "--audio",
                str(fsdd_slice),
                "--task",
                "digit,speaker",
                "--out",
                str(tmp_path / "probe"),
            ]
        )
        == 0
    )
    table = {(r["task"], r["model"]): r for r in csv.DictReader((tmp_path / "probe" / "probe.csv").open())}
    digit, mel = table[("digit", "enc-lstm")], table[("digit", "log-mel")]
    # digits balanced within every speaker: the majority class is right on exactly one utterance in ten
    assert float(digit["majority"]) == pytest.approx(0.1)
    assert float(digit["accuracy"]) > 0.2 and float(mel["accuracy"]) > 0.2
    assert int(digit["utterances"]) == 300 and int(digit["speakers"]) == 6 and int(digit["folds"]) == 5
    speaker = table[("speaker", "enc-lstm")]
    assert float(speaker["accuracy"]) > 2 * float(speaker["majority"])
    assert digit["held_out"] == "speakers" and speaker["held_out"] == "utterances"
    out = capsys.readouterr().out
    assert "log-mel" in out and "enc-lstm" in out


def test_the_probe_of_a_sweep_takes_the_best_run_of_each_size(diverged_sweep, tmp_path, fsdd_slice):
    import pandas as pd

    sweep, _ = diverged_sweep
    assert cli(["probe", str(sweep), "--audio", str(fsdd_slice), "--task", "digit", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "probe.csv")
    runs = pd.read_csv(sweep / "results" / "runs.csv")
    assert list(table["model"])[0] == "log-mel"
    probed = table[table["model"] != "log-mel"]
    assert len(probed) == runs.groupby(["arch", "N"]).ngroups == 4
    for r in probed.itertuples():  # the lowest minimum dev loss of its (arch, N)
        same = runs[(runs["arch"] == r.arch) & (runs["N"] == r.N)]
        assert r.dev_loss == pytest.approx(same["min_dev_loss"].min())
    assert (probed["accuracy"] > probed["majority"]).all()
    assert (tmp_path / "probe.png").is_file() and not (sweep / "results" / "probe.csv").exists()


def one_line_error(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_one_line_errors_name_the_culprit(trained, tmp_path, fsdd_slice, capsys):
    missing = tmp_path / "no-such-run"
    assert cli(["export", str(missing), str(tmp_path / "e")]) == 2
    assert f"{missing}: no such run directory" in one_line_error(capsys.readouterr().err)

    bare = tmp_path / "bare-run"  # a run directory whose checkpoints are gone
    bare.mkdir()
    (bare / "recipe.yaml").write_text((trained["lstm"] / "recipe.yaml").read_text())
    assert cli(["export", str(bare), str(tmp_path / "e")]) == 2
    assert f"{bare}: no checkpoint checkpoints/best.ckpt" in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "e").exists()

    assert cli(["export", str(trained["lstm"]), str(tmp_path / "export")]) == 0
    capsys.readouterr()
    assert cli(["probe", "--model", str(tmp_path / "export"), "--audio", str(fsdd_slice), "--task", "digits"]) == 2
    assert "unknown task 'digits' (did you mean 'digit'?)" in one_line_error(capsys.readouterr().err)
    assert cli(["probe", "--model", str(tmp_path / "export"), "--audio", str(fsdd_slice), "--task", "age"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert f"task 'age': {fsdd_slice} carries no age group labels" in line and "speakers.json" in line
    assert cli(["probe", str(tmp_path / "not-a-sweep")]) == 2
    assert "not-a-sweep: no such sweep directory" in one_line_error(capsys.readouterr().err)
    assert cli(["probe", str(trained["lstm"])]) == 2
    assert "no results/runs.csv" in one_line_error(capsys.readouterr().err)
    assert cli(["features", str(fsdd_slice), str(tmp_path / "f"), "--model", str(bare)]) == 2
    assert f"{bare}: not an encoder export" in one_line_error(capsys.readouterr().err)
    assert (
        cli(["features", str(fsdd_slice), str(tmp_path / "f"), "--model", str(tmp_path / "export"), "--layer", "3"])
        == 2
    )
    assert "layer 3 is out of range for this 2-layer lstm" in one_line_error(capsys.readouterr().err)
