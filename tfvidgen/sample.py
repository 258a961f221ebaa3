"""`python -m tfvidgen.sample --workdir=W --num_videos=8 --seed=0 --output=samples.gif`.

Writes videos from a workdir's latest checkpoint (the EMA generator when training kept one), or
from an export (`--saved_model`: the same videos for the same flags), as an animated GIF grid, an
MP4 grid, or a PNG frame grid (one row per video).
  --fix=appearance   every video shares the appearance latent (z_a), motion varies
  --fix=motion       every video shares the motion latent(s), appearance varies
  --fix=grid         rows share appearance, columns share motion (a sqrt(N) x sqrt(N) grid)
  --interpolate=appearance|motion|both   N steps from the latents of --seed to those of --seed+1
  --label=K          class for conditional models (default: cycle through the classes)
"""

from __future__ import annotations

import math
import sys

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
APPEARANCE_KEYS = ("z_appearance",)


def define_flags() -> None:
    """Defines this entry point's flags (only when run as a program)."""
    flags.DEFINE_string("workdir", None, "Training workdir with checkpoints.")
    flags.DEFINE_string("saved_model", None, "Exported SavedModel directory "
                        "(export/<model>/<version>) instead of --workdir.")
    flags.DEFINE_integer("num_videos", 8, "How many videos.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Sampling seed (same seed, same videos).")
    flags.DEFINE_integer("label", None, "Class label for conditional models.")
    flags.DEFINE_enum("fix", "none", ["none", "appearance", "motion", "grid"],
                      "Share latents across videos to show disentanglement.")
    flags.DEFINE_enum("interpolate", "none", ["none", "appearance", "motion", "both"],
                      "Interpolate between the latents of --seed and --seed+1.")
    flags.DEFINE_string("output", "samples.gif", "Output .gif, .mp4 or .png.")
    flags.DEFINE_integer("fps", 8, "Frames per second of GIF/MP4.", lower_bound=1)


def arrange_latents(base: dict, other: dict, fix: str, interpolate: str, n: int) -> tuple[dict, int]:
    """Combines two independent latent sets [n, ...] per the --fix/--interpolate request.

    Returns (latents, grid columns). Appearance keys are APPEARANCE_KEYS; every other float latent is
    motion; labels pass through.
    """
    out, columns = dict(base), None
    kinds = {k: ("appearance" if k in APPEARANCE_KEYS else "motion") for k in base
             if np.issubdtype(np.asarray(base[k]).dtype, np.floating)}
    if interpolate != "none":
        alpha = np.linspace(0.0, 1.0, n, dtype=np.float32)
        for k, kind in kinds.items():
            if interpolate in ("both", kind):
                a, b = np.asarray(base[k])[:1], np.asarray(other[k])[:1]
                out[k] = (1 - alpha[:, None]) * a + alpha[:, None] * b
            else:
                out[k] = np.repeat(np.asarray(base[k])[:1], n, axis=0)
        return out, n
    if fix in ("appearance", "motion"):
        for k, kind in kinds.items():
            if kind == fix:
                out[k] = np.repeat(np.asarray(base[k])[:1], n, axis=0)
    elif fix == "grid":
        side = int(math.isqrt(n))
        rows, cols = np.divmod(np.arange(side * side), side)
        for k, kind in kinds.items():
            out[k] = np.asarray(base[k])[rows if kind == "appearance" else cols]
        for k in base:
            if k not in kinds:
                out[k] = np.asarray(base[k])[: side * side]
        columns = side
    return out, columns


def main(argv):
    del argv
    import tensorflow as tf

    from tfvidgen import viz
    from tfvidgen.exported import load_generator
    try:
        model, _, step = load_generator(FLAGS.workdir, FLAGS.saved_model)
    except (FileNotFoundError, ValueError) as e:
        print(f"sample: error: {e}", file=sys.stderr)
        return 2
    n = FLAGS.num_videos
    labels = None
    if model.cfg.conditional:
        num_classes = model.cfg.num_classes
        if FLAGS.label is not None and not 0 <= FLAGS.label < num_classes:
            print(f"sample: error: --label={FLAGS.label} outside [0, {num_classes})",
                  file=sys.stderr)
            return 2
        labels = tf.constant([FLAGS.label] * n if FLAGS.label is not None
                             else np.arange(n) % num_classes, tf.int32)
    try:
        base = {k: v.numpy() for k, v in model.sample_inputs(n, FLAGS.seed, labels).items()}
        other = {k: v.numpy() for k, v in model.sample_inputs(n, FLAGS.seed + 1, labels).items()}
        latents, columns = arrange_latents(base, other, FLAGS.fix, FLAGS.interpolate, n)
        videos = model.generate({k: tf.constant(v) for k, v in latents.items()}, training=False)
    except tf.errors.InvalidArgumentError as e:     # a SavedModel's in-graph input checks
        print(f"sample: error: {e.message.strip().splitlines()[0]}", file=sys.stderr)
        return 2
    source = f"from {FLAGS.saved_model}" if FLAGS.saved_model else "from " + FLAGS.workdir
    return _write(viz.to_uint8(videos.numpy()), columns, f"{source} (step {step})")


def _write(videos, columns, source: str) -> int:
    from tfvidgen import viz
    try:
        viz.write_video_grid(FLAGS.output, videos, fps=FLAGS.fps, columns=columns)
    except ValueError as e:
        print(f"sample: error: --output: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(videos)} videos of {videos.shape[1]} frames at {videos.shape[2]}x"
          f"{videos.shape[3]} {source} to {FLAGS.output}")
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
