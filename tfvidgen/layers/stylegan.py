"""StyleGAN2 building blocks (Karras et al. 2020), channels-last, usable by any model.

- EqualizedDense / EqualizedConv2D: weights stored N(0, 1 / lr_multiplier) and scaled at run time
  by lr_multiplier / sqrt(fan_in) (equalised learning rate; the scale is not an initialiser).
- MappingNetwork: pixel-normalised input, then equalised FC layers with leaky-ReLU(0.2) * sqrt(2).
- ModulatedConv2D: StyleGAN2's modulated / demodulated conv in the non-fused form
  (x * s -> one shared conv -> * demodulation coefficient): the grouped (fused) form's gradient
  fails on CPU without oneDNN and is slower with it (TF 2.21, forward + backward of
  64 frames, 32x32, 256->256: 4.27 s grouped vs 2.43 s non-fused). Optional x2 upsampling first.
- StyledConv: modulated 3x3 conv + noise injection + bias + leaky-ReLU * sqrt(2).
- ToRGB: modulated 1x1 conv without demodulation, plus bias.
- ConstantInput: the learned 4x4 constant.
- SynthesisNetwork: constant -> (StyledConv up, StyledConv, ToRGB + upsampled skip) per octave.
- ResidualDiscriminator: StyleGAN2's residual D (fromRGB, residual blocks with FIR [1,3,3,1]
  blur-downsampling, minibatch stddev, conv, two FC layers) for any input channel count;
  num_classes > 0 adds a label projection term.

Upsampling is bilinear x2 (half-pixel centres): its weights (1/4, 3/4) are exactly StyleGAN2's
[1,3,3,1] FIR upsampling away from the border; at the border it replicates instead of padding
with zeros [I]. Downsampling is the exact [1,3,3,1] blur (a depthwise conv) followed by a
stride-2 conv.
Every op is a core TensorFlow op (serving). Weights are float32; maths runs in the input dtype
except modulation / demodulation coefficients, which are computed in float32.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

__all__ = ["EqualizedDense", "EqualizedConv2D", "MappingNetwork", "ModulatedConv2D",
           "StyledConv", "ToRGB", "ConstantInput", "SynthesisNetwork", "ResidualDiscriminator",
           "lrelu_gain", "upsample_2x", "minibatch_stddev", "channels_at",
           "noise_layout"]

_SQRT2 = math.sqrt(2.0)


def lrelu_gain(x):
    """leaky-ReLU(0.2) * sqrt(2): StyleGAN's activation keeping unit second moment."""
    return tf.nn.leaky_relu(x, alpha=0.2) * tf.cast(_SQRT2, x.dtype)


def upsample_2x(x):
    """[N, H, W, C] -> [N, 2H, 2W, C], bilinear (= FIR [1,3,3,1] upsampling in the interior)."""
    shape = tf.shape(x)
    out = tf.image.resize(x, [2 * shape[1], 2 * shape[2]], method="bilinear")
    return tf.cast(out, x.dtype)


def channels_at(resolution: int, base: int, maximum: int) -> int:
    """StyleGAN2's width rule min(base / resolution, maximum), at least 1."""
    return max(1, min(base // resolution, maximum))


def noise_layout(resolution: int) -> list:
    """[(size, offset)] of every StyledConv's noise map inside one flat noise vector, in layer
    order (one 4x4 layer, then two per octave up to `resolution`), and the total length."""
    sizes, res = [4], 8
    while res <= resolution:
        sizes += [res, res]
        res *= 2
    layout, offset = [], 0
    for s in sizes:
        layout.append((s, offset))
        offset += s * s
    return layout, offset


class EqualizedDense(keras.layers.Layer):
    """y = x @ (W * lr_mul / sqrt(fan_in)) + b * lr_mul, W ~ N(0, 1 / lr_mul); optional activation
    "lrelu" (leaky-ReLU 0.2 * sqrt(2)) or None."""

    def __init__(self, units: int, lr_multiplier: float = 1.0, bias_init: float = 0.0,
                 activation: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.lr_multiplier = units, lr_multiplier
        self.bias_init, self.activation = bias_init, activation

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.scale = self.lr_multiplier / math.sqrt(fan_in)
        self.kernel = self.add_weight(
            name="kernel", shape=(fan_in, self.units), dtype="float32",
            initializer=keras.initializers.RandomNormal(stddev=1.0 / self.lr_multiplier))
        self.bias = self.add_weight(
            name="bias", shape=(self.units,), dtype="float32",
            initializer=keras.initializers.Constant(self.bias_init / self.lr_multiplier))

    def call(self, x):
        w = tf.cast(self.kernel * self.scale, x.dtype)
        y = tf.matmul(x, w) + tf.cast(self.bias * self.lr_multiplier, x.dtype)
        return lrelu_gain(y) if self.activation == "lrelu" else y

    def get_config(self):
        return {**super().get_config(), "units": self.units, "lr_multiplier": self.lr_multiplier,
                "bias_init": self.bias_init, "activation": self.activation}


class EqualizedConv2D(keras.layers.Layer):
    """Equalised-lr 'same' conv, optional stride-2 downsampling (blur, then stride 2), bias and
    activation ("lrelu" or None)."""

    def __init__(self, filters: int, kernel_size: int, down: bool = False, use_bias: bool = True,
                 activation: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.down = filters, kernel_size, down
        self.use_bias, self.activation = use_bias, activation

    def build(self, input_shape):
        fan_in = int(input_shape[-1]) * self.kernel_size ** 2
        self.scale = 1.0 / math.sqrt(fan_in)
        self.kernel = self.add_weight(
            name="kernel", dtype="float32", initializer=keras.initializers.RandomNormal(stddev=1.0),
            shape=(self.kernel_size, self.kernel_size, int(input_shape[-1]), self.filters))
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), dtype="float32",
                                     initializer="zeros") if self.use_bias else None)

    def call(self, x):
        w = tf.cast(self.kernel * self.scale, x.dtype)
        if self.down:
            # Blur then stride-2 conv: StyleGAN2's downsampling conv (kernel 3 or 1).
            x = _blur(x)
            pad = (self.kernel_size - 1) // 2
            x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
            y = tf.nn.conv2d(x, w, 2, "VALID")
        else:
            y = tf.nn.conv2d(x, w, 1, "SAME")
        if self.bias is not None:
            y = y + tf.cast(self.bias, y.dtype)
        return lrelu_gain(y) if self.activation == "lrelu" else y

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "down": self.down, "use_bias": self.use_bias,
                "activation": self.activation}


def _blur(x):
    """[1,3,3,1] separable blur, 'same' size (pads 2 on the left, 1 on the right)."""
    k = tf.constant([1.0, 3.0, 3.0, 1.0])
    kernel = tf.tensordot(k, k, axes=0) / 64.0
    kernel = tf.cast(tf.tile(kernel[:, :, None, None], [1, 1, x.shape[-1], 1]), x.dtype)
    x = tf.pad(x, [[0, 0], [2, 1], [2, 1], [0, 0]])
    return tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID")


class MappingNetwork(keras.layers.Layer):
    """z [B, Z] -> [B, units]: pixel-norm, then `num_layers` equalised FC layers (lr multiplier).
    `linear_output`: no activation after the last layer (signed outputs, e.g. motion magnitudes)."""

    def __init__(self, num_layers: int, units: int, lr_multiplier: float = 0.01,
                 normalize_input: bool = True, linear_output: bool = False,
                 output_units: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_layers, self.units, self.lr_multiplier = num_layers, units, lr_multiplier
        self.normalize_input, self.linear_output = normalize_input, linear_output
        self.output_units = output_units or units
        self.dense = [EqualizedDense(
            self.output_units if i == num_layers - 1 else units, lr_multiplier,
            activation=None if (linear_output and i == num_layers - 1) else "lrelu",
            name=f"fc{i}") for i in range(num_layers)]

    def call(self, z):
        x = z
        if self.normalize_input:
            x = x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + 1e-8)
        for layer in self.dense:
            x = layer(x)
        return x

    def get_config(self):
        return {**super().get_config(), "num_layers": self.num_layers, "units": self.units,
                "lr_multiplier": self.lr_multiplier, "normalize_input": self.normalize_input,
                "linear_output": self.linear_output, "output_units": self.output_units}


class ModulatedConv2D(keras.layers.Layer):
    """(x [N, H, W, Cin], w [N, W]) -> [N, H', W', filters]: affine style s = A(w) (bias 1),
    weight W * s_i per sample, demodulated by 1 / sqrt(sum_{i,k} (W s)^2 + 1e-8) when `demodulate`.
    Non-fused: x * s -> conv with the shared weight -> * demodulation coefficient (equal to the
    per-sample conv with the modulated weight). `up`: bilinear x2 before the conv."""

    def __init__(self, filters: int, kernel_size: int, demodulate: bool = True, up: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = filters, kernel_size
        self.demodulate, self.up = demodulate, up

    def build(self, x_shape, w_shape):
        # Keras passes one <argument>_shape per tensor argument of call().
        in_channels = int(x_shape[-1])
        self.affine = EqualizedDense(in_channels, bias_init=1.0, name="affine")
        self.affine.build((None, int(w_shape[-1])))
        self.scale = 1.0 / math.sqrt(in_channels * self.kernel_size ** 2)
        self.kernel = self.add_weight(
            name="kernel", dtype="float32", initializer=keras.initializers.RandomNormal(stddev=1.0),
            shape=(self.kernel_size, self.kernel_size, in_channels, self.filters))

    def styles(self, w):
        return self.affine(tf.cast(w, tf.float32))                              # [N, Cin]

    def call(self, x, w):
        s = self.styles(w)                                                     # float32
        weight = self.kernel * self.scale
        x = x * tf.cast(s[:, None, None, :], x.dtype)
        if self.up:
            x = upsample_2x(x)
        y = tf.nn.conv2d(x, tf.cast(weight, x.dtype), 1, "SAME")
        if self.demodulate:
            # sum_{k,i} (W_{k,i,o} s_i)^2 = (s^2) @ sum_k W_{k,i,o}^2
            d = tf.math.rsqrt(tf.matmul(tf.square(s), tf.reduce_sum(tf.square(weight), [0, 1]))
                              + 1e-8)                                          # [N, Cout]
            y = y * tf.cast(d[:, None, None, :], y.dtype)
        return y

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "demodulate": self.demodulate, "up": self.up}


class StyledConv(keras.layers.Layer):
    """Modulated 3x3 conv (+ optional x2 up), noise injection (learned strength, initialised 0),
    bias, leaky-ReLU * sqrt(2). noise: [N, H, W, 1] or None (no noise)."""

    def __init__(self, filters: int, up: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.up = filters, up
        self.conv = ModulatedConv2D(filters, 3, up=up, name="conv")

    def build(self, x_shape, w_shape, noise_shape=None):
        self.conv.build(x_shape, w_shape)
        self.noise_strength = self.add_weight(name="noise_strength", shape=(), dtype="float32",
                                              initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), dtype="float32",
                                    initializer="zeros")

    def call(self, x, w, noise=None):
        y = self.conv(x, w)
        if noise is not None:
            y = y + tf.cast(noise * self.noise_strength, y.dtype)
        return lrelu_gain(y + tf.cast(self.bias, y.dtype))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "up": self.up}


class ToRGB(keras.layers.Layer):
    """Modulated 1x1 conv to 3 channels, no demodulation, plus bias."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = ModulatedConv2D(3, 1, demodulate=False, name="conv")

    def build(self, x_shape, w_shape):
        self.conv.build(x_shape, w_shape)
        self.bias = self.add_weight(name="bias", shape=(3,), dtype="float32", initializer="zeros")

    def call(self, x, w):
        y = self.conv(x, w)
        return y + tf.cast(self.bias, y.dtype)


class ConstantInput(keras.layers.Layer):
    """The learned constant [1, size, size, channels], broadcast over the batch of `like`."""

    def __init__(self, channels: int, size: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.size = channels, size

    def build(self, input_shape):
        self.const = self.add_weight(name="const", dtype="float32",
                                     shape=(1, self.size, self.size, self.channels),
                                     initializer=keras.initializers.RandomNormal(stddev=1.0))

    def call(self, like):
        return tf.tile(tf.cast(self.const, self.compute_dtype), [tf.shape(like)[0], 1, 1, 1])

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "size": self.size}


class SynthesisNetwork(keras.layers.Layer):
    """(w [N, W], noise [N, noise_layout(resolution)[1]] or None) -> image [N, R, R, 3] (float32,
    unbounded as in StyleGAN2). Every layer receives the same w (no style mixing)."""

    def __init__(self, resolution: int, channel_base: int, channel_max: int, **kwargs):
        super().__init__(**kwargs)
        self.resolution, self.channel_base, self.channel_max = (resolution, channel_base,
                                                                channel_max)
        width = lambda r: channels_at(r, channel_base, channel_max)
        self.const = ConstantInput(width(4), name="const")
        self.convs = [StyledConv(width(4), name="conv4")]
        self.to_rgbs = [ToRGB(name="to_rgb4")]
        res = 8
        while res <= resolution:
            self.convs += [StyledConv(width(res), up=True, name=f"conv{res}_up"),
                           StyledConv(width(res), name=f"conv{res}")]
            self.to_rgbs.append(ToRGB(name=f"to_rgb{res}"))
            res *= 2
        self.layout, self.noise_size = noise_layout(resolution)

    def call(self, w, noise=None):
        def noise_map(i):
            if noise is None:
                return None
            size, offset = self.layout[i]
            return tf.reshape(noise[:, offset:offset + size * size], [-1, size, size, 1])

        x = self.const(w)
        x = self.convs[0](x, w, noise_map(0))
        rgb = self.to_rgbs[0](x, w)
        for octave in range(1, len(self.to_rgbs)):
            x = self.convs[2 * octave - 1](x, w, noise_map(2 * octave - 1))
            x = self.convs[2 * octave](x, w, noise_map(2 * octave))
            rgb = upsample_2x(rgb) + self.to_rgbs[octave](x, w)
        return tf.cast(rgb, tf.float32)

    def get_config(self):
        return {**super().get_config(), "resolution": self.resolution,
                "channel_base": self.channel_base, "channel_max": self.channel_max}


def minibatch_stddev(x, group_size: int = 4):
    """Appends StyleGAN's minibatch-stddev feature: the std over groups of samples, averaged over
    C, H, W, as one more channel. Groups are CONSECUTIVE samples (StyleGAN2 strides them): a
    replica holds a contiguous slice of the global batch, so whenever the group size divides the
    per-replica batch, N replicas form the same groups as one device (the same update). A group
    size larger than the batch, or not dividing it, falls back to one group (the whole batch)."""
    n = tf.shape(x)[0]
    group = tf.minimum(group_size, n)
    group = tf.where(tf.equal(n % group, 0), group, n)
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    y = tf.reshape(tf.cast(x, tf.float32), [-1, group, h, w, c])               # [M, G, H, W, C]
    y = y - tf.reduce_mean(y, axis=1, keepdims=True)
    y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=1) + 1e-8)                   # [M, H, W, C]
    y = tf.reduce_mean(y, axis=[1, 2, 3])                                      # [M]
    y = tf.repeat(y, group)[:, None, None, None]                               # [N, 1, 1, 1]
    y = tf.tile(y, [1, h, w, 1])
    return tf.concat([x, tf.cast(y, x.dtype)], axis=-1)


class ResidualDiscriminator(keras.layers.Layer):
    """StyleGAN2 residual discriminator: images [N, R, R, C_in] -> logits [N] (float32)."""

    def __init__(self, resolution: int, channel_base: int, channel_max: int,
                 mbstd_group: int = 4, num_classes: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.resolution, self.channel_base, self.channel_max = (resolution, channel_base,
                                                                channel_max)
        self.mbstd_group, self.num_classes = mbstd_group, num_classes
        width = lambda r: channels_at(r, channel_base, channel_max)
        self.from_rgb = EqualizedConv2D(width(resolution), 1, activation="lrelu", name="from_rgb")
        # Flat lists, not a list of tuples: Keras tracks layers in lists, not inside tuples.
        self.conv0s, self.conv1s, self.skips, res = [], [], [], resolution
        while res > 4:
            self.conv0s.append(EqualizedConv2D(width(res), 3, activation="lrelu",
                                               name=f"b{res}_conv0"))
            self.conv1s.append(EqualizedConv2D(width(res // 2), 3, down=True, activation="lrelu",
                                               name=f"b{res}_conv1"))
            self.skips.append(EqualizedConv2D(width(res // 2), 1, down=True, use_bias=False,
                                              name=f"b{res}_skip"))
            res //= 2
        self.out_conv = EqualizedConv2D(width(4), 3, activation="lrelu", name="out_conv")
        self.fc = EqualizedDense(width(4), activation="lrelu", name="fc")
        self.out = EqualizedDense(1, name="out")
        # Conditional: projection <embed(y), features> / sqrt(dim) (StyleGAN2-ADA's cmap form).
        self.embed = (EqualizedDense(width(4), name="embed") if num_classes > 0 else None)

    def call(self, x, labels=None):
        x = self.from_rgb(x)
        for conv0, conv1, skip in zip(self.conv0s, self.conv1s, self.skips):
            x = (conv1(conv0(x)) + skip(x)) * tf.cast(1.0 / _SQRT2, x.dtype)
        x = minibatch_stddev(x, self.mbstd_group)
        x = self.out_conv(x)
        x = self.fc(tf.reshape(x, [-1, x.shape[1] * x.shape[2] * x.shape[3]]))
        logits = tf.reshape(tf.cast(self.out(x), tf.float32), [-1])
        if self.embed is not None:
            y = self.embed(tf.one_hot(labels, self.num_classes))
            logits += tf.reduce_sum(tf.cast(x, tf.float32) * y, axis=-1) / math.sqrt(
                int(y.shape[-1]))
        return logits

    def get_config(self):
        return {**super().get_config(), "resolution": self.resolution,
                "channel_base": self.channel_base, "channel_max": self.channel_max,
                "mbstd_group": self.mbstd_group, "num_classes": self.num_classes}
