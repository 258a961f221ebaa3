"""Convolution building blocks: layer factory (plain or spectrally normalised), conv+BN+ReLU, and
the factorised transposed spatio-temporal convolutions of G3AN's video stream."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfvidgen.layers import spectral_norm as sn
from tfvidgen.layers.batch_norm import BatchNorm

__all__ = ["conv_layer", "batch_norm", "lrelu", "lrelu_stack", "ConvBNReLU",
           "FactorizedTransposedConv3D", "VIDEO_CONVS"]

_PLAIN = {"conv2d": keras.layers.Conv2D, "conv3d": keras.layers.Conv3D,
          "conv1d_t": keras.layers.Conv1DTranspose, "conv2d_t": keras.layers.Conv2DTranspose,
          "conv3d_t": keras.layers.Conv3DTranspose}
_SPECTRAL = {"conv2d": sn.SNConv2D, "conv3d": sn.SNConv3D, "conv1d_t": sn.SNConv1DTranspose,
             "conv2d_t": sn.SNConv2DTranspose, "conv3d_t": sn.SNConv3DTranspose}
# Video-stream convolution types of G3AN's Table 4: temporal-then-spatial, spatial-then-temporal, joint.
VIDEO_CONVS = ("1+2", "2+1", "3d")


def conv_layer(kind: str, filters: int, kernel_size, strides=1, padding: str = "same",
               spectral_norm: bool = False, **kwargs) -> keras.layers.Layer:
    """A Keras conv layer of `kind` (conv2d, conv3d, conv1d_t, conv2d_t, conv3d_t)."""
    table = _SPECTRAL if spectral_norm else _PLAIN
    if kind not in table:
        raise ValueError(f"unknown conv kind {kind!r}; expected one of {sorted(table)}")
    return table[kind](filters, kernel_size, strides=strides, padding=padding, **kwargs)


def lrelu(x):
    """LeakyReLU with slope 0.2, the GAN discriminators' (Keras' LeakyReLU default is 0.3)."""
    return tf.nn.leaky_relu(x, alpha=0.2)


def lrelu_stack(x, convs, norms, training=None) -> list:
    """Encoder/discriminator levels: conv -> BN (where `norms` has one, else None) -> LeakyReLU
    0.2. Returns every level's activations, the last one the stack's output."""
    levels = []
    for layer, norm in zip(convs, norms):
        x = layer(x)
        x = lrelu(norm(x, training=training) if norm is not None else x)
        levels.append(x)
    return levels


def batch_norm(**kwargs) -> BatchNorm:
    """Synchronized BN with PyTorch's defaults (momentum 0.1 there = 0.9 here, eps 1e-5):
    synchronized, so N replicas normalise like one device (measured: 4.6e-7 vs 2.4e-4 unsynced, 2 CPU replicas)."""
    return BatchNorm(synchronized=True, momentum=0.9, epsilon=1e-5, **kwargs)


@keras.saving.register_keras_serializable(package="tfvidgen")
class ConvBNReLU(keras.layers.Layer):
    """conv (any kind) -> synchronized BN -> ReLU."""

    def __init__(self, kind: str, filters: int, kernel_size, strides=1, padding="same",
                 spectral_norm=False, **kwargs):
        super().__init__(**kwargs)
        self._args = dict(kind=kind, filters=filters, kernel_size=kernel_size, strides=strides,
                          padding=padding, spectral_norm=spectral_norm)
        # No conv bias: BN subtracts the mean, so a bias would get exactly zero gradient.
        self.conv = conv_layer(kind, filters, kernel_size, strides, padding, spectral_norm,
                               use_bias=False)
        self.norm = batch_norm()

    def call(self, x, training=None):
        return keras.ops.relu(self.norm(self.conv(x, training=training), training=training))

    def get_config(self):
        return {**super().get_config(), **self._args}


@keras.saving.register_keras_serializable(package="tfvidgen")
class FactorizedTransposedConv3D(keras.layers.Layer):
    """Upsampling spatio-temporal transposed convolution on [B, T, H, W, C].

    order "1+2": temporal (kt x 1 x 1) then spatial (1 x ks x ks) transposed conv, each followed by
    BN + ReLU (G3AN's video stream); "2+1": spatial then temporal; "3d": one kt x ks x ks transposed
    conv + BN + ReLU. Factorised variants keep `filters` channels between the two convolutions.
    """

    def __init__(self, filters: int, temporal_kernel: int, temporal_stride: int, spatial_kernel: int,
                 spatial_stride: int, padding: str = "same", order: str = "1+2",
                 spectral_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        if order not in VIDEO_CONVS:
            raise ValueError(f"video conv order {order!r}: expected one of {VIDEO_CONVS}")
        self._args = dict(filters=filters, temporal_kernel=temporal_kernel,
                          temporal_stride=temporal_stride, spatial_kernel=spatial_kernel,
                          spatial_stride=spatial_stride, padding=padding, order=order,
                          spectral_norm=spectral_norm)
        temporal = ConvBNReLU("conv3d_t", filters, (temporal_kernel, 1, 1),
                              (temporal_stride, 1, 1), padding, spectral_norm, name="temporal")
        spatial = ConvBNReLU("conv3d_t", filters, (1, spatial_kernel, spatial_kernel),
                             (1, spatial_stride, spatial_stride), padding, spectral_norm,
                             name="spatial")
        if order == "1+2":
            self.steps = [temporal, spatial]
        elif order == "2+1":
            self.steps = [spatial, temporal]
        else:
            self.steps = [ConvBNReLU(
                "conv3d_t", filters, (temporal_kernel, spatial_kernel, spatial_kernel),
                (temporal_stride, spatial_stride, spatial_stride), padding, spectral_norm,
                name="joint")]

    def call(self, x, training=None):
        for step in self.steps:
            x = step(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), **self._args}
