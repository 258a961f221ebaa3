"""Optical-flow metrics: end-point error and InMoDeGAN's motion quantification.

The differentiable flow estimator itself (`horn_schunck`, `warp`, `to_gray`) lives in
tfvidgen.layers.flow, since models may train with it; it is re-exported here so evaluation code can
take flow and its metrics from one place.

`motion_quantification(flow)`: InMoDeGAN (Wang et al., 2021) Eq. 6-7. Each flow vector is placed
on the Middlebury colour wheel: its hue (orientation) selects one of four 90-degree regions
R0..R3 and lambda / H is its magnitude relative to the wheel radius H (the largest magnitude in the
video unless `max_magnitude` is given). phi_i averages lambda / H over the pixels in R_i; Phi over
all pixels. Region i covers orientations atan2(-v, -u) in [i*90, (i+1)*90) degrees (the Middlebury
angle), so R0/R2 and R1/R3 are opposite motions.
"""

from __future__ import annotations

import numpy as np

from tfvidgen.layers.flow import horn_schunck, to_gray, warp

__all__ = ["to_gray", "warp", "horn_schunck", "end_point_error", "motion_quantification"]


def end_point_error(estimated, truth, border: int = 0) -> float:
    """Mean Euclidean distance between flows [..., H, W, 2], ignoring `border` pixels per side."""
    diff = np.asarray(estimated) - np.asarray(truth)
    if border:
        diff = diff[..., border:-border, border:-border, :]
    return float(np.sqrt((diff ** 2).sum(-1)).mean())


def motion_quantification(flow, mask=None, max_magnitude: float | None = None) -> dict:
    """InMoDeGAN Eq. 6-7 on a flow video [T, H, W, 2].

    Args:
      flow: flow vectors in pixels.
      mask: optional bool [H, W] or [T, H, W] region (e.g. head, mouth); other pixels are ignored.
      max_magnitude: colour-wheel radius H; default the largest magnitude in the (masked) video.
    Returns:
      {"phi": [phi_0, ..., phi_3], "Phi": Phi, "counts": [N_0, ..., N_3]}.
    """
    flow = np.asarray(flow, np.float64)
    u, v = flow[..., 0], flow[..., 1]
    keep = np.ones(u.shape, bool) if mask is None else np.broadcast_to(np.asarray(mask, bool),
                                                                        u.shape)
    magnitude = np.sqrt(u ** 2 + v ** 2)[keep]
    radius = max_magnitude or (magnitude.max() if magnitude.size else 0.0)
    if radius <= 0:
        return {"phi": [0.0] * 4, "Phi": 0.0, "counts": [0] * 4}
    relative = np.clip(magnitude / radius, 0.0, 1.0)
    angle = np.mod(np.arctan2(-v, -u)[keep], 2 * np.pi)
    region = np.minimum((angle // (np.pi / 2)).astype(int), 3)
    phi, counts = [], []
    for i in range(4):
        in_region = region == i
        counts.append(int(in_region.sum()))
        phi.append(float(relative[in_region].sum() / counts[-1]) if counts[-1] else 0.0)
    return {"phi": phi, "Phi": float(relative.sum() / relative.size), "counts": counts}
