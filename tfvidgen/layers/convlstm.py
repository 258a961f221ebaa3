"""Convolutional LSTM cell as in TwoStreamVAN's official code (one step per call).

One k x k conv over concat(input, h) gives the four gates (i, j, f, o) with a bias;
c' = c * sigmoid(f + forget_bias) + sigmoid(i) * tanh(j), h' = tanh(c') * sigmoid(o). The forget
bias is a constant added inside the sigmoid (not a learnable initial value), and the initial state
is all ONES, not zeros. keras.layers.ConvLSTM2D does neither, hence this cell.
"""

from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["ConvLSTMCell"]


@keras.saving.register_keras_serializable(package="tfvidgen")
class ConvLSTMCell(keras.layers.Layer):
    """(input [B, H, W, Ci], state (c, h) each [B, H, W, filters]) -> (h', (c', h'))."""

    def __init__(self, filters: int, kernel_size: int = 3, forget_bias: float = 1.0,
                 kernel_initializer="glorot_uniform", **kwargs):
        # No input autocast: under mixed precision the state stays float32 (c accumulates);
        # the gate conv casts its own input.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.forget_bias = forget_bias
        self.kernel_initializer = kernel_initializer
        self.gates = keras.layers.Conv2D(4 * filters, kernel_size, padding="same",
                                         kernel_initializer=kernel_initializer, name="gates")

    def initial_state(self, batch_size, height: int, width: int, dtype="float32"):
        ones = tf.ones([batch_size, height, width, self.filters], dtype)
        return ones, ones

    def call(self, inputs, state):
        c, h = (tf.cast(s, tf.float32) for s in state)
        gates = self.gates(tf.concat([tf.cast(inputs, tf.float32), h], axis=-1))
        # Gate maths in float32 (also under mixed precision): c accumulates over time.
        i, j, f, o = tf.split(tf.cast(gates, tf.float32), 4, axis=-1)
        c = c * tf.sigmoid(f + self.forget_bias) + tf.sigmoid(i) * tf.tanh(j)
        h = tf.tanh(c) * tf.sigmoid(o)
        return h, (c, h)

    def get_config(self):
        config = super().get_config()
        config.pop("autocast", None)
        return {**config, "filters": self.filters, "kernel_size": self.kernel_size,
                "forget_bias": self.forget_bias,
                "kernel_initializer": keras.initializers.serialize(
                    keras.initializers.get(self.kernel_initializer))}
