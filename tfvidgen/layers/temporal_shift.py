"""Temporal Shift Module (Lin, Gan, Han; ICCV 2019) on frames folded into the batch axis.

A 2D per-frame network holds a video batch as frames [B*T, H, W, C] with the T frames of one video
CONTIGUOUS (index b*T + t). temporal_shift unfolds them to [B, T, H, W, C] and, with
fold = C // fold_div:
  channels [0, fold):        frame t takes frame t+1's values (the last frame gets zeros);
  channels [fold, 2*fold):   frame t takes frame t-1's values (the first frame gets zeros);
  other channels:            unchanged.
Zero padding at each clip's borders, so no value crosses from one video into another. Shifting
costs no parameters and no multiplications; MVT-TSA uses it at the start of G's first two residual
blocks (fold_div 3 in its training code, 1/8 of the channels each way in the TSM paper).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["temporal_shift"]


def temporal_shift(frames, num_frames, fold_div: int = 3):
    """frames [B*T, H, W, C] (videos contiguous) -> the same shape, one fold shifted each way.

    num_frames: T (a Python int or a scalar tensor: the generator may run past its trained length).
    """
    channels = frames.shape[-1]
    fold = channels // fold_div
    if fold == 0:
        return frames
    shape = tf.shape(frames)
    videos = tf.reshape(frames, tf.concat([[-1, num_frames], shape[1:]], axis=0))
    from_next, from_previous, rest = tf.split(videos, [fold, fold, channels - 2 * fold], axis=-1)
    zeros = tf.zeros_like(from_next[:, :1])
    from_next = tf.concat([from_next[:, 1:], zeros], axis=1)              # t <- t+1
    from_previous = tf.concat([zeros, from_previous[:, :-1]], axis=1)     # t <- t-1
    shifted = tf.concat([from_next, from_previous, rest], axis=-1)
    return tf.reshape(shifted, shape)
