"""Spatially-adaptive separable convolution (TwoStreamVAN's motion fusion, after SepConv).

Every output pixel (b, y, x) has its own rank-1 n x n kernel, the outer product of a vertical
kernel w_v[b, y, x, :] and a horizontal kernel w_h[b, y, x, :], shared over channels and not
normalised; the input is replicate-padded by n // 2:

    out[b, y, x, c] = sum_{i, j} h_pad[b, y + i, x + j, c] * w_v[b, y, x, i] * w_h[b, y, x, j]

Computed as n * n shifted slices multiply-accumulated in float32, with a written-out gradient of
the same form (autodiff of the shifted slices was 4-10x slower than it). Training runs both as
their own tf.function(jit_compile=True) (measured on CPU, TF 2.21: 7 ms forward vs 166 ms for
extract_patches + einsum, and less memory; XLA fuses the n^2 elementwise products). XLA's fused
kernel is not a core op, so a SavedModel must be traced with the plain path: `without_jit()` (a
trace-time switch) does that.
"""

from __future__ import annotations

import contextlib
import threading

import tensorflow as tf

__all__ = ["adaptive_separable_conv", "blend", "without_jit", "replicate_pad"]

_STATE = threading.local()


@contextlib.contextmanager
def without_jit():
    """Functions traced inside use the core-op path (export, serving)."""
    previous = getattr(_STATE, "plain", False)
    _STATE.plain = True
    try:
        yield
    finally:
        _STATE.plain = previous


def replicate_pad(h, pad: int):
    """[B, H, W, C] padded by `pad` on every side with copies of the border (PyTorch
    ReplicationPad2d; tf.pad has no such mode): a gather with clamped indices."""
    if pad == 0:
        return h
    def clamped(size):
        return tf.clip_by_value(tf.range(-pad, size + pad), 0, size - 1)
    shape = tf.shape(h)
    h = tf.gather(h, clamped(shape[1]), axis=1)
    return tf.gather(h, clamped(shape[2]), axis=2)


def _multiply_accumulate(padded, w_v, w_h):
    """out[b, y, x, c] = sum_ij padded[b, y + i, x + j, c] w_v[b, y, x, i] w_h[b, y, x, j],
    accumulated in float32 (XLA's CPU code for bfloat16 arithmetic is several times slower
    than for float32, and 25-term sums lose bfloat16's 8 bits)."""
    n = w_v.shape[-1]
    dtype = padded.dtype
    padded, w_v, w_h = (tf.cast(t, tf.float32) for t in (padded, w_v, w_h))
    height, width = tf.shape(w_v)[1], tf.shape(w_v)[2]
    out = None
    for i in range(n):
        row = None                         # sum_j h_pad[y + i, x + j] * w_h[j]
        for j in range(n):
            term = padded[:, i:i + height, j:j + width, :] * w_h[..., j:j + 1]
            row = term if row is None else row + term
        term = row * w_v[..., i:i + 1]
        out = term if out is None else out + term
    return tf.cast(out, dtype)


def _multiply_accumulate_grads(padded, w_v, w_h, grad):
    """The gradients (d padded, d w_v, d w_h) of _multiply_accumulate for the output gradient
    `grad`, written out: autodiff of the 25 shifted slices makes 25 padded full-size gradient
    maps (StridedSliceGrad), measured 4-10x the forward's time; this is one pass like it.

    d w_v[i] = sum_j w_h[j] S_ij, d w_h[j] = sum_i w_v[i] S_ij with S_ij = sum_c grad * (padded
    shifted by (i, j)); d padded[y', x'] = sum_ij (grad w_v[i] w_h[j])[y' - i, x' - j]."""
    n = w_v.shape[-1]
    dtypes = padded.dtype, w_v.dtype, w_h.dtype
    padded, w_v, w_h, grad = (tf.cast(t, tf.float32) for t in (padded, w_v, w_h, grad))
    height, width = tf.shape(w_v)[1], tf.shape(w_v)[2]
    s = [[tf.reduce_sum(grad * padded[:, i:i + height, j:j + width, :], -1) for j in range(n)]
         for i in range(n)]
    d_v = tf.stack([tf.add_n([s[i][j] * w_h[..., j] for j in range(n)]) for i in range(n)], -1)
    d_h = tf.stack([tf.add_n([s[i][j] * w_v[..., i] for i in range(n)]) for j in range(n)], -1)
    # The scatter as a gather: zero-pad grad and the kernels by n - 1, then output pixel
    # (y', x') of the padded input reads (y' - i, x' - j) = offset (n - 1 - i, n - 1 - j).
    zeros = [[0, 0], [n - 1, n - 1], [n - 1, n - 1], [0, 0]]
    grad, w_v, w_h = tf.pad(grad, zeros), tf.pad(w_v, zeros), tf.pad(w_h, zeros)
    size_y, size_x = height + n - 1, width + n - 1
    d_padded = None
    for i in range(n):
        for j in range(n):
            y, x = n - 1 - i, n - 1 - j
            window = lambda t, k: t[:, y:y + size_y, x:x + size_x, k]  # noqa: E731
            term = (window(grad, slice(None)) * window(w_v, slice(i, i + 1))
                    * window(w_h, slice(j, j + 1)))
            d_padded = term if d_padded is None else d_padded + term
    return tuple(tf.cast(t, dtype) for t, dtype in zip((d_padded, d_v, d_h), dtypes))


# One trace per (shape, dtype): the kernel size must stay static (it unrolls the loops).
_compiled = tf.function(_multiply_accumulate, jit_compile=True)
_compiled_grads = tf.function(_multiply_accumulate_grads, jit_compile=True)


def _with_gradient(jit: bool):
    forward, grads = ((_compiled, _compiled_grads) if jit
                      else (_multiply_accumulate, _multiply_accumulate_grads))

    @tf.custom_gradient
    def multiply_accumulate(padded, w_v, w_h):
        return forward(padded, w_v, w_h), lambda grad: grads(padded, w_v, w_h, grad)
    return multiply_accumulate


def adaptive_separable_conv(h, w_v, w_h, jit: bool | None = None):
    """h [B, H, W, C], w_v / w_h [B, H, W, n] (n odd) -> [B, H, W, C] in h's dtype.

    jit=None: XLA-compiled unless inside `without_jit()`."""
    if w_v.shape[-1] != w_h.shape[-1] or w_v.shape[-1] % 2 != 1:
        raise ValueError(f"kernel sizes {w_v.shape[-1]}, {w_h.shape[-1]}: need equal odd sizes")
    w_v, w_h = tf.cast(w_v, h.dtype), tf.cast(w_h, h.dtype)
    if jit is None:
        jit = not getattr(_STATE, "plain", False)
    return _with_gradient(jit)(replicate_pad(h, w_v.shape[-1] // 2), w_v, w_h)


def blend(adapted, content, mask):
    """M * adapted + (1 - M) * content (mask [B, H, W, 1] broadcast over channels); mask None:
    the adapted map alone (TwoStreamVAN's -M ablation)."""
    if mask is None:
        return adapted
    mask = tf.cast(mask, content.dtype)
    return mask * adapted + (1.0 - mask) * content
