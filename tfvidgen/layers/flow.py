"""Differentiable optical flow in TF ops: a layer-level building block models may train with.

`horn_schunck(frame1, frame2)`: coarse-to-fine Horn-Schunck. At each pyramid level (coarsest first)
frame2 is warped by the upsampled flow so far, and Jacobi iterations of the Horn-Schunck update
solve for the increment (du, dv):
    d = avg(d) - I_grad * (I_x avg(du) + I_y avg(dv) + I_t) / (alpha^2 + I_x^2 + I_y^2)
Everything is tf ops (avg-pooling, a 3x3 depthwise average, bilinear gathers), so gradients flow
from the flow back to both frames: MVT's motion constraint can use it during training.
Convention: flow[..., 0] = u (x, right), flow[..., 1] = v (y, down), and
frame2(x + flow(x)) ~= frame1(x).
Metrics over flows (end-point error, motion quantification) live in tfvidgen.eval.flow.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["to_gray", "warp", "horn_schunck"]

_HS_AVERAGE = np.array([[1, 2, 1], [2, 0, 2], [1, 2, 1]], np.float32) / 12.0


def to_gray(frames) -> tf.Tensor:
    """[..., H, W, 3] in [-1, 1] -> luminance [..., H, W, 1] in [0, 1]."""
    frames = (tf.cast(frames, tf.float32) + 1.0) / 2.0
    weights = tf.constant([0.299, 0.587, 0.114], tf.float32)
    return tf.reduce_sum(frames * weights, axis=-1, keepdims=True)


def warp(image, flow) -> tf.Tensor:
    """Backward bilinear warp: out(x) = image(x + flow(x)), edges clamped. [B,H,W,C], [B,H,W,2]."""
    b, h, w = tf.shape(image)[0], tf.shape(image)[1], tf.shape(image)[2]
    ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32),
                         indexing="ij")
    x = tf.clip_by_value(xs[None] + flow[..., 0], 0.0, tf.cast(w - 1, tf.float32))
    y = tf.clip_by_value(ys[None] + flow[..., 1], 0.0, tf.cast(h - 1, tf.float32))
    x0, y0 = tf.floor(x), tf.floor(y)
    x1 = tf.minimum(x0 + 1, tf.cast(w - 1, tf.float32))
    y1 = tf.minimum(y0 + 1, tf.cast(h - 1, tf.float32))
    wx, wy = (x - x0)[..., None], (y - y0)[..., None]
    batch = tf.broadcast_to(tf.range(b)[:, None, None], tf.shape(x0))

    def gather(yy, xx):
        index = tf.stack([batch, tf.cast(yy, tf.int32), tf.cast(xx, tf.int32)], axis=-1)
        return tf.gather_nd(image, index)

    top = gather(y0, x0) * (1 - wx) + gather(y0, x1) * wx
    bottom = gather(y1, x0) * (1 - wx) + gather(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


def _filter(image, kernel):
    """Same-size 2D filtering of a single-channel [B, H, W, 1] image with edge replication."""
    k = kernel.shape[0] // 2
    padded = tf.pad(image, [[0, 0], [k, k], [k, k], [0, 0]], mode="SYMMETRIC")
    return tf.nn.conv2d(padded, tf.constant(kernel[:, :, None, None]), 1, "VALID")


def _gradients(frame1, warped2):
    """Spatial derivatives of the mean of both frames, and the temporal difference."""
    mean = (frame1 + warped2) / 2.0
    dx = np.array([[0, 0, 0], [-0.5, 0, 0.5], [0, 0, 0]], np.float32)
    return _filter(mean, dx), _filter(mean, dx.T), warped2 - frame1


def horn_schunck(frame1, frame2, levels: int = 3, iterations: int = 60,
                 alpha: float = 0.05) -> tf.Tensor:
    """Flow [B, H, W, 2] (pixels) from frame1 to frame2; frames [B, H, W, 3] in [-1, 1]."""
    pyramid1, pyramid2 = [to_gray(frame1)], [to_gray(frame2)]
    for _ in range(levels - 1):
        pyramid1.append(tf.nn.avg_pool2d(pyramid1[-1], 2, 2, "VALID"))
        pyramid2.append(tf.nn.avg_pool2d(pyramid2[-1], 2, 2, "VALID"))
    flow = tf.zeros_like(tf.concat([pyramid1[-1], pyramid1[-1]], axis=-1))
    for level in reversed(range(levels)):
        f1, f2 = pyramid1[level], pyramid2[level]
        if level != levels - 1:                    # upsample the coarser estimate, scale by 2
            flow = 2.0 * tf.image.resize(flow, tf.shape(f1)[1:3], method="bilinear")
        ix, iy, it = _gradients(f1, warp(f2, flow))
        denominator = alpha ** 2 + ix ** 2 + iy ** 2
        du, dv = tf.zeros_like(f1), tf.zeros_like(f1)
        for _ in range(iterations):
            mean_u, mean_v = _filter(du, _HS_AVERAGE), _filter(dv, _HS_AVERAGE)
            common = (ix * mean_u + iy * mean_v + it) / denominator
            du, dv = mean_u - ix * common, mean_v - iy * common
        flow = flow + tf.concat([du, dv], axis=-1)
    return flow
