"""Pixel values in-graph: videos in [-1, 1] <-> uint8, the one definition (core TF ops only, so
serving graphs use it; host-side NumPy code uses tfvidgen.viz.to_uint8, the same mapping)."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["to_uint8", "from_uint8"]


def to_uint8(video) -> tf.Tensor:
    """[-1, 1] -> uint8 with (x + 1) * 127.5, clipped, rounded half to even (as NumPy's rint)."""
    video = tf.clip_by_value(tf.cast(video, tf.float32), -1.0, 1.0)
    return tf.cast(tf.round((video + 1.0) * 127.5), tf.uint8)


def from_uint8(pixels) -> tf.Tensor:
    """uint8 (or any integer) pixels -> float32 in [-1, 1]."""
    return tf.cast(pixels, tf.float32) / 127.5 - 1.0
