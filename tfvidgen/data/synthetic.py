"""Procedural video datasets with exact ground truth, deterministic by seed, no network.

`synthetic_actions`: an articulated stick figure (head, torso, two-segment arms and legs, anti-aliased
capsules) performing one of eight Weizmann-like actions. Every sample is a pure function of its
factors: action, actor (body colour, head colour, limb thickness, body size), background, and the
motion parameters phase, speed, amplitude, start position and direction. `render_actions(factors)`
re-renders the SAME motion with another actor or background, which gives ground truth for motion
transfer and disentanglement metrics.

`synthetic_shapes`: one coloured shape (circle, square, triangle) moving in one of five ways; tiny and
fast, for smoke tests.

Run `python -m tfvidgen.data.synthetic --dataset=synthetic_actions --num_videos=16 --output=grid.gif`
to look at the data.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

__all__ = ["ACTIONS", "ACTORS", "BACKGROUNDS", "SHAPE_MOTIONS", "SHAPES", "ActionFactors",
           "ShapeFactors", "sample_action_factors", "sample_shape_factors", "render_actions",
           "render_shapes", "render_actions_with_mask", "sample_factors", "render", "num_classes",
           "num_identities", "FACTOR_KEYS"]

ACTIONS = ("wave1", "wave2", "jack", "bend", "jump", "walk", "run", "side")
# (body rgb, head rgb, limb thickness multiplier, body size multiplier): 8 visually distinct actors.
ACTORS = (
    ((220, 60, 50), (240, 200, 160), 1.00, 1.00),
    ((50, 90, 200), (200, 150, 110), 1.30, 0.95),
    ((40, 160, 70), (240, 200, 160), 0.80, 1.05),
    ((230, 180, 30), (140, 95, 60), 1.15, 0.90),
    ((140, 60, 170), (230, 190, 150), 0.90, 1.10),
    ((30, 30, 30), (250, 215, 180), 1.00, 0.85),
    ((240, 120, 20), (120, 80, 50), 1.40, 1.00),
    ((20, 170, 180), (235, 195, 165), 0.75, 0.95),
)
BACKGROUNDS = ("flat_light", "flat_dark", "gradient_horizontal", "gradient_vertical", "checker",
               "stripes")
SHAPES = ("circle", "square", "triangle")
SHAPE_MOTIONS = ("horizontal", "vertical", "scale", "rotate", "circle")
_SHAPE_COLOURS = ((230, 60, 60), (60, 200, 90), (70, 110, 240), (240, 210, 50))
# Keys of the ground-truth factors that pipeline elements carry besides video/label/identity.
FACTOR_KEYS = ("background", "phase", "speed", "amplitude", "start_x", "direction")

_CYCLE_FRAMES = {"wave1": 12.0, "wave2": 12.0, "jack": 14.0, "bend": 24.0, "jump": 10.0,
                 "walk": 16.0, "run": 10.0, "side": 14.0}
_TRAVEL_PER_FRAME = {"walk": 0.009, "run": 0.016, "side": 0.008}   # in frame widths


@dataclasses.dataclass(frozen=True)
class ActionFactors:
    """Ground truth of one synthetic_actions video. Motion = action + the last five fields."""

    action: int
    actor: int
    background: int
    phase: float        # [0, 1): position in the motion cycle at frame 0
    speed: float        # [0.8, 1.25]: cycles per frame relative to the action's base rate
    amplitude: float    # [0.7, 1.0]: size of limb swings
    start_x: float      # [0.4, 0.6]: horizontal centre of the figure (of the path, when travelling)
    direction: int      # +1 faces/moves right, -1 left


@dataclasses.dataclass(frozen=True)
class ShapeFactors:
    """Ground truth of one synthetic_shapes video."""

    motion: int
    shape: int
    colour: int
    background: int
    phase: float
    speed: float
    amplitude: float


def sample_action_factors(rng: np.random.Generator) -> ActionFactors:
    """Draws every factor independently and uniformly."""
    return ActionFactors(
        action=int(rng.integers(len(ACTIONS))), actor=int(rng.integers(len(ACTORS))),
        background=int(rng.integers(len(BACKGROUNDS))), phase=float(rng.uniform(0.0, 1.0)),
        speed=float(rng.uniform(0.8, 1.25)), amplitude=float(rng.uniform(0.7, 1.0)),
        start_x=float(rng.uniform(0.4, 0.6)), direction=int(rng.choice((-1, 1))))


def sample_shape_factors(rng: np.random.Generator) -> ShapeFactors:
    return ShapeFactors(
        motion=int(rng.integers(len(SHAPE_MOTIONS))), shape=int(rng.integers(len(SHAPES))),
        colour=int(rng.integers(len(_SHAPE_COLOURS))), background=int(rng.integers(2)),
        phase=float(rng.uniform(0.0, 1.0)), speed=float(rng.uniform(0.8, 1.25)),
        amplitude=float(rng.uniform(0.7, 1.0)))


# ----------------------------------------------------------------------------------------------
# Rendering helpers

_GRID_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in frame units: x, y each [H*W] float32."""
    if size not in _GRID_CACHE:
        coords = (np.arange(size, dtype=np.float32) + 0.5) / size
        y, x = np.meshgrid(coords, coords, indexing="ij")
        _GRID_CACHE[size] = (x.reshape(-1), y.reshape(-1))
    return _GRID_CACHE[size]


@functools.lru_cache(maxsize=64)
def _background(index: int, size: int) -> np.ndarray:
    """A static background [H, W, 3] float32 in [0, 255] (cached: treat as read-only)."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    name = BACKGROUNDS[index]
    if name == "flat_light":
        return np.broadcast_to(np.float32([205, 205, 195]), (size, size, 3)).copy()
    if name == "flat_dark":
        return np.broadcast_to(np.float32([45, 55, 80]), (size, size, 3)).copy()
    if name == "gradient_horizontal":
        t = c[None, :, None]
        return np.broadcast_to((1 - t) * np.float32([90, 160, 210]) + t * np.float32([230, 220, 170]),
                               (size, size, 3)).copy()
    if name == "gradient_vertical":
        t = c[:, None, None]
        return np.broadcast_to((1 - t) * np.float32([150, 200, 240]) + t * np.float32([110, 150, 90]),
                               (size, size, 3)).copy()
    if name == "checker":
        cells = ((np.floor(c * 8)[:, None] + np.floor(c * 8)[None, :]) % 2)[..., None]
        return (cells * np.float32([170, 170, 170]) + (1 - cells) * np.float32([120, 125, 130]))
    stripes = (np.floor((c[:, None] + c[None, :]) * 6) % 2)[..., None]      # diagonal stripes
    return stripes * np.float32([200, 170, 150]) + (1 - stripes) * np.float32([150, 120, 110])


def _capsule_sdf(ax, ay, bx, by, radius, px, py, size):
    """Signed distance (pixels) to the nearest capsule. Capsules [T, S]; pixels px, py [T, P]."""
    dx, dy = bx - ax, by - ay
    length2 = np.maximum(dx * dx + dy * dy, 1e-12)
    # Per segment: distance from pixel to its closest point on the segment, minus the radius.
    rel_x = px[:, None, :] - ax[..., None]
    rel_y = py[:, None, :] - ay[..., None]
    t = np.clip((rel_x * dx[..., None] + rel_y * dy[..., None]) / length2[..., None], 0.0, 1.0)
    ex = rel_x - t * dx[..., None]
    ey = rel_y - t * dy[..., None]
    dist = np.sqrt(ex * ex + ey * ey) - radius[..., None]
    return dist.min(axis=1) * size


def _windows(ax, ay, bx, by, radius, size):
    """One fixed-size pixel window per frame that holds every capsule (rendering only there is
    ~4x faster than the full frame). Returns (x0 [T], y0 [T], width, height) in pixels."""
    lo_x = (np.minimum(ax, bx) - radius).min(axis=1) * size - 2
    hi_x = (np.maximum(ax, bx) + radius).max(axis=1) * size + 2
    lo_y = (np.minimum(ay, by) - radius).min(axis=1) * size - 2
    hi_y = (np.maximum(ay, by) + radius).max(axis=1) * size + 2
    width = int(min(size, np.ceil((hi_x - lo_x).max())))
    height = int(min(size, np.ceil((hi_y - lo_y).max())))
    x0 = np.clip(np.floor(lo_x), 0, size - width).astype(np.int64)
    y0 = np.clip(np.floor(lo_y), 0, size - height).astype(np.int64)
    return x0, y0, width, height


def _coverage(sdf_pixels):
    """Anti-aliased coverage in [0, 1] from a signed distance in pixels (1 px ramp)."""
    return np.clip(0.5 - sdf_pixels, 0.0, 1.0)


def _limb_dir(angle):
    """Unit vector for an angle measured from straight down, positive towards +x (y points down)."""
    return np.sin(angle), np.cos(angle)


def _pose(f: ActionFactors, frames: np.ndarray):
    """Joint angles and root position per frame. All outputs are [T] float arrays."""
    name = ACTIONS[f.action]
    t = frames.astype(np.float64)
    theta = 2 * math.pi * (f.phase + f.speed * t / _CYCLE_FRAMES[name])
    a, d = f.amplitude, f.direction
    zeros = np.zeros_like(t)
    pose = dict(lean=zeros, hop=zeros, root_x=np.full_like(t, f.start_x),
                arm_l=np.full_like(t, -0.15), fore_l=np.full_like(t, -0.1),
                arm_r=np.full_like(t, 0.15), fore_r=np.full_like(t, 0.1),
                leg_l=np.full_like(t, -0.08), shin_l=np.full_like(t, -0.08),
                leg_r=np.full_like(t, 0.08), shin_r=np.full_like(t, 0.08))
    open_close = (1 - np.cos(theta)) / 2                                   # 0..1..0 per cycle
    if name in ("wave1", "wave2"):
        pose["arm_r"] = np.full_like(t, math.pi / 2 + 0.5)
        pose["fore_r"] = pose["arm_r"] + 0.2 + 0.9 * a * np.sin(theta)
        if name == "wave2":
            pose["arm_l"] = -pose["arm_r"]
            pose["fore_l"] = -pose["fore_r"]
    elif name == "jack":
        pose["arm_r"] = 0.3 + 2.4 * a * open_close
        pose["fore_r"] = pose["arm_r"] + 0.1
        pose["arm_l"], pose["fore_l"] = -pose["arm_r"], -pose["fore_r"]
        pose["leg_r"] = 0.06 + 0.35 * a * open_close
        pose["shin_r"] = pose["leg_r"]
        pose["leg_l"], pose["shin_l"] = -pose["leg_r"], -pose["shin_r"]
        pose["hop"] = 0.03 * a * np.abs(np.sin(theta))
    elif name == "bend":
        pose["lean"] = d * 1.35 * a * open_close
        hang = 0.1 * d * np.ones_like(t)            # arms hang towards the ground while bending
        pose["arm_l"], pose["fore_l"] = hang - 0.1, hang - 0.1
        pose["arm_r"], pose["fore_r"] = hang + 0.1, hang + 0.1
    elif name == "jump":
        lift = np.maximum(0.0, np.sin(theta))
        pose["hop"] = 0.10 * a * lift
        crouch = 0.5 * a * np.maximum(0.0, -np.sin(theta))
        pose["leg_l"], pose["leg_r"] = d * crouch - 0.06, d * crouch + 0.06
        pose["shin_l"], pose["shin_r"] = -d * crouch - 0.06, -d * crouch + 0.06
        swing = d * (0.4 + 1.6 * a * lift)
        pose["arm_l"], pose["arm_r"] = swing - 0.05, swing + 0.05
        pose["fore_l"], pose["fore_r"] = swing + 0.2, swing + 0.25
    elif name in ("walk", "run"):
        big = 0.45 if name == "walk" else 0.75
        swing = big * a * np.sin(theta)
        pose["leg_l"], pose["leg_r"] = d * swing, -d * swing
        knee = 0.5 if name == "walk" else 1.1
        pose["shin_l"] = pose["leg_l"] - d * knee * a * np.maximum(0.0, -np.sin(theta))
        pose["shin_r"] = pose["leg_r"] - d * knee * a * np.maximum(0.0, np.sin(theta))
        pose["arm_l"], pose["arm_r"] = -0.8 * d * swing, 0.8 * d * swing
        bend = 0.2 if name == "walk" else 1.3
        pose["fore_l"], pose["fore_r"] = pose["arm_l"] + d * bend, pose["arm_r"] + d * bend
        pose["lean"] = np.full_like(t, d * (0.05 if name == "walk" else 0.25))
        pose["hop"] = 0.015 * a * np.abs(np.cos(theta)) * (1 if name == "walk" else 2)
    elif name == "side":
        pose["leg_r"] = 0.06 + 0.3 * a * open_close
        pose["shin_r"] = pose["leg_r"]
        pose["leg_l"], pose["shin_l"] = -pose["leg_r"], -pose["shin_r"]
        pose["hop"] = 0.02 * a * open_close
    if name in _TRAVEL_PER_FRAME:
        # Centred path: the figure crosses start_x half-way through a 32-frame video.
        pose["root_x"] = f.start_x + d * _TRAVEL_PER_FRAME[name] * f.speed * (t - 16.0)
    return pose


def _skeleton(f: ActionFactors, frames: np.ndarray):
    """Capsules (ax, ay, bx, by, radius) [T, 10] of the body and the head circle [T] per frame."""
    _, _, thickness, size = ACTORS[f.actor]
    p = _pose(f, frames)
    s = 0.95 * size
    thigh, shin, torso, upper_arm, forearm = 0.13 * s, 0.13 * s, 0.20 * s, 0.11 * s, 0.10 * s
    hip_x = p["root_x"]
    hip_y = 0.90 - (thigh + shin) - p["hop"]
    neck_x = hip_x + torso * np.sin(p["lean"])          # torso points up from the hip
    neck_y = hip_y - torso * np.cos(p["lean"])
    head_r = 0.055 * s
    head_x = hip_x + (torso + 0.06 * s) * np.sin(p["lean"])
    head_y = hip_y - (torso + 0.06 * s) * np.cos(p["lean"])
    caps = [(hip_x, hip_y, neck_x, neck_y, 0.034 * s * thickness)]
    for upper, lower, root_x, root_y, r in (
            ("arm_l", "fore_l", neck_x, neck_y, 0.019), ("arm_r", "fore_r", neck_x, neck_y, 0.019),
            ("leg_l", "shin_l", hip_x, hip_y, 0.024), ("leg_r", "shin_r", hip_x, hip_y, 0.024)):
        length1, length2 = (upper_arm, forearm) if upper.startswith("arm") else (thigh, shin)
        ux, uy = _limb_dir(p[upper])
        jx, jy = root_x + length1 * ux, root_y + length1 * uy
        lx, ly = _limb_dir(p[lower])
        ex, ey = jx + length2 * lx, jy + length2 * ly
        radius = r * s * thickness
        caps.append((root_x, root_y, jx, jy, radius))
        caps.append((jx, jy, ex, ey, radius))
    stacked = [np.stack([np.broadcast_to(c[i], frames.shape) for c in caps], axis=1)
               for i in range(5)]
    return stacked, (head_x, head_y, head_r)


def render_actions_with_mask(f: ActionFactors, frames, size: int = 64):
    """Renders frames of a synthetic_actions video.

    Args:
      f: the factors.
      frames: int frame indices (any values; motion is a continuous function of time).
      size: output height and width.

    Returns:
      (video uint8 [T, size, size, 3], figure coverage float32 [T, size, size] in [0, 1]).
    """
    frames = np.asarray(frames)
    (ax, ay, bx, by, radius), (hx, hy, hr) = _skeleton(f, frames)
    # The head is one more capsule (a circle: both ends at its centre), coloured separately.
    caps = [np.concatenate([np.asarray(c, np.float32), np.asarray(h, np.float32)[:, None]], axis=1)
            for c, h in ((ax, hx), (ay, hy), (bx, hx), (by, hy),
                         (radius, np.full(len(frames), hr)))]
    x0, y0, width, height = _windows(*caps, size)
    local_x, local_y = np.meshgrid(np.arange(width), np.arange(height))
    px = (x0[:, None] + local_x.reshape(1, -1) + 0.5).astype(np.float32) / size     # [T, P]
    py = (y0[:, None] + local_y.reshape(1, -1) + 0.5).astype(np.float32) / size
    body = _coverage(_capsule_sdf(*(c[:, :-1] for c in caps), px, py, size))
    head = _coverage(_capsule_sdf(*(c[:, -1:] for c in caps), px, py, size))
    body = body.reshape(-1, height, width, 1)
    head = head.reshape(-1, height, width, 1)
    # Composite inside each frame's window only; the rest of the frame is the static background.
    bg = _background(f.background, size)
    windows = [(slice(y, y + height), slice(x, x + width)) for y, x in zip(y0, x0)]
    bg_windows = np.stack([bg[w] for w in windows])
    body_rgb, head_rgb, _, _ = ACTORS[f.actor]
    img = bg_windows * (1 - body) + np.float32(body_rgb) * body
    img = img * (1 - head) + np.float32(head_rgb) * head
    img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    video = np.repeat(np.clip(bg + 0.5, 0, 255).astype(np.uint8)[None], len(frames), axis=0)
    coverage = np.zeros((len(frames), size, size), np.float32)
    window_coverage = np.maximum(body, head)[..., 0]
    for i, w in enumerate(windows):
        video[i][w] = img[i]
        coverage[i][w] = window_coverage[i]
    return video, coverage


def render_actions(f: ActionFactors, frames=range(32), size: int = 64) -> np.ndarray:
    """uint8 video [T, size, size, 3]; a pure function of (f, frames, size)."""
    return render_actions_with_mask(f, frames, size)[0]


def _shape_sdf(shape: str, px, py, cx, cy, half, angle):
    """Signed distance (frame units) of pixels to a shape, and the pixels' distance to the shape's
    own x axis (for the stripe that makes rotation visible); centre/size/angle [T], pixels [P]."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    rx, ry = px[None] - cx[:, None], py[None] - cy[:, None]
    x, y = c * rx + s * ry, -s * rx + c * ry          # into the shape's rotated frame
    h = half[:, None]
    if shape == "circle":
        return np.sqrt(x * x + y * y) - h, np.abs(y)
    if shape == "square":
        return np.maximum(np.abs(x), np.abs(y)) - h, np.abs(y)
    # Equilateral triangle pointing up, as the max of its three edge half-plane distances.
    k = math.sqrt(3.0)
    return np.maximum(np.abs(x) * k / 2 + y / 2, -y) - h / 2, np.abs(x)


def render_shapes(f: ShapeFactors, frames=range(32), size: int = 32) -> np.ndarray:
    """uint8 video [T, size, size, 3] of one moving shape."""
    t = np.asarray(frames, np.float32)
    theta = 2 * math.pi * (f.phase + f.speed * t / 16.0)
    a = f.amplitude
    cx, cy = np.full_like(t, 0.5), np.full_like(t, 0.5)
    half, angle = np.full_like(t, 0.16), np.zeros_like(t)
    motion = SHAPE_MOTIONS[f.motion]
    if motion == "horizontal":
        cx = 0.5 + 0.25 * a * np.sin(theta)
    elif motion == "vertical":
        cy = 0.5 + 0.25 * a * np.sin(theta)
    elif motion == "scale":
        half = 0.16 * (1 + 0.6 * a * np.sin(theta))
    elif motion == "rotate":
        angle = theta / 2
    else:
        cx, cy = 0.5 + 0.22 * a * np.cos(theta), 0.5 + 0.22 * a * np.sin(theta)
    px, py = _grid(size)
    sdf, axis_distance = _shape_sdf(SHAPES[f.shape], px, py, cx, cy, half, angle)
    cover = _coverage(sdf * size)[..., None]
    stripe = (cover * _coverage((axis_distance - 0.03) * size)[..., None])
    bg = np.float32([200, 200, 200] if f.background == 0 else [40, 40, 60])
    colour = np.float32(_SHAPE_COLOURS[f.colour])
    img = bg * (1 - cover) + colour * cover
    img = img * (1 - stripe) + 0.4 * colour * stripe
    return np.clip(img + 0.5, 0, 255).astype(np.uint8).reshape(len(t), size, size, 3)


# ----------------------------------------------------------------------------------------------
# Dataset-level API used by the pipeline: index -> factors -> frames.

def sample_factors(dataset: str, seed: int, index: int):
    """Factors of video `index` of a synthetic dataset; a pure function of (seed, index)."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index)])
    if dataset == "synthetic_actions":
        return sample_action_factors(rng)
    if dataset == "synthetic_shapes":
        return sample_shape_factors(rng)
    raise ValueError(f"unknown synthetic dataset {dataset!r}")


def render(dataset: str, factors, frames, size: int) -> np.ndarray:
    if dataset == "synthetic_actions":
        return render_actions(factors, frames, size)
    return render_shapes(factors, frames, size)


def num_classes(dataset: str) -> int:
    return len(ACTIONS) if dataset == "synthetic_actions" else len(SHAPE_MOTIONS)


def num_identities(dataset: str) -> int:
    return len(ACTORS) if dataset == "synthetic_actions" else len(SHAPES)


def first_frames(seeds, resolution: int) -> np.ndarray:
    """First frames of synthetic_actions videos `seeds` (stream 0) as float32 in [-1, 1]:
    [N, R, R, 3], a pure function of the seeds: images for image-to-video models (e.g.
    Dual-MTGAN's sample_inputs) when no data image is given."""
    frames = [render_actions(sample_factors("synthetic_actions", 0, int(s)), [0],
                             resolution)[0] for s in seeds]
    # x / 127.5 - 1: the inverse of the uint8 mapping (tfvidgen.pixels)
    return np.stack(frames).astype(np.float32) / 127.5 - 1.0


def label_identity_factors(factors):
    """(label, identity, {FACTOR_KEYS: value}) of either factor type."""
    if isinstance(factors, ActionFactors):
        return factors.action, factors.actor, dict(
            background=factors.background, phase=factors.phase, speed=factors.speed,
            amplitude=factors.amplitude, start_x=factors.start_x, direction=factors.direction)
    return factors.motion, factors.shape, dict(
        background=factors.background, phase=factors.phase, speed=factors.speed,
        amplitude=factors.amplitude, start_x=0.5, direction=1)


# ----------------------------------------------------------------------------------------------
# Preview CLI

def _main(argv):
    del argv
    from absl import flags, logging

    from tfvidgen import viz
    flags_ = flags.FLAGS
    size = flags_.resolution or (64 if flags_.dataset == "synthetic_actions" else 32)
    videos = []
    for index in range(flags_.num_videos):
        factors = sample_factors(flags_.dataset, flags_.seed, index)
        videos.append(render(flags_.dataset, factors, range(flags_.num_frames), size))
        logging.info("video %d: %s", index, factors)
    viz.write_video_grid(flags_.output, np.stack(videos), fps=flags_.fps)
    print(f"wrote {flags_.num_videos} videos of {flags_.num_frames} frames at {size}x{size} "
          f"to {flags_.output}")


if __name__ == "__main__":
    from absl import app, flags
    flags.DEFINE_enum("dataset", "synthetic_actions", ["synthetic_actions", "synthetic_shapes"],
                      "Which synthetic dataset to preview.")
    flags.DEFINE_integer("num_videos", 16, "How many videos in the grid.", lower_bound=1)
    flags.DEFINE_integer("num_frames", 32, "Frames per video.", lower_bound=1)
    flags.DEFINE_integer("resolution", 0, "Frame size; 0 = the dataset's default.", lower_bound=0)
    flags.DEFINE_integer("seed", 0, "Dataset seed.")
    flags.DEFINE_integer("fps", 8, "Playback rate of the GIF/MP4.", lower_bound=1)
    flags.DEFINE_string("output", "synthetic_grid.gif", "Output .gif, .mp4 or .png (frame grid).")
    app.run(_main)
