"""Cooldown branches from stable-phase checkpoints against runs trained from scratch (WSD).

For one model on all of FSDD's training audio: several training lengths T_1 < T_2 < T_3. Each is
measured two ways, for each seed:

- scratch: a WSD run of length T_k (warmup 5%, cooldown over the last 20%), trained from random
  initialisation;
- branch: one constant-rate parent run (the shared stable phase, 0.8 T_3 frames) saves a checkpoint
  at 0.8 T_k, and a WSD run of length T_k starts from it (TrainRecipe.init_from), so it trains
  only its cooldown, 0.2 T_k frames.

Reported: each length's final dev L1 both ways (the best over the cooldown's evaluations) and
their relative difference, and the training frames each design spends for all the lengths:
sum T_k against 0.8 T_3 + sum 0.2 T_k. Hägele et al. (2024; docs/scaling.md) found the branches match
fresh runs of the same length; this measures it on speech.

    python benchmarks/bench_cooldown.py                          # LSTM w32 d2, 3 lengths up to 300k frames, 2 seeds
    python benchmarks/bench_cooldown.py --arch transformer --width 64 --depth 3 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

import lightning as L

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apcscale.train.config import TrainRecipe  # noqa: E402
from apcscale.train.run import run_training  # noqa: E402
from apcscale.utils.schema import from_dict  # noqa: E402

DECAY = 0.2


class SaveAt(L.Callback):
    """Keeps a copy of the checkpoint at the first evaluation at or past each target frame count."""

    def __init__(self, targets: list[int], out: Path):
        self.targets, self.out, self.saved = sorted(targets), out, {}

    def on_validation_end(self, trainer, pl_module) -> None:
        for t in self.targets:
            if t not in self.saved and pl_module.frames_seen >= t:
                path = self.out / f"at-{t}.ckpt"
                trainer.save_checkpoint(path)
                self.saved[t] = (path, int(pl_module.frames_seen))


def base(args, manifest: Path, name: str, seed: int, **over) -> TrainRecipe:
    model = {"arch": args.arch, "width": args.width, "depth": args.depth}
    if args.arch == "transformer":
        model["heads"] = max(1, args.width // 32)
    data = {
        "name": name,
        "data": {
            "manifest": str(manifest),
            "crop_frames": 128,
            "batch_size": 32,
            "num_workers": 0,
            "eval_crop_frames": 400,
            "seed": seed,
        },
        "model": model,
        "optim": {"lr": args.lr, "schedule": "wsd", "warmup": 0.05, "decay": DECAY},
        "budget": {"frames": 1},
        "eval": {"points": 8, "spacing": "log"},
        "trainer": {"accelerator": "cpu", "precision": "32-true", "seed": seed, "log_every_n_steps": 50},
    }
    for key, value in over.items():
        section, field = key.split("__")
        data[section][field] = value
    return from_dict(TrainRecipe, data)


def best_after(curve: list[dict], frames: float) -> float:
    return min(p["dev/loss"] for p in curve if p["frames"] >= frames)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", default=str(ROOT.parent / "shared" / "data" / "fsdd"))
    ap.add_argument("--arch", default="lstm", choices=["lstm", "transformer"])
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lengths", type=int, nargs="+", default=[75_000, 150_000, 300_000], help="training frames")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--output", type=Path, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    from apcscale.data.prepare import ensure_prepared

    out = args.output or Path(tempfile.mkdtemp(prefix="bench-cooldown-"))
    manifest = ensure_prepared(Path(args.audio), out / "prepared", progress=False)
    lengths = sorted(args.lengths)
    rows = []
    for seed in args.seeds:
        # the shared stable phase: constant rate (after the same 5% warmup) to 0.8 of the longest length
        stable = int((1 - DECAY) * lengths[-1])
        ckdir = out / f"seed{seed}" / "stable-checkpoints"
        ckdir.mkdir(parents=True, exist_ok=True)
        saver = SaveAt([int((1 - DECAY) * T) for T in lengths], ckdir)
        # evaluate (and so checkpoint) at every branch point: linear points land on them when they divide
        step = math.gcd(*[int((1 - DECAY) * T) for T in lengths])
        parent = base(
            args,
            manifest,
            "stable",
            seed,
            optim__schedule="constant",
            budget__frames=stable,
            eval__points=stable // step if stable % step == 0 and stable // step <= 40 else 16,
            eval__spacing="linear",
        )
        res_parent = run_training(parent, run_dir=out / f"seed{seed}" / "stable", callbacks=[saver], progress=False)
        for T in lengths:
            target = int((1 - DECAY) * T)
            path, F0 = saver.saved[target]
            Tb = int(round(F0 / (1 - DECAY)))
            branch = base(
                args, manifest, f"branch-{T}", seed, budget__frames=Tb, eval__points=6, eval__spacing="linear"
            )
            branch.init_from = str(path)
            rb = run_training(branch, run_dir=out / f"seed{seed}" / f"branch-{T}", progress=False)
            scratch = base(args, manifest, f"scratch-{T}", seed, budget__frames=Tb, eval__points=8)
            rs = run_training(scratch, run_dir=out / f"seed{seed}" / f"scratch-{T}", progress=False)
            lb, ls = best_after(rb.curve, F0 + 1), best_after(rs.curve, F0 + 1)
            rows.append(
                {
                    "seed": seed,
                    "length": T,
                    "frames": Tb,
                    "branch": lb,
                    "scratch": ls,
                    "diff": lb / ls - 1,
                    "branch_frames": rb.summary["frames"] - F0,
                    "scratch_frames": rs.summary["frames"],
                    "stable_frames": res_parent.summary["frames"],
                }
            )
            print(
                f"seed {seed}, {Tb:>7,} frames: scratch {ls:.4f}, branch {lb:.4f} ({lb / ls - 1:+.2%}); "
                f"frames trained {rs.summary['frames']:,} vs {rb.summary['frames'] - F0:,} (+ the shared stable phase)",
                flush=True,
            )

    from rich.console import Console
    from rich.table import Table

    table = Table(
        title="cooldown branch vs scratch WSD run of the same length: best dev L1 of the cooldown (mean of seeds)",
        title_justify="left",
    )
    for col in ("length (frames)", "scratch", "branch", "branch / scratch - 1, each seed", "seeds"):
        table.add_column(col, justify="right")
    for T in lengths:
        rs = [r for r in rows if r["length"] == T]
        table.add_row(
            f"~{T:,}",
            f"{statistics.mean(r['scratch'] for r in rs):.4f}",
            f"{statistics.mean(r['branch'] for r in rs):.4f}",
            " ".join(f"{r['diff']:+.2%}" for r in rs),
            str(len(rs)),
        )
    Console(highlight=False).print(table)
    per_seed_scratch = sum(r["scratch_frames"] for r in rows) / len(args.seeds)
    per_seed_branch = (
        sum(r["branch_frames"] for r in rows) + sum({r["seed"]: r["stable_frames"] for r in rows}.values())
    ) / len(args.seeds)
    print(
        f"frames trained for all {len(lengths)} lengths (per seed): scratch {per_seed_scratch:,.0f}, "
        f"stable phase + branches {per_seed_branch:,.0f} ({per_seed_branch / per_seed_scratch:.2f}x)"
    )
    diffs = [r["diff"] for r in rows]
    print(
        f"branch vs scratch: mean {statistics.mean(diffs):+.2%}, range {min(diffs):+.2%} to {max(diffs):+.2%} "
        f"over {len(diffs)} (length, seed) pairs"
    )
    (out / "bench_cooldown.json").write_text(json.dumps(rows, indent=1))
    print(f"figures in {out / 'bench_cooldown.json'}")
    if args.output is None:
        shutil.rmtree(out / "prepared", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
