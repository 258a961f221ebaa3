"""Sampling requests of `python -m tfvidgen.sample`: how many videos, which latents they share
(--fix / --interpolate), the given image (--image), the length (--num_frames) and the direction
control (--directions), checked before and after the model is loaded, and the videos they make.

Latents are told apart by the roles the model declares (models/base.py), never by name; what a
model can do comes from its capabilities (tfvidgen.models.Capabilities), never from probing it.
"""

from __future__ import annotations

import math

import numpy as np

from tfvidgen import config, control, errors, media, sources

__all__ = ["LATENT_ROLES", "arrange_latents", "video_count", "check_request", "given_images",
           "model_control", "videos", "print_direction_ranking", "print_delta_phi"]

# models.base.LATENT_ROLES, without importing TensorFlow before the flags are checked
LATENT_ROLES = ("appearance", "motion", "noise")


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


def check_request(num_videos: int, seed: int, fix: str, interpolate: str, directions,
                  num_frames, saved_model) -> int:
    """The number of videos, once the request is known to be possible as far as the flags
    tell (before any model is loaded); ValueError naming the flag otherwise."""
    n = video_count(num_videos, fix, interpolate)
    config.check_seed(seed)
    if directions and saved_model:
        raise ValueError("--directions needs --workdir (the checkpoint's generator); an export "
                         "serves direction control as its `steer` signature")
    if num_frames and saved_model and (fix != "none" or interpolate != "none"):
        raise ValueError(f"--num_frames with --saved_model draws each video from its seed (the "
                         f"export's `sample_frames` signature): it cannot be combined with "
                         f"--fix={fix} --interpolate={interpolate}; use --workdir")
    if directions:
        control.parse_directions(directions, 2 ** 31 - 1)      # syntax only: N is not known yet
    return n


def given_images(loaded, path: str | None, n: int):
    """float32 [n, R, R, 3]: the image at `path` for every video (None without --image);
    ValueError when the model takes no image."""
    if path is None:
        return None
    if not loaded.capabilities.image_input:
        raise ValueError(f"--image: {loaded.config.model} generates from latents alone (no "
                         f"image input); --image is for image-to-video models such as "
                         f"dual_mtgan")
    image = media.load_image(path, loaded.generator.cfg.resolution)
    return np.repeat(image[None], n, axis=0)


def model_control(loaded, directions):
    """The DirectionControl of --directions (None without), once the model is known."""
    if not directions:
        return None
    if not loaded.capabilities.steer:
        raise ValueError(f"--directions: {loaded.config.model} has no motion dictionary to "
                         f"control")
    return control.parse_directions(directions, loaded.generator.cfg.num_directions)


def videos(loaded, n: int, seed: int, labels=None, images=None, fix: str = "none",
           interpolate: str = "none", num_frames: int | None = None, request=None):
    """(videos float [n, T, H, W, 3] in [-1, 1], grid columns or None) of the request."""
    if fix == "none" and interpolate == "none" and request is None:
        return sources.seeded_videos(loaded, n, seed, labels, images, num_frames), None
    sources.check_num_frames(loaded, num_frames)
    import tensorflow as tf

    def draw(first):
        inputs = sources.seeded_inputs(loaded.generator, n, first, labels, images, num_frames)
        return {k: np.asarray(v) for k, v in inputs.items()}

    model = loaded.generator
    latents, columns = arrange_latents(draw(seed), draw(seed + 1), fix, interpolate, n,
                                       model.input_roles())
    latents = {k: tf.constant(v) for k, v in latents.items()}
    if request is not None:
        return control.generate(model, latents, request), columns    # length: of the latents
    return model.generate(latents, num_frames=num_frames), columns


def print_direction_ranking(model, samples: int, seed: int, label, top: int = 10) -> None:
    """The `top` directions by the variance of alpha over `samples` videos (paper Fig. 3)."""
    import tensorflow as tf

    labels = sources.labels_for(model.cfg, label, samples)
    labels = None if labels is None else tf.constant(labels, tf.int32)
    stats = control.direction_statistics(model, model.sample_inputs(samples, seed, labels))
    print(f"directions by variance of alpha over {samples} samples (top {top}):")
    print("rank  direction      mean   variance")
    for rank, i in enumerate(stats["order"][:top]):
        print(f"{rank:4d}  {i:9d}  {stats['mean'][i]:8.4f}  {stats['variance'][i]:9.4f}")


def print_delta_phi(model, request, seed: int, label) -> None:
    """Delta phi_0..3 and Delta Phi of each requested direction deactivated (paper Tab. 4)."""
    import tensorflow as tf

    n = request.phi_samples
    labels = sources.labels_for(model.cfg, label, n)
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
