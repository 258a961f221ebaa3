"""BigGAN / SAGAN building blocks (Brock et al. 2019; Zhang et al. 2019; Miyato & Koyama 2018),
spectral norm on every weight, for 2D per-frame generators and discriminators.

- SNEmbedding: class embedding table, spectrally normalised, looked up by one-hot matmul.
- ConditionalBatchNorm: synchronized BN without affine parameters, then x * (1 + gain(c)) +
  bias(c), gain and bias spectrally normalised linears of the conditioning vector c (one per
  example, e.g. per frame). The gain is 1 + linear, so a zero linear is the identity.
- GeneratorBlock: [temporal shift] -> CBN -> ReLU -> up x2 (nearest) -> conv3x3 -> CBN -> ReLU ->
  conv3x3, plus skip up x2 -> conv1x1. conv1 has no bias (CBN2 follows, which removes any
  per-channel constant); conv2 and skip have one only with `output_bias`, for a block whose
  output is temporally shifted before the next BN: the zero padding at the clip borders keeps
  the constant from cancelling there. With `temporal_shift_fold_div` the block input is shifted
  once (temporal_shift.py) and both paths read the shifted input: the forward pass of MVT-TSA's
  code, which shifts its input in place before the skip reads it.
- SelfAttention: SAGAN/BigGAN's 2D attention: theta = 1x1 to C/8, phi = 1x1 to C/8 + 2x2 max-pool,
  g = 1x1 to C/2 + 2x2 max-pool, o = 1x1 C/2 -> C, out = x + sigma * o, sigma starts at 0.
- DiscriminatorBlock: BigGAN's D block; `optimized` (the first block: conv -> ReLU -> conv ->
  pool; skip pool -> conv1x1) or pre-activation (ReLU -> conv -> ReLU -> conv [-> pool]; skip
  conv1x1 [-> pool], or the input itself [-> pool] when not `learnable_skip`).
- ProjectionHead: ReLU -> SUM over spatial (and time) axes -> h; logit = linear(h) + <embed(y), h>.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfvidgen.layers import conv
from tfvidgen.layers import spectral_norm as sn
from tfvidgen.layers.temporal_shift import temporal_shift

__all__ = ["SNEmbedding", "ConditionalBatchNorm", "GeneratorBlock", "SelfAttention",
           "DiscriminatorBlock", "ProjectionHead", "upsample2x", "sn_conv2d"]


def sn_conv2d(filters: int, kernel_size: int, name: str, use_bias: bool = True):
    # Keras' defaults are the official code's init: Xavier-uniform weights, zero biases.
    return conv.conv_layer("conv2d", filters, kernel_size, 1, "same", True, name=name,
                           use_bias=use_bias)


def upsample2x(x):
    """Nearest-neighbour x2 in H and W of [N, H, W, C]."""
    return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)


@keras.saving.register_keras_serializable(package="tfvidgen")
class SNEmbedding(keras.layers.Layer):
    """labels int [N] -> [N, dim]: rows of a spectrally normalised [num_classes, dim] table."""

    def __init__(self, num_classes: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.dim = num_classes, dim

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(name="embeddings", shape=(self.num_classes, self.dim),
                                          initializer="glorot_uniform")
        self.sn_u = self.add_weight(name="sn_u", shape=(1, self.dim), trainable=False,
                                    initializer=keras.initializers.RandomNormal(stddev=1.0))

    def normalized_table(self, training=None):
        return sn.spectral_normalize(self.embeddings, self.sn_u, bool(training))

    def call(self, labels, training=None):
        # One-hot matmul, not a gather: a dense gradient for this small table (one all-reduce).
        one_hot = tf.one_hot(tf.cast(labels, tf.int32), self.num_classes, dtype=self.compute_dtype)
        return tf.matmul(one_hot, tf.cast(self.normalized_table(training), self.compute_dtype))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "dim": self.dim}


@keras.saving.register_keras_serializable(package="tfvidgen")
class ConditionalBatchNorm(keras.layers.Layer):
    """(x [N, H, W, C], c [N, D]) -> BN(x) * (1 + gain(c)) + bias(c); BN synchronized, no affine."""

    def __init__(self, channels: int, momentum: float = 0.999, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.momentum = channels, momentum
        # PyTorch momentum 0.001 (the official code) = Keras 0.999.
        self.norm = conv.batch_norm(center=False, scale=False, name="bn")
        self.norm.momentum = momentum
        self.gain = sn.SNDense(channels, name="gain")
        self.bias = sn.SNDense(channels, name="bias")
        self.built = True       # sublayers build on their first call (no symbolic build trace)

    def call(self, x, c, training=None):
        h = self.norm(x, training=training)
        gain = tf.cast(self.gain(c, training=training), h.dtype)[:, None, None, :]
        bias = tf.cast(self.bias(c, training=training), h.dtype)[:, None, None, :]
        return h * (1.0 + gain) + bias

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "momentum": self.momentum}


@keras.saving.register_keras_serializable(package="tfvidgen")
class GeneratorBlock(keras.layers.Layer):
    """(x [B*T, H, W, Cin], c [B*T, D]) -> [B*T, 2H, 2W, filters]; optionally temporal (TSM)."""

    def __init__(self, in_channels: int, filters: int, temporal_shift_fold_div: int = 0,
                 output_bias: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.filters, self.fold_div = in_channels, filters, temporal_shift_fold_div
        self.output_bias = output_bias
        self.cbn1 = ConditionalBatchNorm(in_channels, name="cbn1")
        # A bias whose output goes straight into a BN (conv1 -> CBN2; conv2 and skip -> the next
        # block's CBN1 or G's last BN) gets only round-off gradients, which Adam scales up to
        # full-size steps (1 vs 2 replicas then drift apart): none there. A temporal shift
        # between the output and the next BN (output_bias) makes the bias count: keep it.
        self.conv1 = sn_conv2d(filters, 3, "conv1", use_bias=False)
        self.cbn2 = ConditionalBatchNorm(filters, name="cbn2")
        self.conv2 = sn_conv2d(filters, 3, "conv2", use_bias=output_bias)
        self.skip = sn_conv2d(filters, 1, "skip", use_bias=output_bias)
        self.built = True       # sublayers build on their first call (no symbolic build trace)

    def call(self, x, c, num_frames=None, training=None):
        if self.fold_div:
            x = temporal_shift(x, num_frames, self.fold_div)
        h = tf.nn.relu(self.cbn1(x, c, training=training))
        h = self.conv1(upsample2x(h), training=training)
        h = tf.nn.relu(self.cbn2(h, c, training=training))
        h = self.conv2(h, training=training)
        return h + self.skip(upsample2x(x), training=training)

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels, "filters": self.filters,
                "temporal_shift_fold_div": self.fold_div, "output_bias": self.output_bias}


@keras.saving.register_keras_serializable(package="tfvidgen")
class SelfAttention(keras.layers.Layer):
    """SAGAN/BigGAN self-attention over the H*W positions of each [N, H, W, C] map (H, W even)."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.theta = sn_conv2d(max(1, channels // 8), 1, "theta")
        self.phi = sn_conv2d(max(1, channels // 8), 1, "phi")
        self.g = sn_conv2d(max(1, channels // 2), 1, "g")
        self.o = sn_conv2d(channels, 1, "o")

    def build(self, input_shape):
        self.sigma = self.add_weight(name="sigma", shape=(), initializer="zeros")

    def call(self, x, training=None):
        n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        theta = self.theta(x, training=training)
        phi = tf.nn.max_pool2d(self.phi(x, training=training), 2, 2, "VALID")
        g = tf.nn.max_pool2d(self.g(x, training=training), 2, 2, "VALID")
        theta = tf.reshape(theta, [n, h * w, theta.shape[-1]])
        phi = tf.reshape(phi, [n, -1, phi.shape[-1]])
        g = tf.reshape(g, [n, -1, g.shape[-1]])
        attention = tf.nn.softmax(tf.matmul(theta, phi, transpose_b=True), axis=-1)  # [N, HW, HW/4]
        attended = tf.reshape(tf.matmul(attention, g), [n, h, w, g.shape[-1]])
        return x + tf.cast(self.sigma, x.dtype) * self.o(attended, training=training)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="tfvidgen")
class DiscriminatorBlock(keras.layers.Layer):
    """BigGAN D residual block on [N, H, W, C] -> [N, H/2 (or H), W/2 (or W), filters]."""

    def __init__(self, filters: int, downsample: bool = True, optimized: bool = False,
                 learnable_skip: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.downsample = filters, downsample
        self.optimized, self.learnable_skip = optimized, learnable_skip
        self.conv1 = sn_conv2d(filters, 3, "conv1")
        self.conv2 = sn_conv2d(filters, 3, "conv2")
        self.skip = sn_conv2d(filters, 1, "skip") if learnable_skip or optimized else None
        self.built = True       # sublayers build on their first call (no symbolic build trace)

    def _pool(self, x):
        return tf.nn.avg_pool2d(x, 2, 2, "VALID") if self.downsample else x

    def call(self, x, training=None):
        h = x if self.optimized else tf.nn.relu(x)
        h = self.conv2(tf.nn.relu(self.conv1(h, training=training)), training=training)
        h = self._pool(h)
        if self.optimized:
            skip = self.skip(self._pool(x), training=training)
        elif self.skip is not None:
            skip = self._pool(self.skip(x, training=training))
        else:
            skip = self._pool(x)
        return h + skip

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "downsample": self.downsample,
                "optimized": self.optimized, "learnable_skip": self.learnable_skip}


@keras.saving.register_keras_serializable(package="tfvidgen")
class ProjectionHead(keras.layers.Layer):
    """features [N, ..., C] (+ labels [N]) -> logits float32 [N]:
    h = sum over every axis but N and C of ReLU(features); linear(h) + <embed(y), h>.

    auxiliary_classes K > 0 adds an AC-GAN classifier (Odena et al. 2017) on the same h:
    call(..., with_classes=True) returns (logits [N], class logits [N, K])."""

    def __init__(self, channels: int, num_classes: int = 0, relu: bool = True,
                 auxiliary_classes: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.num_classes, self.relu = channels, num_classes, relu
        self.auxiliary_classes = auxiliary_classes
        self.linear = sn.SNDense(1, name="linear", dtype="float32")
        self.embed = (SNEmbedding(num_classes, channels, name="embed", dtype="float32")
                      if num_classes else None)
        self.classifier = (sn.SNDense(auxiliary_classes, name="classifier", dtype="float32")
                           if auxiliary_classes else None)
        self.built = True       # sublayers build on their first call (no symbolic build trace)

    def call(self, features, labels=None, training=None, with_classes=False):
        h = tf.cast(features, tf.float32)
        if self.relu:
            h = tf.nn.relu(h)
        h = tf.reduce_sum(h, axis=list(range(1, len(features.shape) - 1)))        # [N, C]
        logits = tf.reshape(self.linear(h, training=training), [-1])
        if self.embed is not None:
            logits += tf.reduce_sum(self.embed(labels, training=training) * h, axis=-1)
        if not with_classes:
            return logits
        if self.classifier is None:
            raise ValueError(f"{self.name}: with_classes=True needs auxiliary_classes > 0")
        return logits, self.classifier(h, training=training)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "num_classes": self.num_classes, "relu": self.relu,
                "auxiliary_classes": self.auxiliary_classes}
