"""Dual-MTGAN's networks (tfvidgen.models.dual_mtgan has the paper and every inferred choice):
the encoders E_C and E_M, the generator G_T + G_I, and the discriminators D_I (pairs) and D_V."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfvidgen.layers import configured, conv
from tfvidgen.models.dual_mtgan_config import DualMTGANConfig

__all__ = ["ContentEncoder", "MotionEncoder", "DualMTGANGenerator", "PairImageDiscriminator",
           "VideoDiscriminator"]


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)     # DCGAN


class _Configured(configured.ConfiguredModel):
    """Dual-MTGAN's networks, built from its config."""

    CONFIG = DualMTGANConfig


@keras.saving.register_keras_serializable(package="tfvidgen")
class ContentEncoder(_Configured):
    """E_C: frames [N, H, W, 3] -> z_c [N, content_dim] (DCGAN encoder); with
    `with_features=True` also the maps G_I reads when `content_skips` is on, finest first: the
    frames themselves, then each conv level's activations ([N, H/2, W/2, C0], ..., [N, 4, 4,
    C_last])."""

    def __init__(self, cfg: DualMTGANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.convs = [conv.conv_layer("conv2d", cfg.base_channels * min(8, 2 ** i), 4, 2, "same",
                                      use_bias=i == 0, kernel_initializer=_init(),
                                      name=f"conv{i}") for i in range(cfg.levels)]
        self.norms = [None] + [conv.batch_norm(name=f"bn{i}") for i in range(1, cfg.levels)]
        self.head = keras.layers.Conv2D(cfg.content_dim, 4, padding="valid", dtype="float32",
                                        kernel_initializer=_init(), name="head")

    def call(self, frames, training=None, with_features=False):
        levels = conv.lrelu_stack(frames, self.convs, self.norms, training)
        z = tf.reshape(self.head(levels[-1]), [-1, self.cfg.content_dim])
        z = tf.tanh(z) if self.cfg.content_tanh else z
        return (z, [frames, *levels]) if with_features else z


@keras.saving.register_keras_serializable(package="tfvidgen")
class MotionEncoder(_Configured):
    """E_M: videos [B, T, H, W, 3] -> (mu, log sigma^2), each [B, motion_dim] (3D conv)."""

    def __init__(self, cfg: DualMTGANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.convs, self.norms = [], []
        frames = cfg.num_frames
        for i in range(cfg.levels):
            channels = cfg.motion_channels * min(8, 2 ** i)
            if i == 0:                  # spatial downsampling only (MoCoGAN / C3D-style)
                kernel, strides = (3, 4, 4), (1, 2, 2)
            else:                       # halve time with space while there is time left
                st = 2 if frames > 1 else 1
                kernel, strides = (4 if st == 2 else 1, 4, 4), (st, 2, 2)
                frames = -(-frames // st)
            self.convs.append(conv.conv_layer("conv3d", channels, kernel, strides, "same",
                                              use_bias=i == 0, kernel_initializer=_init(),
                                              name=f"conv{i}"))
            self.norms.append(conv.batch_norm(name=f"bn{i}") if i else None)
        self.mean = keras.layers.Dense(cfg.motion_dim, dtype="float32", name="mean")
        self.log_variance = keras.layers.Dense(cfg.motion_dim, dtype="float32",
                                               name="log_variance")

    def call(self, videos, training=None):
        h = conv.lrelu_stack(videos, self.convs, self.norms, training)[-1]
        pooled = tf.reduce_mean(h, axis=[1, 2, 3])
        return self.mean(pooled), self.log_variance(pooled)


@keras.saving.register_keras_serializable(package="tfvidgen")
class DualMTGANGenerator(_Configured):
    """G_T + G_I: {content [B, C] or [B, T, C], z_motion [B, Zm](, label [B])(, skips)} -> video
    [B, T, H, W, 3] in [-1, 1]; T = `num_frames` (default cfg.num_frames; any count: G_T is an
    LSTM). With `content_skips`, `skips` are the conditioning image and E_C's maps of it
    (ContentEncoder(with_features=True)), each concatenated to the G_I feature map of its size
    in every frame (U-Net style)."""

    def __init__(self, cfg: DualMTGANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.lstm = keras.layers.LSTM(cfg.lstm_units, return_sequences=True, name="g_t_lstm")
        self.frame_motion = keras.layers.Dense(cfg.frame_motion_dim, name="g_t_out")
        channels = [cfg.base_channels * min(8, 2 ** (cfg.levels - 1 - i))
                    for i in range(cfg.levels)]
        self.ups = [conv.ConvBNReLU("conv2d_t", c, 4, 1 if i == 0 else 2,
                                    "valid" if i == 0 else "same", name=f"g_i_up{i}")
                    for i, c in enumerate(channels)]
        if cfg.content_skips:
            # The U-Net's top level: up to full resolution, concatenate the image itself, then
            # a 3x3 conv to RGB (so the image's pixels need not pass through any upsampling).
            self.ups.append(conv.ConvBNReLU("conv2d_t", cfg.base_channels, 4, 2, "same",
                                            name=f"g_i_up{len(channels)}"))
            self.to_rgb = keras.layers.Conv2D(3, 3, padding="same", dtype="float32",
                                              kernel_initializer=_init(), name="g_i_to_rgb")
        else:
            self.to_rgb = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same",
                                                       dtype="float32",
                                                       kernel_initializer=_init(),
                                                       name="g_i_to_rgb")

    def motion_codes(self, z_motion, labels=None, num_frames=None):
        """G_T: z_M [B, Zm] (+ labels) -> z_m^t [B, T, frame_motion_dim]."""
        frames = self.cfg.num_frames if num_frames is None else num_frames
        z = z_motion
        if self.cfg.conditional:
            if labels is None:
                raise ValueError("conditional Dual-MTGAN: G_T needs labels [B] (int, in "
                                 f"[0, {self.cfg.num_classes})); none were given")
            z = tf.concat([z, tf.one_hot(labels, self.cfg.num_classes, dtype=z.dtype)], -1)
        steps = tf.repeat(z[:, None, :], frames, axis=1)    # z_M at every step [I]
        return self.frame_motion(self.lstm(steps))

    def render(self, content, frame_motion, training=None, skips=None):
        """G_I per frame: content [B, C] or [B, T, C], z_m^t [B, T, M] -> [B, T, H, W, 3].

        skips (content_skips only): each example's conditioning image and E_C's maps of it,
        finest first, as ContentEncoder(with_features=True) returns them."""
        batch, frames = tf.shape(frame_motion)[0], tf.shape(frame_motion)[1]
        content = tf.cast(content, frame_motion.dtype)
        if content.shape.rank == 2:
            content = tf.repeat(content[:, None, :], frames, axis=1)
        if self.cfg.content_skips and skips is None:
            raise ValueError("Dual-MTGAN with content_skips: G_I needs the conditioning "
                             "image's E_C feature maps (skips); none were given")
        codes = tf.concat([content, frame_motion], axis=-1)
        h = tf.reshape(codes, [-1, 1, 1, codes.shape[-1]])
        for i, layer in enumerate(self.ups):
            h = layer(h, training=training)
            if self.cfg.content_skips:      # G_I's level i has the size of skip L-i
                skip = tf.cast(skips[len(self.ups) - 1 - i], h.dtype)
                skip = tf.repeat(skip, frames, axis=0)          # [B*T, h, w, C], example-major
                h = tf.concat([h, skip], axis=-1)
        images = tf.tanh(self.to_rgb(h))
        size = self.cfg.resolution
        return tf.reshape(images, [batch, frames, size, size, 3])

    def call(self, inputs, training=None, num_frames=None):
        codes = self.motion_codes(inputs["z_motion"], inputs.get("label"), num_frames)
        return self.render(inputs["content"], codes, training=training,
                           skips=inputs.get("skips"))


class _SNDiscriminator(_Configured):
    """Spectrally normalised convs with LeakyReLU 0.2 and a conv head to one logit each."""

    def call(self, inputs, training=None):
        h = inputs
        for layer in self.convs:
            h = conv.lrelu(layer(h, training=training))
        return tf.reshape(tf.cast(self.head(h, training=training), tf.float32), [-1])


@keras.saving.register_keras_serializable(package="tfvidgen")
class PairImageDiscriminator(_SNDiscriminator):
    """D_I: (conditioning images [B, H, W, 3], frames [B, H, W, 3]) -> logits [B]; the pair is
    concatenated along channels."""

    def __init__(self, cfg: DualMTGANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.convs = [conv.conv_layer("conv2d", cfg.d_channels * min(8, 2 ** i), 4, 2, "same",
                                      True, name=f"conv{i}") for i in range(cfg.levels)]
        self.head = conv.conv_layer("conv2d", 1, 4, 1, "valid", True, name="head")

    def call(self, pair, training=None):
        condition, frame = pair
        return super().call(tf.concat([condition, frame], axis=-1), training=training)


@keras.saving.register_keras_serializable(package="tfvidgen")
class VideoDiscriminator(_SNDiscriminator):
    """D_V: videos [B, T, H, W, 3] (+ one-hot label planes when conditional) -> logits [B]."""

    def __init__(self, cfg: DualMTGANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        frames, self.convs = cfg.num_frames, []
        for i in range(cfg.levels):
            kt, st = (4, 2) if frames > 1 else (1, 1)
            self.convs.append(conv.conv_layer("conv3d", cfg.d_channels * min(8, 2 ** i),
                                              (kt, 4, 4), (st, 2, 2), "same", True,
                                              name=f"conv{i}"))
            frames = -(-frames // st)
        self.head = conv.conv_layer("conv3d", 1, (frames, 4, 4), 1, "valid", True, name="head")

    def call(self, videos, labels=None, training=None):
        if self.cfg.conditional:
            planes = tf.one_hot(labels, self.cfg.num_classes, dtype=videos.dtype)
            planes = tf.ones_like(videos[..., :1]) * planes[:, None, None, None, :]
            videos = tf.concat([videos, planes], axis=-1)
        return super().call(videos, training=training)
