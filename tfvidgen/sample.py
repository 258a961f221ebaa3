"""`python -m tfvidgen.sample --workdir=W --num_videos=8 --seed=0 --output=samples.gif`.

Writes videos from a workdir's latest checkpoint (the EMA generator when training kept one), or
from an export (`--saved_model`: the same videos for the same flags), as an animated GIF grid, an
MP4 grid, or a PNG frame grid (one row per video).
  --fix=appearance   every video shares the appearance latent(s), motion varies
  --fix=motion       every video shares the motion (and noise) latent(s), appearance varies
  --fix=grid         rows share appearance, columns share motion (a sqrt(N) x sqrt(N) grid)
  --interpolate=appearance|motion|both   N steps from the latents of --seed to those of --seed+1
  --label=K          class for conditional models (default: cycle through the classes)
  --num_frames=L     videos of L frames instead of the trained length (models whose motion runs
                     any length, e.g. InMoDeGAN; the first frames are the trained-length video's)
  --directions=ITEM  (repeatable) direction control of models with a motion dictionary
                     (InMoDeGAN): off:I[,J..], only:I[,J..], scale:I:F, drive:I:p1,p2,..,
                     rank[:N] (prints the directions ranked by the variance of their magnitudes
                     over N samples), phi:I[,J..][:N] (prints the optical-flow change Delta phi
                     when each direction is deactivated, paper Tab. 4); see tfvidgen/control.py

Latents are told apart by the roles the model declares (models/base.py), never by name.

Requests that cannot take effect are errors (one `sample: error:` line naming the flag, exit 2,
nothing written; --label is checked once the model is loaded, the others before): --label on an unconditional model, --fix together with --interpolate,
a --seed whose videos would need seeds past int64 (videos use --seed .. --seed+N), a malformed
--directions item, --directions/--num_frames with --saved_model or on a model without a motion
dictionary (after loading), and an --output
that is not a .gif/.mp4/.png file name or cannot be written (a directory, a file in the way of
its folder, a read-only file system); --output is checked before any model is loaded. A request
that can only be met approximately goes on with a `sample: warning:` line: --fix=grid needs a
square number of videos, so a non-square --num_videos is rounded UP to the next square (3 -> 2x2
= 4 videos; rounding down would turn 3 into a single video). An export serves at most its max
serving batch per call; larger requests are split into several calls (same videos).
The output is written as <output>.partial and renamed when complete; on failure nothing is left.
"""

from __future__ import annotations

import math

import numpy as np
from absl import flags

from tfvidgen import errors, viz

# models.base.LATENT_ROLES, without importing TensorFlow before the flags are checked
LATENT_ROLES = ("appearance", "motion", "noise")

FLAGS = flags.FLAGS
_INT64_MAX = 2 ** 63 - 1


def define_flags() -> None:
    """Defines this entry point's flags (only when run as a program)."""
    flags.DEFINE_string("workdir", None, "Training workdir with checkpoints.")
    flags.DEFINE_string("saved_model", None, "Exported SavedModel directory "
                        "(export/<model>/<version>) instead of --workdir.")
    flags.DEFINE_integer("num_videos", 8, "How many videos.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Sampling seed (same seed, same videos).")
    flags.DEFINE_integer("label", None, "Class label for conditional models.")
    flags.DEFINE_string("image", None, "Image-to-video models: animate this image (any size, "
                        "centre-cropped and resized like the training data) instead of the "
                        "model's own sample images; every video starts from it.")
    flags.DEFINE_enum("fix", "none", ["none", "appearance", "motion", "grid"],
                      "Share latents across videos to show disentanglement.")
    flags.DEFINE_enum("interpolate", "none", ["none", "appearance", "motion", "both"],
                      "Interpolate between the latents of --seed and --seed+1.")
    flags.DEFINE_string("output", "samples.gif", "Output .gif, .mp4 or .png.")
    flags.DEFINE_integer("fps", 8, "Frames per second of GIF/MP4.", lower_bound=1)
    flags.DEFINE_integer("num_frames", None, "Frames per video (default: the trained length).",
                         lower_bound=2)
    flags.DEFINE_multi_string("directions", None, "Direction control (repeatable): off:I[,J..], "
                              "only:I[,J..], scale:I:F, drive:I:p1,p2,.., rank[:N], "
                              "phi:I[,J..][:N].")


def arrange_latents(base: dict, other: dict, fix: str, interpolate: str, n: int,
                    roles: dict) -> tuple[dict, int]:
    """Combines two independent latent sets [n, ...] per the --fix/--interpolate request.

    Returns (latents, grid columns). `roles` is the model's {input: role}: appearance latents are
    "appearance", motion and noise latents "motion"; every other input (labels) passes through.
    """
    out, columns = dict(base), None
    kinds = {k: ("appearance" if roles[k] == "appearance" else "motion") for k in base
             if roles.get(k) in LATENT_ROLES}
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


def video_count(num_videos: int, fix: str, interpolate: str) -> int:
    """How many videos to make; raises ValueError naming the flag for requests that cannot take
    effect, warns when --fix=grid rounds a non-square count up to the next square."""
    if fix != "none" and interpolate != "none":
        raise ValueError(f"--fix={fix} and --interpolate={interpolate} cannot be combined: "
                         f"give one of them")
    if fix != "grid":
        return num_videos
    side = math.isqrt(num_videos - 1) + 1                       # ceil(sqrt(n))
    if side * side != num_videos:
        errors.warn("sample", f"--fix=grid needs a square --num_videos; writing {side * side} "
                              f"videos ({side}x{side}) instead of {num_videos}")
    return side * side


def check_seed(seed: int, n: int) -> None:
    """Videos use seeds seed .. seed+n-1 and (for --interpolate's end point) seed+1 .. seed+n."""
    if not 0 <= seed <= _INT64_MAX - n:
        raise ValueError(f"--seed={seed} is outside [0, {_INT64_MAX - n}]: {n} videos use seeds "
                         f"--seed .. --seed+{n}, which must fit in int64")


@errors.main_guard("sample")
def main(argv):
    del argv
    n = video_count(FLAGS.num_videos, FLAGS.fix, FLAGS.interpolate)
    check_seed(FLAGS.seed, n)
    check_control_flags(FLAGS.directions, FLAGS.num_frames, FLAGS.saved_model)
    errors.check_output_file("--output", FLAGS.output, viz.VIDEO_SUFFIXES)
    import tensorflow as tf

    from tfvidgen import control as control_lib
    from tfvidgen.exported import load_generator
    model, config, step = load_generator(FLAGS.workdir, FLAGS.saved_model)
    control = model_control(model, config.model, FLAGS.directions, FLAGS.num_frames)
    labels = labels_for(model.cfg, FLAGS.label, n)
    labels = None if labels is None else tf.constant(labels, tf.int32)

    def draw(seed):
        if FLAGS.num_frames:
            inputs = model.sample_inputs_of_length(n, seed, FLAGS.num_frames, labels)
        else:
            inputs = model.sample_inputs(n, seed, labels)
        return {k: v.numpy() for k, v in inputs.items()}

    latents, columns = arrange_latents(draw(FLAGS.seed), draw(FLAGS.seed + 1), FLAGS.fix,
                                       FLAGS.interpolate, n, model.input_roles())
    if FLAGS.image:
        latents.update(given_image(model, config.model, FLAGS.image, n))
    latents = {k: tf.constant(v) for k, v in latents.items()}
    if control is not None and control.rank_samples:
        print_direction_ranking(model, control.rank_samples, FLAGS.seed, FLAGS.label)
    if control is not None and control.phi_directions:
        print_delta_phi(model, control, FLAGS.seed, FLAGS.label)
    if control is not None:
        videos = control_lib.generate(model, latents, control)
    else:
        videos = model.generate(latents, training=False)
    videos = viz.to_uint8(videos.numpy())
    viz.write_video_grid(FLAGS.output, videos, fps=FLAGS.fps, columns=columns)
    source = FLAGS.saved_model or FLAGS.workdir
    print(f"wrote {len(videos)} videos of {videos.shape[1]} frames at {videos.shape[2]}x"
          f"{videos.shape[3]} from {source} (step {step}) to {FLAGS.output}")
    return 0


def given_image(model, key: str, path: str, n: int) -> dict:
    """{input: the image at `path`, repeated n times} for each input of role image (by role,
    whatever the model calls it); ValueError when the model takes no image."""
    from tfvidgen import transfer
    names = [name for name, role in model.input_roles().items() if role == "image"]
    if not names:
        raise ValueError(f"--image: {key} generates from latents alone (no image input); "
                         f"--image is for image-to-video models such as dual_mtgan")
    image = transfer.load_image(path, model.cfg.resolution)
    return {name: np.repeat(image[None], n, axis=0) for name in names}


def check_control_flags(directions, num_frames, saved_model) -> None:
    """--directions items are well formed, and --directions/--num_frames come with --workdir."""
    from tfvidgen import control

    if (directions or num_frames) and saved_model:
        raise ValueError("--directions and --num_frames need --workdir (the checkpoint's "
                         "generator); an export serves them as its `steer` and `sample_frames` "
                         "signatures")
    if directions:
        control.parse_directions(directions, 2 ** 31 - 1)      # syntax only: N is not known yet


def model_control(model, model_name: str, directions, num_frames):
    """The DirectionControl of --directions (None without), once the model is known."""
    from tfvidgen import control

    if num_frames and not hasattr(model, "sample_inputs_of_length"):
        raise ValueError(f"--num_frames={num_frames}: {model_name} generates a fixed number of "
                         f"frames ({model.cfg.num_frames}); omit --num_frames")
    if not directions:
        return None
    if not control.supports_control(model):
        raise ValueError(f"--directions: {model_name} has no motion dictionary to control")
    return control.parse_directions(directions, model.cfg.num_directions)


def print_direction_ranking(model, samples: int, seed: int, label, top: int = 10) -> None:
    """The `top` directions by the variance of alpha over `samples` videos (paper Fig. 3)."""
    import tensorflow as tf

    from tfvidgen import control

    labels = labels_for(model.cfg, label, samples)
    labels = None if labels is None else tf.constant(labels, tf.int32)
    stats = control.direction_statistics(model, model.sample_inputs(samples, seed, labels))
    print(f"directions by variance of alpha over {samples} samples (top {top}):")
    print("rank  direction      mean   variance")
    for rank, i in enumerate(stats["order"][:top]):
        print(f"{rank:4d}  {i:9d}  {stats['mean'][i]:8.4f}  {stats['variance'][i]:9.4f}")


def print_delta_phi(model, request, seed: int, label) -> None:
    """Delta phi_0..3 and Delta Phi of each requested direction deactivated (paper Tab. 4)."""
    import numpy as np
    import tensorflow as tf

    from tfvidgen import control

    n = request.phi_samples
    labels = labels_for(model.cfg, label, n)
    labels = None if labels is None else tf.constant(labels, tf.int32)
    latents = model.sample_inputs(n, seed, labels)
    controls = {i: control.parse_directions([f"off:{i}"], model.cfg.num_directions)
                for i in request.phi_directions}
    deltas = control.delta_phi(model, latents, controls)
    print(f"optical-flow change when a direction is deactivated, over {n} samples:")
    print("direction   dphi_0   dphi_1   dphi_2   dphi_3     dPhi")
    for i, d in deltas.items():
        values = " ".join(f"{v:8.4f}" for v in np.append(d["delta_phi"], d["delta_Phi"]))
        print(f"{i:9d} {values}")


def labels_for(cfg, label: int | None, n: int):
    """int [n] labels for a conditional model (--label, or cycling through the classes), None for
    an unconditional one; raises ValueError for a --label the model cannot use."""
    if not cfg.conditional:
        if label is not None:
            raise ValueError(f"--label={label}: this model is unconditional (trained without "
                             f"labels); omit --label")
        return None
    if label is not None and not 0 <= label < cfg.num_classes:
        raise ValueError(f"--label={label} outside [0, {cfg.num_classes})")
    return np.full(n, label) if label is not None else np.arange(n) % cfg.num_classes


if __name__ == "__main__":
    define_flags()
    errors.run_app(main, "sample")
