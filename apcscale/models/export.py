"""A trained encoder as a self-contained directory, and the object that loads it (torch + apcscale only).

    export_run("sweeps/default/runs/lstm-w64-d2-d7-s0", "encoders/lstm-w64")   # apcscale export RUN_DIR OUT
    enc = load_encoder("encoders/lstm-w64")                                      # no Lightning, no run directory
    h = enc.encode(wave, sample_rate=8000, layer=-1)          # (T, width) context vectors of one utterance
    hs = enc.encode([w1, w2], sample_rate=16000)              # a list of 1-D waveforms: a list of (T_i, width)
    h = enc.encode(log_mel)                                   # (T, F) or (B, T, F) log-Mel as preparation makes it

The directory (FORMAT):

    config.json     the model (ModelConfig), feature_dim, time_shift, N (context parameters) and N_total;
                    the feature settings (the manifest's "features": apcscale.data.features.FeatureConfig);
                    the normalisation (per-dimension mean and std of the training split, float64);
                    the weights file and its sha256; provenance: the run, its dev loss, the checkpoint
    encoder.pt      the APCNet's state_dict (plain torch tensors, loaded with weights_only=True), or
    encoder.safetensors   the same, when the safetensors package is installed

An Encoder turns audio into features exactly as preparation did (the same fbank, rounded to the
shards' storage type, float16 by default), normalises them as the training stream did
((x - mean) * (1 / std), in float32) and runs `APCNet.encode`, so that it gives what the run's own
model gives on the same utterances (tests/test_encoders.py checks that, bit for bit).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from apcscale.data.features import FeatureConfig
from apcscale.models.config import ModelConfig
from apcscale.models.counting import count_parameters
from apcscale.models.net import APCNet

FORMAT = "apcscale.encoder/1"
CONFIG = "config.json"
WEIGHTS_PT = "encoder.pt"
WEIGHTS_SAFETENSORS = "encoder.safetensors"
CHECKPOINTS = ("best", "last")


class ExportError(RuntimeError):
    """A run that cannot be exported, or a directory that is not an export: the message names the culprit."""


class LayerError(ExportError, ValueError):
    """A layer the encoder does not have."""


# ----------------------------------------------------------------------------------------------------
# the encoder
# ----------------------------------------------------------------------------------------------------
class Encoder(nn.Module):
    """A frozen APC encoder with its own feature settings and normalisation (see the module doc)."""

    def __init__(
        self,
        net: APCNet,
        features: FeatureConfig,
        mean: np.ndarray,
        std: np.ndarray,
        config: dict[str, Any] | None = None,
    ):
        super().__init__()
        if len(mean) != net.feature_dim or len(std) != net.feature_dim:
            raise ExportError(
                f"normalisation statistics of size {len(mean)}/{len(std)} for a model that reads "
                f"{net.feature_dim} features"
            )
        if features.n_mels != net.feature_dim:
            raise ExportError(f"feature settings give {features.n_mels} Mel bins, the model reads {net.feature_dim}")
        self.net = net.eval().requires_grad_(False)
        self.feature_config = features
        self.config = dict(config or {})
        # exactly the training stream's normaliser (apcscale.data.stream._normaliser)
        self.register_buffer("mean", torch.from_numpy(np.asarray(mean, dtype=np.float32)), persistent=False)
        inv = (1.0 / np.asarray(std, dtype=np.float64)).astype(np.float32)
        self.register_buffer("inv_std", torch.from_numpy(inv), persistent=False)

    # ----- what it is -----------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return self.net.cfg.depth

    @property
    def width(self) -> int:
        return self.net.cfg.width

    @property
    def feature_dim(self) -> int:
        return self.net.feature_dim

    @property
    def sample_rate(self) -> int:
        return self.feature_config.sample_rate

    def extra_repr(self) -> str:
        return f"{self.net.cfg.label}, {self.feature_dim} log-Mel bins at {self.sample_rate} Hz"

    # ----- audio -> features ----------------------------------------------------------------
    def log_mel(self, wave: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
        """(T, F) float32 log-Mel features of mono samples in [-1, 1], as preparation stores them
        (resampled to the export's rate, rounded to its storage type), not normalised."""
        feats = self.feature_config.compute(wave, sample_rate)
        return feats.to(getattr(torch, self.feature_config.dtype)).to(torch.float32)

    def normalise(self, feats: torch.Tensor) -> torch.Tensor:
        """Log-Mel features (..., F) normalised as the training stream did."""
        if feats.shape[-1] != self.feature_dim:
            raise ValueError(f"features of size {feats.shape[-1]}, the encoder reads {self.feature_dim}")
        return (feats.to(self.mean.device, torch.float32) - self.mean) * self.inv_std

    def features(self, wave: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
        """(T, F) normalised log-Mel features of a waveform: what the network reads."""
        return self.normalise(self.log_mel(wave, sample_rate))

    # ----- features -> context vectors ------------------------------------------------------
    def layer_index(self, layer: int) -> int:
        """A layer as 0..depth (0: the input projection, depth: the last context layer)."""
        depth = self.depth
        if not -(depth + 1) <= int(layer) <= depth:
            raise LayerError(
                f"layer {layer} is out of range for this {depth}-layer {self.net.cfg.arch} "
                f"(use 0..{depth}, or -1 for the last)"
            )
        return int(layer) % (depth + 1)

    @torch.no_grad()
    def encode_normalised(
        self, feats: torch.Tensor, lengths: torch.Tensor | None = None, layer: int = -1
    ) -> torch.Tensor:
        """Normalised features (B, T, F) -> (B, T, width); steps past `lengths` are zero."""
        if lengths is not None:
            lengths = torch.as_tensor(lengths, dtype=torch.long, device=self.mean.device)
        return self.net.encode(feats.to(self.mean.device), lengths, layer=layer)

    @torch.no_grad()
    def encode(
        self,
        x: Any,
        layer: int = -1,
        *,
        sample_rate: int | None = None,
        lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> Any:
        """Context vectors of one layer (0 .. depth, -1 the last; see APCNet.encode).

        x: a 1-D waveform (give `sample_rate`) -> (T, width); a list of 1-D waveforms -> a list of
        (T_i, width), run as one padded batch; log-Mel features as preparation makes them (not
        normalised), (T, F) -> (T, width) or (B, T, F) with optional `lengths` -> (B, T, width).
        """
        if isinstance(x, (list, tuple)):
            if sample_rate is None:
                raise ValueError("encode: a list of waveforms needs sample_rate")
            feats = [self.features(w, sample_rate) for w in x]
            batch, lens = pad(feats)
            h = self.encode_normalised(batch, lens, layer)
            return [h[i, : int(n)] for i, n in enumerate(lens)]
        x = torch.as_tensor(x)
        if x.ndim == 1:
            if sample_rate is None:
                raise ValueError("encode: a waveform needs sample_rate (or give log-Mel features (T, F))")
            return self.encode_normalised(self.features(x, sample_rate)[None], None, layer)[0]
        if sample_rate is not None:
            raise ValueError(f"encode: sample_rate given with a {x.ndim}-D input; features are (T, F) or (B, T, F)")
        if x.ndim == 2:
            return self.encode_normalised(self.normalise(x)[None], None, layer)[0]
        if x.ndim == 3:
            return self.encode_normalised(self.normalise(x), lengths, layer)
        raise ValueError(f"encode: expected a waveform, a list of them, or features (T, F) / (B, T, F); got {x.ndim}-D")

    @torch.no_grad()
    def hidden_states(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every layer's output for normalised features (B, T, F): [h^0, ..., h^depth], each (B, T, width)."""
        return [self.encode_normalised(feats, lengths, k) for k in range(self.depth + 1)]


def pad(feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T_max, F) zero-padded batch of (T_i, F) tensors, and the lengths (B,)."""
    lens = torch.tensor([int(f.shape[0]) for f in feats], dtype=torch.long)
    dim = feats[0].shape[1] if len(feats) else 0
    out = torch.zeros(len(feats), int(lens.max()) if len(feats) else 0, dim, dtype=torch.float32)
    for i, f in enumerate(feats):
        out[i, : f.shape[0]] = f
    return out, lens


# ----------------------------------------------------------------------------------------------------
# loading an export
# ----------------------------------------------------------------------------------------------------
def read_config(path: str | Path) -> dict[str, Any]:
    """An export's config.json (path: the export directory or the file)."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / CONFIG
    if not p.is_file():
        raise ExportError(
            f"{p.parent if p.name == CONFIG else p}: not an encoder export (no {CONFIG}; make one with "
            "`apcscale export RUN_DIR OUT`)"
        )
    try:
        config = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{p}: not readable JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ExportError(
            f"{p}: format {config.get('format') if isinstance(config, dict) else None!r}, expected {FORMAT!r}"
        )
    return config


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ExportError(
                f"{path}: reading safetensors needs the safetensors package (pip install safetensors)"
            ) from None
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def load_encoder(path: str | Path, device: str | torch.device = "cpu", *, verify: bool = True) -> Encoder:
    """The encoder of an export directory (`apcscale export`), in eval mode, gradients off.
    verify: check the weights file against the sha256 recorded in config.json."""
    root = Path(path).expanduser()
    config = read_config(root)
    weights = root / config["weights"]["file"]
    if not weights.is_file():
        raise ExportError(f"{root}: the weights file {weights.name} is missing")
    if verify:
        digest = _sha256(weights)
        if digest != config["weights"]["sha256"]:
            raise ExportError(
                f"{weights}: sha256 {digest[:12]}... does not match config.json's "
                f"{config['weights']['sha256'][:12]}... (a changed or torn file)"
            )
    cfg = ModelConfig(**config["model"])
    net = APCNet(int(config["feature_dim"]), cfg)
    net.load_state_dict(_load_weights(weights))
    norm = config["normalisation"]
    enc = Encoder(
        net,
        FeatureConfig.from_dict(config["features"]),
        np.asarray(norm["mean"], dtype=np.float64),
        np.asarray(norm["std"], dtype=np.float64),
        config,
    )
    return enc.to(device)


# ----------------------------------------------------------------------------------------------------
# exporting a run
# ----------------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_parts(run_dir: str | Path, checkpoint: str = "best") -> dict[str, Any]:
    """What an export is made of, read from a run directory (a training run or a sweep's run):
    the net with the checkpoint's weights, the manifest's feature settings and statistics, and
    the provenance. Errors name the run directory and what it lacks."""
    import yaml

    from apcscale.data.errors import ManifestError
    from apcscale.data.manifest import Manifest
    from apcscale.train.rundir import RunDir

    run = RunDir(Path(run_dir).expanduser())
    if not run.path.is_dir():
        raise ExportError(f"{run.path}: no such run directory")
    if checkpoint not in CHECKPOINTS:
        raise ExportError(f"checkpoint {checkpoint!r}: choose one of {', '.join(CHECKPOINTS)}")
    ckpt_path = run.best_checkpoint if checkpoint == "best" else run.last_checkpoint
    if not ckpt_path.is_file():
        have = sorted(p.name for p in run.checkpoint_dir.glob("*.ckpt")) if run.checkpoint_dir.is_dir() else []
        raise ExportError(
            f"{run.path}: no checkpoint {ckpt_path.relative_to(run.path)} "
            f"({'it holds ' + ', '.join(have) if have else 'the run wrote no checkpoint'}"
            f"{'; --checkpoint last exports the last one' if 'last.ckpt' in have else ''})"
        )
    recipe_path = run.path / "recipe.yaml"
    if not recipe_path.is_file():
        raise ExportError(f"{run.path}: no recipe.yaml (not an apcscale run directory)")
    recipe = yaml.safe_load(recipe_path.read_text()) or {}
    try:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file
        raise ExportError(f"{ckpt_path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    hp = state.get("hyper_parameters") or {}
    if "state_dict" not in state or "model" not in hp or "feature_dim" not in hp:
        raise ExportError(f"{ckpt_path}: not an apcscale checkpoint (no model hyper-parameters or state_dict)")
    cfg = ModelConfig(**hp["model"])
    net = APCNet(int(hp["feature_dim"]), cfg)
    weights = {k[len("net.") :]: v for k, v in state["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(weights)

    manifest_path = (recipe.get("data") or {}).get("manifest")
    if not manifest_path:
        raise ExportError(
            f"{recipe_path}: data.manifest is not set, so the feature settings and statistics are "
            "unknown (a run trained from audio records the manifest it prepared in its recipe)"
        )
    try:
        manifest = Manifest.load(manifest_path)
    except ManifestError as exc:
        raise ExportError(
            f"{run.path}: its training data is gone, so its features and statistics cannot be exported: {exc}"
        ) from None
    if manifest.feature_dim != net.feature_dim:
        raise ExportError(f"{manifest.path}: {manifest.feature_dim} features, but {ckpt_path} reads {net.feature_dim}")
    summary = run.read_summary() or {}
    own = state.get("apcscale") or {}
    last_eval = own.get("last_eval") or {}
    size = count_parameters(net)
    provenance = {
        "run_id": summary.get("name") or run.path.name,
        "run_dir": str(run.path.resolve()),
        "status": summary.get("status"),
        "checkpoint": str(ckpt_path.relative_to(run.path)),
        "checkpoint_sha256": _sha256(ckpt_path),
        "checkpoint_dev_loss": _float(last_eval.get("dev/loss")),
        "checkpoint_frames": int(own.get("frames_seen", 0)),
        "min_dev_loss": _float(summary.get("min_dev_loss")),
        "final_dev_loss": _float(summary.get("final_dev_loss")),
        "copy_baseline": _float(summary.get("copy_baseline")),
        "subset": summary.get("subset") or (recipe.get("data") or {}).get("subset"),
        "frames": _float(summary.get("frames")),
        "flops": _float(summary.get("flops")),
        "manifest": str(manifest.path),
        "corpus": (manifest.data.get("source") or {}).get("root"),
    }
    return {"net": net, "cfg": cfg, "manifest": manifest, "provenance": provenance, "size": size}


def _float(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def encoder_from_run(run_dir: str | Path, checkpoint: str = "best") -> Encoder:
    """The encoder a run's checkpoint holds, without writing an export (what `export_run` writes, in memory)."""
    parts = run_parts(run_dir, checkpoint)
    m = parts["manifest"]
    config = {"provenance": parts["provenance"], "N": parts["size"].n_context}
    return Encoder(parts["net"], FeatureConfig.from_dict(m.data["features"]), m.mean, m.std, config)


def export_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    checkpoint: str = "best",
    overwrite: bool = False,
    weights_format: str = "auto",
) -> Path:
    """Write the export directory of a run's checkpoint (see the module doc); returns its config.json.
    weights_format: "auto" (safetensors if installed, else a torch state_dict), "safetensors" or "pt"."""
    parts = run_parts(run_dir, checkpoint)
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ExportError(f"{out}: already exists and is not empty (--overwrite replaces it)")
        if not (out / CONFIG).is_file():
            raise ExportError(f"{out}: not empty and not an encoder export; refusing to overwrite it")
        for name in (CONFIG, WEIGHTS_PT, WEIGHTS_SAFETENSORS):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in parts["net"].state_dict().items()}
    if weights_format == "auto":
        try:
            import safetensors.torch  # noqa: F401

            weights_format = "safetensors"
        except ImportError:
            weights_format = "pt"
    if weights_format == "safetensors":
        from safetensors.torch import save_file

        weights = out / WEIGHTS_SAFETENSORS
        save_file(state, str(weights))
    elif weights_format == "pt":
        weights = out / WEIGHTS_PT
        torch.save(state, weights)
    else:
        raise ExportError(f"weights format {weights_format!r}: choose auto, safetensors or pt")
    m, cfg, size = parts["manifest"], parts["cfg"], parts["size"]
    config = {
        "format": FORMAT,
        "model": asdict(cfg),
        "label": cfg.label,
        "feature_dim": int(m.feature_dim),
        "time_shift": int(cfg.time_shift),
        "N": int(size.n_context),
        "N_total": int(size.n_total),
        "layers": {
            "count": cfg.depth + 1,
            "width": cfg.width,
            "meaning": "0: the input projection; 1..depth: each context layer; -1: the last",
        },
        "features": dict(m.data["features"]),
        "normalisation": {
            "mean": [float(v) for v in m.mean],
            "std": [float(v) for v in m.std],
            "how": "(x - mean) * (1 / std), in float32, on features rounded to features.dtype",
            "frames": int(m.data["stats"].get("frames", 0)),
        },
        "weights": {"file": weights.name, "format": weights_format, "sha256": _sha256(weights)},
        "provenance": {
            **parts["provenance"],
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "torch": torch.__version__,
        },
    }
    path = out / CONFIG
    tmp = path.with_name(f".{CONFIG}.tmp")
    tmp.write_text(json.dumps(config, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


__all__ = [
    "Encoder",
    "ExportError",
    "LayerError",
    "FORMAT",
    "encoder_from_run",
    "export_run",
    "load_encoder",
    "pad",
    "read_config",
    "run_parts",
]
