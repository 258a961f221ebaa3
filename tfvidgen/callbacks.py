"""Per-step hooks of the training loop: progress output, TensorBoard scalars and sample videos,
checkpoints with a non-finite guard, and the profiler window.

Each hook has `on_step_end(step, logs)` (host side, after the step ran) and `close()`. Hooks never
change the model's weights.
"""

from __future__ import annotations

import errno
import math
import re
import sys
import time

import numpy as np
import tensorflow as tf
from absl import logging

from tfvidgen import checkpoints, viz

__all__ = ["NonFiniteError", "CheckpointSaveError", "ProgressAndScalars", "VideoSamples",
           "Checkpointer", "Profiler",
           "gif_summary", "assert_finite"]


class NonFiniteError(RuntimeError):
    """A loss or weight became NaN/Inf; training stops without saving the poisoned state."""


def assert_finite(step: int, logs: dict, last_checkpoint: int | None) -> None:
    bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
    if bad:
        kept = (f"the last good checkpoint (step {last_checkpoint}) is kept"
                if last_checkpoint is not None else "no checkpoint had been written yet")
        raise NonFiniteError(
            f"non-finite loss at step {step}: "
            + ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
            + f"; training stopped and {kept}. Lower the learning rates or check the data.")


def _shown(key: str) -> bool:
    """Losses on the progress line: each phase's total, D's mean real/fake scores, and
    reconstruction errors (a VAE-GAN's progress)."""
    return (key.endswith("_total") or key.startswith(("d_real", "d_fake"))
            or key.endswith("_mse"))


class ProgressAndScalars:
    """Averages the step logs over `every` steps; prints a progress line and writes scalars.

    Each value is averaged over the steps that logged it: a model whose steps run different
    tasks (TwoStreamVAN) logs each task's losses only on that task's steps."""

    def __init__(self, writer, every: int, total_steps: int, global_batch: int, learning_rates: dict,
                 start_step: int, stream=sys.stdout):
        self.writer, self.every, self.total = writer, every, total_steps
        self.global_batch, self.learning_rates, self.stream = global_batch, learning_rates, stream
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._t0 = time.perf_counter()
        self._step0 = start_step
        self._overhead_per_step = 0.0

    def exclude(self, seconds: float, every: int = 0) -> None:
        """Leaves `seconds` of host work done between two steps (an evaluation) out of the step
        time; when that work recurs every `every` steps, the ETA adds its share per step."""
        self._t0 += seconds
        if every:
            self._overhead_per_step = seconds / every

    def on_step_end(self, step: int, logs: dict) -> None:
        for k, v in logs.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
            self._counts[k] = self._counts.get(k, 0) + 1
        if step % self.every and step != self.total:
            return
        elapsed = time.perf_counter() - self._t0
        steps = step - self._step0
        step_time = elapsed / max(steps, 1)
        videos_per_sec = steps * self.global_batch / max(elapsed, 1e-9)
        means = {k: v / self._counts[k] for k, v in self._sums.items()}
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for k, v in means.items():
                    tf.summary.scalar(f"losses/{k}", v)
                for name, lr in self.learning_rates.items():
                    tf.summary.scalar(f"learning_rate/{name}", lr)
                tf.summary.scalar("perf/step_time_s", step_time)
                tf.summary.scalar("perf/videos_per_sec", videos_per_sec)
        eta = (self.total - step) * (step_time + self._overhead_per_step)
        shown = " ".join(f"{k}={v:.3f}" for k, v in sorted(means.items()) if _shown(k))
        print(f"step {step}/{self.total} | {shown} | {step_time:.3f}s/step "
              f"{videos_per_sec:.1f} videos/s | ETA {eta / 60:.1f} min", file=self.stream,
              flush=True)
        self._sums, self._counts = {}, {}
        self._t0, self._step0 = time.perf_counter(), step


def gif_summary(name: str, frames: np.ndarray, step: int, fps: int = 8) -> None:
    """Writes an animated GIF as an image summary (TF has no GIF encoder; the image tab plays it)."""
    from tensorboard.plugins.image import metadata as image_metadata
    metadata = image_metadata.create_summary_metadata(display_name=name,
                                                      description="animated GIF")
    _, h, w, _ = frames.shape
    tensor = tf.constant([str(w).encode(), str(h).encode(), viz.encode_gif(frames, fps)])
    tf.summary.write(name, tensor, step=step, metadata=metadata)


class EMAStatistics:
    """Before the hooks that read the EMA generator at a step (samples, checkpoint, evaluation)
    and before the final save: re-estimates its BN statistics from its own activations
    (models.base.VideoGAN.recalibrate_ema_statistics). Runs on every worker at the same steps:
    synchronized BN all-reduces across them."""

    def __init__(self, model, run, every: tuple, total_steps: int):
        self.model, self.run, self.total = model, run, total_steps
        self.every = tuple(e for e in every if e)
        self._last = None

    def on_step_end(self, step: int, logs: dict) -> None:
        if step == self.total or any(step % e == 0 for e in self.every):
            self.recalibrate(step)

    def recalibrate(self, step: int) -> None:
        if step != self._last:
            self.model.recalibrate_ema_statistics(self.run)
            self._last = step


class VideoSamples:
    """Every `every` steps: videos from a FIXED set of latents, as a frame grid and as a GIF."""

    def __init__(self, writer, every: int, model, latents: dict):
        self.writer, self.every, self.model, self.latents = writer, every, model, latents
        self._generate = tf.function(lambda z: model.generate(z, training=False))

    def on_step_end(self, step: int, logs: dict) -> None:
        if step % self.every:
            return
        self.write(step)

    def write(self, step: int) -> None:
        videos = viz.to_uint8(self._generate(self.latents).numpy())
        if self.writer is None:
            return
        with self.writer.as_default(step=step):
            tf.summary.image("samples/frames", viz.frame_strip_grid(videos)[None])
            gif_summary("samples/animated", viz.tile_videos(videos), step)


class CheckpointSaveError(OSError):
    """A checkpoint could not be written (e.g. disk full); nothing partial is left behind."""

    def __str__(self):
        return self.strerror


class Checkpointer:
    """Saves every `every` steps with CheckpointManager, after checking every weight is finite."""

    def __init__(self, manager: tf.train.CheckpointManager, every: int, variables):
        self.manager, self.every, self.variables = manager, every, variables
        self.last_saved = (int(manager.checkpoint.step.numpy()) if manager.latest_checkpoint
                           else None)

    def on_step_end(self, step: int, logs: dict) -> None:
        if step % self.every == 0:
            self.save(step)

    def save(self, step: int) -> None:
        if self.last_saved == step:
            return
        finite = all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in self.variables
                     if tf.as_dtype(v.dtype).is_floating)
        if not finite:
            raise NonFiniteError(f"non-finite weights at step {step}; not saving. The last good "
                                 f"checkpoint (step {self.last_saved}) is kept.")
        try:
            path = self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as e:
            checkpoints.remove_partial_save(self.manager.directory, step)
            message = (getattr(e, "message", None) or str(e)).strip().splitlines()[0]
            if "no space left" in message.lower():
                code, reason = errno.ENOSPC, "no space left on device"
            else:      # TF's framing ({{function_node ...}}, [Op:SaveV2]) says nothing to a user
                code = errno.EIO
                reason = re.sub(r"\{\{[^}]*\}\}|\[Op:\w+\]", "", message).strip()
            kept = (f"the last checkpoint (step {self.last_saved}) is kept"
                    if self.last_saved is not None else "no checkpoint had been written yet")
            raise CheckpointSaveError(
                code, f"{self.manager.directory}: {reason} while saving checkpoint {step}; its "
                f"partial files were removed and {kept}", self.manager.directory) from None
        self.last_saved = step
        logging.info("saved checkpoint %s", path)


class Profiler:
    """Traces steps (start, end] with the TF profiler into the TensorBoard log dir."""

    def __init__(self, logdir: str, window: tuple[int, ...]):
        self.logdir, self.window, self.active = logdir, window, False

    def on_step_end(self, step: int, logs: dict) -> None:
        if not self.window:
            return
        if step == self.window[0] and not self.active:
            tf.profiler.experimental.start(self.logdir)
            self.active = True
        elif step >= self.window[1] and self.active:
            self.close()

    def close(self) -> None:
        if self.active:
            tf.profiler.experimental.stop()
            self.active = False
            logging.info("profile written under %s/plugins/profile", self.logdir)
