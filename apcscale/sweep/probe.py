"""The throughput probe: seconds per run, estimated from a few timed training steps.

A few training steps (forward, backward, AdamW) of each (architecture, size) on real batches of
the data, on the device and with the threads a trial gets, plus the data stream's own cost per
frame; the rates are cached per machine (apcscale's cache dir, probe-cache.json), so a plan is
probed once. Estimates are for display and for time budgets; a FLOPs budget never reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apcscale.sweep.plan import PlannedRun
from apcscale.sweep.recipe import SweepRecipe
from apcscale.train.budget import EvalConfig, evaluation_points
from apcscale.utils.schema import from_dict


@dataclass
class ProbeResult:
    train_frames_per_s: float
    eval_frames_per_s: float
    device: str
    threads: int
    cached: bool = False


def _probe_key(model: dict, feature_dim: int, stream: dict, device: str, threads: int, data_tag: str) -> str:
    import torch

    ident = json.dumps(
        {
            "model": {k: model.get(k) for k in ("arch", "width", "depth", "heads", "ff_mult")},
            "F": feature_dim,
            "stream": stream,
            "device": device,
            "threads": threads,
            "torch": torch.__version__,
            "host": socket.gethostname(),
            "cpu": platform.processor(),
            "data": data_tag,
        },
        sort_keys=True,
    )
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def _probe_cache_path() -> Path:
    from apcscale.data.source import cache_dir

    return cache_dir() / "probe-cache.json"


def sample_batches(manifest: Path, subset: str, stream: dict, n: int = 24) -> tuple[list[dict], float, float]:
    """Real training batches (batched as training batches them: `stream` is DataConfig.stream_options())
    for the probe, the seconds per frame the data stream takes to make them (reading, decoding,
    cropping, shuffling, batching), and the frames the network computes on per frame counted."""
    import torch

    from apcscale.data import APCDataModule

    dm = APCDataModule(manifest, subset=subset, num_workers=0, **stream)
    dm.setup("fit")
    batches, stamps, frames, executed = [], [], [], 0
    try:
        for batch in dm.train_dataloader():
            stamps.append(time.perf_counter())
            batches.append({k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
            frames.append(int(batch["n_frames"]))
            executed += int(batch["feats"].shape[0] * batch["feats"].shape[1])
            if len(batches) >= n:
                break
    finally:
        dm.teardown("fit")
    skip = min(4, len(stamps) - 2)  # the first batches also fill the shuffle buffer
    seconds_per_frame = (stamps[-1] - stamps[skip]) / max(sum(frames[skip + 1 :]), 1) if len(stamps) > 2 else 0.0
    return batches[:8], seconds_per_frame, executed / max(sum(frames), 1)


def _sample_readable(manifest: Path, subsets: list[str], stream: dict, log) -> tuple[list[dict], float, float]:
    """sample_batches from the first subset (largest first) whose shards read: a corrupt shard fails only
    the runs that read it (in training, where the run is retried and failed), not the whole plan."""
    from apcscale.data.errors import ShardError

    last: ShardError | None = None
    for subset in subsets:
        try:
            return sample_batches(manifest, subset, stream)
        except ShardError as exc:
            last = exc
            log(f"probe: {exc}; the runs that read it will fail; sampling a smaller subset")
    assert last is not None
    raise last


def probe_throughput(
    model: dict, feature_dim: int, batches: list[dict], *, steps: int, threads: int, device: str = "cpu"
) -> ProbeResult:
    """Frames per second of training steps (forward, backward, AdamW) and of evaluation."""
    import torch

    from apcscale.models.config import ModelConfig
    from apcscale.models.layout import Layout
    from apcscale.models.net import APCNet

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        torch.manual_seed(0)
        net = APCNet(feature_dim, from_dict(ModelConfig, model, "model")).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        moved = [{k: v.to(device) for k, v in b.items()} for b in batches]

        def sync():
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        def train_step(b):
            total, count = net.loss_terms(b["feats"], Layout.of(b))
            (total / count.clamp_min(1)).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        warm = min(2, len(moved))
        for b in moved[:warm]:
            train_step(b)
        sync()
        frames, t0 = 0, time.perf_counter()
        for i in range(steps):
            b = moved[(warm + i) % len(moved)]
            train_step(b)
            frames += int(b["lengths"].sum())
        sync()
        train_rate = frames / max(time.perf_counter() - t0, 1e-9)
        with torch.no_grad():
            frames, t0 = 0, time.perf_counter()
            for b in moved:
                net(b["feats"], Layout.of(b))
                frames += int(b["lengths"].sum())
            sync()
            eval_rate = frames / max(time.perf_counter() - t0, 1e-9)
        return ProbeResult(train_rate, eval_rate, device=device, threads=threads)
    finally:
        torch.set_num_threads(previous)


def _local_gpus() -> float:
    try:
        import torch

        return float(torch.cuda.device_count())
    except Exception:
        return 0.0


def estimate_seconds(
    recipe: SweepRecipe,
    manifest: Path,
    runs: list[PlannedRun],
    feature_dim: int,
    dev: dict,
    subsets_info: dict,
    *,
    probe: bool,
    probe_fn=None,
    log=None,
) -> dict[str, Any]:
    """Fill each run's est_seconds from the throughput probe (or a FLOP-rate guess without one)."""
    if log is None:
        from apcscale.utils.log import get_logger

        log = get_logger(__name__).info
    d = recipe.data
    largest = list(subsets_info)[-1]
    dev_frames = float(dev.get("frames") or 0.1 * float(subsets_info[largest]["frames"]))
    cache_path = _probe_cache_path()
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}
    rates: dict[str, ProbeResult] = {}
    batches = None
    info: dict[str, Any] = {"dev_frames": dev_frames, "sizes": {}}
    started = time.perf_counter()
    # the data stream's own cost per training frame (paid in the training process when num_workers == 0)
    stream = d.stream_options()
    data_key = _probe_key({"arch": "data"}, feature_dim, stream, "cpu", 1, str(manifest))
    data_s_per_frame = float(cache.get(data_key, {}).get("seconds_per_frame", 0.0))
    executed = cache.get(data_key, {}).get("executed_per_counted")
    if probe and (data_key not in cache or executed is None):
        batches, data_s_per_frame, executed = _sample_readable(manifest, list(subsets_info)[::-1], stream, log)
        cache[data_key] = {
            "seconds_per_frame": data_s_per_frame,
            "executed_per_counted": executed,
            "label": "data stream",
            "when": time.time(),
        }
    info["data_seconds_per_frame"] = data_s_per_frame
    info["executed_per_counted"] = executed  # padding: frames computed on per frame counted (None: not probed)
    info["batching"] = {k: stream[k] for k in ("batching", "batch_size", "batch_frames")}
    for r in runs:
        threads = max(1, int(r.cpus))
        device = "cuda" if r.gpus > 0 and _local_gpus() > 0 else "cpu"
        key = _probe_key(r.recipe["model"], feature_dim, stream, device, threads, str(manifest))
        if key not in rates:
            if key in cache:
                c = cache[key]
                rates[key] = ProbeResult(c["train"], c["eval"], c["device"], c["threads"], cached=True)
            elif probe:
                if batches is None:
                    batches, _, _ = sample_batches(manifest, largest, stream)
                fn = probe_fn or probe_throughput
                rates[key] = fn(
                    r.recipe["model"],
                    feature_dim,
                    batches,
                    steps=recipe.plan.probe_steps,
                    threads=threads,
                    device=device,
                )
                cache[key] = {
                    "train": rates[key].train_frames_per_s,
                    "eval": rates[key].eval_frames_per_s,
                    "device": device,
                    "threads": threads,
                    "label": r.label,
                    "when": time.time(),
                }
            else:
                # no probe: assume a modest 2 GFLOP/s per thread on CPU (a stated guess, not a measurement)
                flops_rate = 2e9 * threads if device == "cpu" else 5e12
                rate = flops_rate / max(r.flops_per_frame, 1.0)
                rates[key] = ProbeResult(rate, 3 * rate, device, threads)
        p = rates[key]
        n_evals = len(evaluation_points(max(1, r.planned_frames), from_dict(EvalConfig, r.recipe["eval"])))
        scale = max(1, r.workers) if r.gpus > 0 or r.workers > 1 else 1
        loading = data_s_per_frame if int(r.recipe["data"].get("num_workers", 0)) == 0 else 0.0
        r.est_seconds = (
            r.planned_frames * (1.0 / (p.train_frames_per_s * scale) + loading)
            + n_evals * (dev_frames / p.eval_frames_per_s + recipe.plan.eval_overhead_s)
            + recipe.plan.trial_overhead_s
        )
        info["sizes"][r.label] = {
            "train_frames_per_s": p.train_frames_per_s,
            "eval_frames_per_s": p.eval_frames_per_s,
            "device": p.device,
            "threads": p.threads,
            "cached": p.cached,
        }
    info["seconds"] = time.perf_counter() - started
    info["probed"] = bool(probe)
    info["trial_overhead_s"] = recipe.plan.trial_overhead_s
    if probe:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(cache, indent=1))
            os.replace(tmp, cache_path)
        except OSError:
            pass
    return info


__all__ = ["ProbeResult", "probe_throughput", "estimate_seconds", "sample_batches"]
