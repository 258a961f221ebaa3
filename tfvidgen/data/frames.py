"""Frames read from user files, made the size the models take: the one transform shared by
dataset preparation (tools/prepare_dataset.py) and inference on user images and videos
(tfvidgen.transfer, sample --image), so both see what training saw."""

from __future__ import annotations

import numpy as np

__all__ = ["center_crop_resize"]


def center_crop_resize(frames: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [T, H, W, 3] -> the centre square crop resized (antialiased, area-like when
    shrinking) to uint8 [T, resolution, resolution, 3]."""
    import tensorflow as tf
    _, h, w, _ = frames.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    square = frames[:, y0:y0 + side, x0:x0 + side]
    if side == resolution:
        return square
    resized = tf.image.resize(square, [resolution, resolution], antialias=True)
    return np.clip(np.rint(resized.numpy()), 0, 255).astype(np.uint8)
