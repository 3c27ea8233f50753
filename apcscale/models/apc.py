"""The APC LightningModule: one module, LSTM, GRU or Transformer context network.

Besides the usual training/validation steps, it keeps the counts a scaling study
needs, exactly: training frames consumed (the sum of valid, unpadded frames of
every batch it trained on), analytic training FLOPs, optimiser steps and wall
time; and the frames the network actually computed on (the batch tensors' rows x
steps, padding included), so that a run reports executed / counted frames. Under
DDP the counts are summed over ranks every step, so every rank sees the same
global numbers and takes the same decisions.

The run's budget lives in a `Clock` (apcscale.train.budget). The training
stream (apcscale.train.loop.EvalIntervals) asks `interval_ends_after` before
each batch and ends the Lightning "epoch" after the batch that reaches the next
evaluation point; Lightning then runs the dev evaluation (a `-1` from
`on_train_batch_start` would end the epoch *without* validating), and after the
last point the module sets `trainer.should_stop`. A Lightning epoch is
therefore one evaluation interval, not a pass over the data (the training
stream is infinite and cycles its subset).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any

import lightning as L
import torch

from apcscale.models.config import ModelConfig
from apcscale.models.counting import batch_training_flops, count_parameters, forward_flops, training_flops_per_frame
from apcscale.models.layout import Layout
from apcscale.models.net import APCNet, copy_last_frame_terms, l1_terms
from apcscale.models.optim import OptimConfig, lr_factor
from apcscale.train.budget import Clock
from apcscale.utils.schema import from_dict


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class APCModule(L.LightningModule):
    def __init__(
        self,
        feature_dim: int,
        model: ModelConfig | dict,
        optim: OptimConfig | dict | None = None,
        clock: dict | None = None,
        compile: bool = False,
        nan_check_every: int = 0,
    ):
        super().__init__()
        model_cfg = model if isinstance(model, ModelConfig) else from_dict(ModelConfig, model, "model")
        optim_cfg = optim if isinstance(optim, OptimConfig) else from_dict(OptimConfig, optim or {}, "optim")
        self.save_hyperparameters(
            {"feature_dim": feature_dim, "model": asdict(model_cfg), "optim": asdict(optim_cfg), "compile": compile}
        )
        self.model_cfg, self.optim_cfg = model_cfg, optim_cfg
        self.net = APCNet(feature_dim, model_cfg)
        self.size = count_parameters(self.net)
        self.clock = Clock(**clock) if clock else None
        self.compile_context = compile
        self.nan_check_every = nan_check_every
        self.frames_seen = 0
        self.frames_executed = 0  # rows x steps of the training batches: counted frames + padding
        self.frames_tracked = 0  # the counted frames of those batches (a checkpoint without the count: fewer)
        self.flops_seen = 0.0
        self.train_time = 0.0
        self._step_started = 0.0
        self._fit_started: float | None = None
        self._wall_offset = 0.0
        self._dev: list[torch.Tensor] | None = None
        self._dev_flops = 0.0
        self._last_global_batch_frames = 0
        self.last_eval: dict[str, float] = {}

    # ----- counting -------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """N: context-network parameters."""
        return self.size.n_context

    def flops_per_frame(self, seq_len: int) -> float:
        return training_flops_per_frame(self.net, seq_len)

    @property
    def executed_per_counted(self) -> float:
        """Frames the network computed on per frame counted (1.0: no padding computed)."""
        return self.frames_executed / self.frames_tracked if self.frames_tracked else float("nan")

    @property
    def wall_time(self) -> float:
        running = time.perf_counter() - self._fit_started if self._fit_started is not None else 0.0
        return self._wall_offset + running

    def on_before_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        # lengths are still on the CPU here: count FLOPs without a device sync
        lengths = batch["lengths"].tolist()
        if self.trainer is not None and self.trainer.training:
            batch["flops"] = batch_training_flops(self.net, lengths)
            batch["executed"] = int(batch["feats"].shape[0] * batch["feats"].shape[1])
        else:
            batch["flops"] = forward_flops(self.net, lengths)
        return batch

    # ----- lifecycle ------------------------------------------------------------------------
    def configure_model(self) -> None:
        if self.compile_context and not getattr(self, "_compiled", False):
            self.net.context.compile(dynamic=None)
            self._compiled = True

    def on_fit_start(self) -> None:
        self._fit_started = time.perf_counter()

    def on_fit_end(self) -> None:
        self._wall_offset = self.wall_time
        self._fit_started = None

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net(feats)

    # ----- training -------------------------------------------------------------------------
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._step_started = time.perf_counter()

    def interval_ends_after(self, next_batch_frames: int) -> bool:
        """Will an evaluation (or the end of the budget) be due after the batch about to train?

        Called by the training stream (apcscale.train.loop.EvalIntervals) before it hands
        Lightning another batch: when this is true the stream ends the current Lightning
        epoch after that batch, and Lightning then runs the dev evaluation. Under DDP the
        frames of the coming batch are estimated by the last global batch, so every rank
        takes the same decision.
        """
        if self.clock is None:
            return False
        if self.trainer is not None and self.trainer.world_size > 1:
            next_batch_frames = self._last_global_batch_frames
        frames = self.frames_seen + int(next_batch_frames)
        steps = (self.trainer.global_step if self._trainer is not None else 0) + 1
        return self.clock.eval_due(frames, steps) or self.clock.done(frames, steps)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        total, count = self.net.loss_terms(batch["feats"], Layout.of(batch))
        loss = total / count.clamp_min(1.0)
        every = self.nan_check_every or (1 if loss.device.type == "cpu" else 16)
        if self.trainer.global_step % every == 0 and not bool(torch.isfinite(loss)):
            raise NonFiniteLossError(
                f"training loss became {loss.item()} at step {self.trainer.global_step} "
                f"after {self.frames_seen} frames ({self.model_cfg.label}, lr {self.optim_cfg.lr:g}); "
                "the last checkpoint and the logged curve are kept"
            )
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch["feats"].shape[0])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: dict, batch_idx: int) -> None:
        frames, flops = batch["n_frames"], batch["flops"]
        executed = batch.get("executed", int(batch["feats"].shape[0] * batch["feats"].shape[1]))
        if self.trainer.world_size > 1:
            counts = torch.tensor([float(frames), flops, float(executed)], dtype=torch.float64, device=self.device)
            counts = self.trainer.strategy.reduce(counts, reduce_op="sum")
            frames, flops, executed = int(round(counts[0].item())), counts[1].item(), int(round(counts[2].item()))
        self._last_global_batch_frames = int(frames)
        self.frames_seen += int(frames)
        self.frames_executed += int(executed)
        self.frames_tracked += int(frames)
        self.flops_seen += float(flops)
        self.train_time += time.perf_counter() - self._step_started

    def configure_optimizers(self):
        decay, no_decay = [], []
        for p in self.net.parameters():
            (decay if p.ndim >= 2 else no_decay).append(p)
        cfg = self.optim_cfg
        groups = [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        fused = torch.cuda.is_available() and all(p.is_cuda for p in self.net.parameters())
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.eps, fused=fused or None)
        if self.clock is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_lambda)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _lr_lambda(self, _step: int) -> float:
        steps = self.trainer.global_step if self._trainer is not None else 0
        return lr_factor(self.clock.fraction(self.frames_seen, steps), self.optim_cfg)

    # ----- evaluation -----------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._dev = [torch.zeros((), dtype=torch.float64, device=self.device) for _ in range(3)]
        self._dev_flops = 0.0

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        feats, layout = batch["feats"], Layout.of(batch)
        total, count = l1_terms(self.net(feats, layout), feats, layout, self.net.time_shift)
        copy_total, _ = copy_last_frame_terms(feats, layout, self.net.time_shift)
        self._dev[0] += total.double()
        self._dev[1] += count.double()
        self._dev[2] += copy_total.double()
        self._dev_flops += batch["flops"]

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        sums = torch.stack(self._dev)
        if self.trainer.world_size > 1:
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        total, count, copy_total = sums.tolist()
        if count == 0:
            raise RuntimeError("the dev split produced no prediction targets (all dev utterances too short?)")
        dev_loss = total / count
        steps = self.trainer.global_step
        record = {
            "dev/loss": dev_loss,
            "dev/copy_baseline": copy_total / count,
            "frames": float(self.frames_seen),
            "flops": float(self.flops_seen),
            "steps": float(steps),
            "wall_time": float(self.wall_time),
            "train_time": float(self.train_time),
            "lr": float(self.trainer.optimizers[0].param_groups[0]["lr"]) if self.trainer.optimizers else 0.0,
        }
        self.last_eval = record
        for key, value in record.items():
            self.log(key, value, prog_bar=key == "dev/loss", sync_dist=False, rank_zero_only=False)
        if self.clock is not None and self.trainer.state.fn == "fit":
            self.clock.mark_evaluated(self.frames_seen, steps)
            if self.clock.done(self.frames_seen, steps):
                self.trainer.should_stop = True
            if not math.isfinite(dev_loss):
                raise NonFiniteLossError(f"dev loss became {dev_loss} after {self.frames_seen} frames")

    # ----- checkpoints ----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["apcscale"] = {
            "frames_seen": self.frames_seen,
            "frames_executed": self.frames_executed,
            "frames_tracked": self.frames_tracked,
            "flops_seen": self.flops_seen,
            "train_time": self.train_time,
            "wall_time": self.wall_time,
            "clock": self.clock.state_dict() if self.clock else None,
            "last_eval": self.last_eval,
            "stopping": getattr(self, "stopping_state", None),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("apcscale", {})
        self.frames_seen = int(state.get("frames_seen", 0))
        self.frames_executed = int(state.get("frames_executed", 0))
        self.frames_tracked = int(state.get("frames_tracked", 0))
        self.flops_seen = float(state.get("flops_seen", 0.0))
        self.train_time = float(state.get("train_time", 0.0))
        self._wall_offset = float(state.get("wall_time", 0.0))
        self.last_eval = dict(state.get("last_eval") or {})
        if state.get("stopping") is not None:
            self.stopping_state = state["stopping"]
        if state.get("clock") and self.clock is not None:
            self.clock.load_state_dict(state["clock"])
