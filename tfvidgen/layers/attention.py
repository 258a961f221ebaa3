"""Self-attention over video feature maps.

`FactorizedSelfAttention` is G3AN's F-SA: a temporal-wise self-attention (every spatial position
attends over the T time steps) followed by a spatial-wise one (every frame attends over its H*W
positions). Each sub-block is SAGAN-style without an output projection and without 1/sqrt(d)
scaling: q, k = 1x1x1 conv to C/8, v = 1x1x1 conv to C, out = gamma * softmax(q k^T) v + x, gamma a
learned scalar starting at 0. The official code folds the attention output back without transposing
the axes (scrambling channels/time); here the fold-back is the exact inverse of the fold.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfvidgen.layers import recording
from tfvidgen.layers import spectral_norm as sn

__all__ = ["AxisSelfAttention", "FactorizedSelfAttention", "recorded_attention"]

#: F-SA weights reported while recorded_attention() is open
_RECORDER = recording.Recorder(dict)


def recorded_attention():
    """Collects, for inspection (tfvidgen.explain), the attention weights of every
    AxisSelfAttention called inside the block: {layer path: weights}, temporal [B, H, W, Tq, Tk]
    and spatial [B, T, Hq*Wq, Hk*Wk] (queries attend over keys; rows sum to 1). Eager calls."""
    return _RECORDER.recording()


@keras.saving.register_keras_serializable(package="tfvidgen")
class AxisSelfAttention(keras.layers.Layer):
    """Self-attention of a [B, T, H, W, C] map along `axis` = "temporal" or "spatial"."""

    def __init__(self, axis: str, spectral_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        if axis not in ("temporal", "spatial"):
            raise ValueError(f"axis must be 'temporal' or 'spatial', got {axis!r}")
        self.axis, self.spectral_norm = axis, spectral_norm

    def build(self, input_shape):
        channels = int(input_shape[-1])
        dense = sn.SNDense if self.spectral_norm else keras.layers.Dense
        self.query = dense(max(1, channels // 8), name="query")
        self.key = dense(max(1, channels // 8), name="key")
        self.value = dense(channels, name="value")
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros")

    def call(self, x, training=None):
        b, t, h, w, c = (tf.shape(x)[i] for i in range(5))
        if self.axis == "temporal":
            seq = tf.reshape(tf.transpose(x, [0, 2, 3, 1, 4]), [b * h * w, t, c])    # [BHW, T, C]
        else:
            seq = tf.reshape(x, [b * t, h * w, c])                                   # [BT, HW, C]
        q = self.query(seq, training=training)
        k = self.key(seq, training=training)
        v = self.value(seq, training=training)
        weights = tf.nn.softmax(tf.matmul(q, k, transpose_b=True), axis=-1)          # over keys
        for found in _RECORDER.open:
            layout = [b, h, w, t, t] if self.axis == "temporal" else [b, t, h * w, h * w]
            found[self.path] = tf.reshape(weights, layout)
        out = tf.matmul(weights, v)                                                  # like seq
        if self.axis == "temporal":
            out = tf.transpose(tf.reshape(out, [b, h, w, t, c]), [0, 3, 1, 2, 4])   # [B, T, H, W, C]
        else:
            out = tf.reshape(out, [b, t, h, w, c])
        return x + tf.cast(self.gamma, x.dtype) * out

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "spectral_norm": self.spectral_norm}


@keras.saving.register_keras_serializable(package="tfvidgen")
class FactorizedSelfAttention(keras.layers.Layer):
    """F-SA: temporal-wise then spatial-wise self-attention, each with its own gamma."""

    def __init__(self, spectral_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.spectral_norm = spectral_norm
        self.temporal = AxisSelfAttention("temporal", spectral_norm, name="temporal")
        self.spatial = AxisSelfAttention("spatial", spectral_norm, name="spatial")

    def call(self, x, training=None):
        return self.spatial(self.temporal(x, training=training), training=training)

    def get_config(self):
        return {**super().get_config(), "spectral_norm": self.spectral_norm}
