"""Direction control of models with a motion dictionary (InMoDeGAN): every frame's latent is
w_t = w_0 + sum_{k<=t} A_k D, with alpha_{t, i} = A[t, i] the magnitude of direction d_i.

A request is a list of items (the sample CLI's repeated --directions flag):
  off:I[,J...]          deactivate directions: alpha_{t, I} = 0 for every t
  only:I[,J...]         keep only these directions active (the paper's single-direction videos)
  scale:I:F             multiply alpha_{t, I} by F (F > 1 amplifies, negative reverses)
  drive:I:p1,p2,...     drive direction I along a trajectory: the component of w_t - w_0 along d_I
                        becomes p_t for t = 1, 2, ... (a shorter list is held at its last value)
  rank[:N]              rank the directions by the variance (and mean) of alpha over N samples
                        (default 100) and every time step, as the paper's Fig. 3
  phi:I[,J...][:N]      the paper's interpretability measure (Tab. 4): Delta phi_0..3 and
                        Delta Phi of the optical flow (Middlebury orientation regions) when
                        direction I alone is deactivated, over N samples (default 100)
A model offers control when its capabilities say `steer` (tfvidgen.models.capabilities; its
generator then has appearance(), magnitudes(), latent_path(), render() and directions(), see
tfvidgen/models/inmodegan.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["DirectionControl", "parse_directions", "apply_control",
           "generate", "direction_statistics", "flow_quantification", "delta_phi"]


@dataclasses.dataclass
class DirectionControl:
    scale: np.ndarray                          # [N] per-direction factor on alpha
    drive: dict = dataclasses.field(default_factory=dict)   # {direction: positions p_1, p_2, ...}
    rank_samples: int = 0                      # 0: no ranking
    phi_directions: tuple = ()                 # directions whose Delta phi to measure
    phi_samples: int = 100

    @property
    def changes_videos(self) -> bool:
        return bool(self.drive) or not np.all(self.scale == 1.0)


def _index(text: str, n: int, item: str) -> int:
    try:
        i = int(text)
    except ValueError:
        raise ValueError(f"--directions={item}: {text!r} is not a direction index") from None
    if not 0 <= i < n:
        raise ValueError(f"--directions={item}: direction {i} outside [0, {n})")
    return i


def _number(text: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--directions={item}: {text!r} is not a number") from None
    if not np.isfinite(value):
        raise ValueError(f"--directions={item}: {text!r} is not finite")
    return value


def parse_directions(items, num_directions: int) -> DirectionControl:
    """The request of `items` (see the module docstring); ValueError naming a bad item."""
    scale = np.ones([num_directions], np.float32)
    control = DirectionControl(scale)
    only = None
    for item in items:
        kind, _, rest = item.partition(":")
        parts = rest.split(":") if rest else []
        if kind in ("off", "only") and len(parts) == 1:
            indices = [_index(t, num_directions, item) for t in parts[0].split(",")]
            if kind == "off":
                scale[indices] = 0.0
            else:
                only = (only or set()) | set(indices)
        elif kind == "scale" and len(parts) == 2:
            scale[_index(parts[0], num_directions, item)] *= _number(parts[1], item)
        elif kind == "drive" and len(parts) == 2:
            positions = [_number(t, item) for t in parts[1].split(",")]
            control.drive[_index(parts[0], num_directions, item)] = positions
        elif kind == "phi" and len(parts) in (1, 2):
            control.phi_directions += tuple(_index(t, num_directions, item)
                                            for t in parts[0].split(","))
            if len(parts) == 2:
                control.phi_samples = int(_number(parts[1], item))
                if control.phi_samples < 1:
                    raise ValueError(f"--directions={item}: phi needs at least 1 sample")
        elif kind == "rank" and len(parts) <= 1:
            count = int(_number(parts[0], item)) if parts else 100
            if count < 2:
                raise ValueError(f"--directions={item}: rank needs at least 2 samples")
            control.rank_samples = count
        else:
            raise ValueError(f"--directions={item!r}: expected off:I[,J..], only:I[,J..], "
                             f"scale:I:F, drive:I:p1,p2,.., rank[:N] or phi:I[,J..][:N]")
    if only is not None:
        mask = np.zeros([num_directions], bool)
        mask[sorted(only)] = True
        scale[~mask] = 0.0
    return control


def apply_control(magnitudes: np.ndarray, control: DirectionControl) -> np.ndarray:
    """alpha [B, L, N] after the request: scaled, and driven directions' increments set so their
    cumulative component follows the given positions."""
    out = magnitudes * control.scale[None, None, :]
    length = out.shape[1]
    for i, positions in control.drive.items():
        p = np.asarray(positions + [positions[-1]] * max(0, length - len(positions)),
                       np.float32)[:length]
        out[:, :, i] = np.diff(np.concatenate([[0.0], p]))[None, :]
    return out.astype(np.float32)


def generate(model, latents: dict, control: DirectionControl | None = None):
    """Video [B, T, H, W, 3] in [-1, 1] of `latents` under `control` (sampling generator)."""
    import tensorflow as tf

    generator = model.sampling_generator
    w0 = generator.appearance(latents)
    magnitudes = generator.magnitudes(latents).numpy()
    if control is not None:
        magnitudes = apply_control(magnitudes, control)
    path = generator.latent_path(w0, tf.constant(magnitudes))
    return tf.clip_by_value(generator.render(path, latents), -1.0, 1.0)


def direction_statistics(model, latents: dict) -> dict:
    """{"mean", "variance": [N] of alpha over the samples and time steps, "order": direction
    indices by decreasing variance} (the paper ranks directions by these, Fig. 3)."""
    alpha = model.sampling_generator.magnitudes(latents).numpy()
    flat = alpha.reshape(-1, alpha.shape[-1])
    mean, variance = flat.mean(axis=0), flat.var(axis=0)
    return {"mean": mean, "variance": variance, "order": np.argsort(-variance, kind="stable")}


def _flows(videos) -> np.ndarray:
    """Horn-Schunck flow between consecutive frames: [B, T-1, H, W, 2] (pixels)."""
    from tfvidgen.eval import flow

    videos = np.asarray(videos, np.float32)
    b, t = videos.shape[:2]
    first = videos[:, :-1].reshape(-1, *videos.shape[2:])
    second = videos[:, 1:].reshape(-1, *videos.shape[2:])
    return flow.horn_schunck(first, second).numpy().reshape(b, t - 1, *videos.shape[2:4], 2)


def flow_quantification(flows, radius: float) -> dict:
    """Mean over videos of InMoDeGAN's phi_0..3 and Phi (eval.flow.motion_quantification) with
    one colour-wheel radius for all, so that two sets of videos compare."""
    from tfvidgen.eval import flow

    per_video = [flow.motion_quantification(f, max_magnitude=radius) for f in flows]
    return {"phi": np.mean([q["phi"] for q in per_video], axis=0),
            "Phi": float(np.mean([q["Phi"] for q in per_video]))}


def delta_phi(model, latents: dict, controls: dict) -> dict:
    """{name: {"delta_phi": [4], "delta_Phi"}} of each DirectionControl in `controls` against the
    unchanged videos (paper Tab. 4: a direction deactivated). The wheel radius is the largest flow
    magnitude of the unchanged videos, shared by every set."""
    original = _flows(generate(model, latents, None).numpy())
    radius = float(np.sqrt((original ** 2).sum(-1)).max()) or 1.0
    base = flow_quantification(original, radius)
    out = {}
    for name, control in controls.items():
        changed = flow_quantification(_flows(generate(model, latents, control).numpy()), radius)
        out[name] = {"delta_phi": changed["phi"] - base["phi"],
                     "delta_Phi": changed["Phi"] - base["Phi"]}
    return out
