"""Spectral normalisation (Miyato et al., ICLR 2018) as Conv/ConvTranspose/Dense layers.

Why not `keras.layers.SpectralNormalization`: in Keras 3.15 it assigns W/sigma back INTO the wrapped
layer's trainable kernel on every training call, so no gradient flows through sigma and merely
running a discriminator forward (e.g. in the generator step) rewrites its weights. Here the kernel
variable holds the raw W; each call uses W / sigma(W) with sigma from one power iteration whose
vector u is a non-trainable variable, updated only when `training=True`. The gradient flows through
sigma (u and v are constants, as in the paper).

The kernel is viewed as a matrix [-1, kernel.shape[-1]] for every layer type.
"""

from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["SNConv2D", "SNConv3D", "SNConv1DTranspose", "SNConv2DTranspose", "SNConv3DTranspose",
           "SNDense", "spectral_normalize"]


def spectral_normalize(kernel, u_var, training):
    """Returns kernel / sigma(kernel); one power iteration; updates u_var when training."""
    w = tf.cast(tf.reshape(kernel, [-1, kernel.shape[-1]]), tf.float32)
    u = tf.cast(u_var, tf.float32)                                   # [1, out]
    v = tf.math.l2_normalize(tf.matmul(u, w, transpose_b=True))     # [1, rows]
    u_new = tf.math.l2_normalize(tf.matmul(v, w))                   # [1, out]
    u_new, v = tf.stop_gradient(u_new), tf.stop_gradient(v)
    sigma = tf.reduce_sum(tf.matmul(v, w) * u_new)
    if training:
        u_var.assign(u_new)
    return kernel / tf.cast(sigma, kernel.dtype)


class _SpectralNorm:
    """Mixin: adds the power-iteration vector and the normalised kernel."""

    def build(self, input_shape):
        super().build(input_shape)
        self.sn_u = self.add_weight(name="sn_u", shape=(1, int(self.kernel.shape[-1])),
                                    initializer=keras.initializers.RandomNormal(stddev=1.0),
                                    trainable=False, dtype="float32")

    def _normalized_kernel(self, training):
        return spectral_normalize(self.kernel, self.sn_u, bool(training))

    def _bias_activation(self, outputs):
        if self.use_bias:
            outputs = outputs + tf.cast(self.bias, outputs.dtype)
        return self.activation(outputs) if self.activation is not None else outputs


class _SNConv(_SpectralNorm):
    def call(self, inputs, training=None):
        return self._bias_activation(self.convolution_op(inputs, self._normalized_kernel(training)))


class _SNConvTranspose(_SpectralNorm):
    def call(self, inputs, training=None):
        outputs = keras.ops.conv_transpose(
            inputs, self._normalized_kernel(training), strides=list(self.strides),
            padding=self.padding, output_padding=self.output_padding,
            dilation_rate=self.dilation_rate, data_format=self.data_format)
        return self._bias_activation(outputs)


@keras.saving.register_keras_serializable(package="tfvidgen")
class SNConv2D(_SNConv, keras.layers.Conv2D):
    """Conv2D with a spectrally normalised kernel."""


@keras.saving.register_keras_serializable(package="tfvidgen")
class SNConv3D(_SNConv, keras.layers.Conv3D):
    """Conv3D with a spectrally normalised kernel."""


@keras.saving.register_keras_serializable(package="tfvidgen")
class SNConv1DTranspose(_SNConvTranspose, keras.layers.Conv1DTranspose):
    """Conv1DTranspose with a spectrally normalised kernel."""


@keras.saving.register_keras_serializable(package="tfvidgen")
class SNConv2DTranspose(_SNConvTranspose, keras.layers.Conv2DTranspose):
    """Conv2DTranspose with a spectrally normalised kernel."""


@keras.saving.register_keras_serializable(package="tfvidgen")
class SNConv3DTranspose(_SNConvTranspose, keras.layers.Conv3DTranspose):
    """Conv3DTranspose with a spectrally normalised kernel."""


@keras.saving.register_keras_serializable(package="tfvidgen")
class SNDense(_SpectralNorm, keras.layers.Dense):
    """Dense with a spectrally normalised kernel (acts on the last axis of any rank)."""

    def call(self, inputs, training=None):
        return self._bias_activation(keras.ops.matmul(inputs, self._normalized_kernel(training)))
