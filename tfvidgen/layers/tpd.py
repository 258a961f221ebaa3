"""Temporal Pyramid Discriminator (TPD, InMoDeGAN: Wang et al. 2021): one 2D discriminator per
temporal speed, each fed the clip sampled at that frame step with its frames stacked into the
channels (time-to-channel, TtoC).

For a clip of T frames and speed v, TtoC keeps frames 0, v, 2v, ... (the (T - 1) // v + 1
frames starting at 0, so the channel count is fixed per speed [I]) and concatenates them along
the channels frame-major ([RGB of frame 0, RGB of frame v, ...]) [I]: K = 3 * frames channels.
Each speed has its own 2D discriminator (own weights, own first layer) [P]: a StyleGAN2 residual
D by default (InMoDeGAN [I]), or any frames -> logits network a `make_discriminator(name)` factory
builds (G3AN's --model_param video_discriminator=tpd uses its own image D).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfvidgen.layers import stylegan

__all__ = ["time_to_channel", "frames_at_speed", "TemporalPyramidDiscriminator"]


def frames_at_speed(num_frames: int, speed: int) -> list:
    """Frame indices TtoC keeps at `speed` from a clip of `num_frames` frames."""
    return list(range(0, num_frames, speed))


def time_to_channel(video, speed: int):
    """[B, T, H, W, C] -> [B, H, W, C * len(frames_at_speed(T, speed))], frame-major channels."""
    frames = video[:, ::speed]                                             # [B, T', H, W, C]
    count, height, width, channels = frames.shape[1:]
    stacked = tf.transpose(frames, [0, 2, 3, 1, 4])                        # [B, H, W, T', C]
    return tf.reshape(stacked, [-1, height, width, count * channels])


class TemporalPyramidDiscriminator(keras.layers.Layer):
    """videos [B, T, H, W, 3] (+ labels [B] when conditional) -> [logits [B] per speed], in
    `speeds` order. The training flag reaches the per-speed networks through Keras' call context.
    """

    def __init__(self, speeds, resolution: int = 64, channel_base: int = 32768,
                 channel_max: int = 512, mbstd_group: int = 4, num_classes: int = 0,
                 make_discriminator=None, **kwargs):
        super().__init__(**kwargs)
        self.speeds = tuple(int(s) for s in speeds)
        self.resolution, self.channel_base, self.channel_max = (resolution, channel_base,
                                                                channel_max)
        self.mbstd_group, self.num_classes = mbstd_group, num_classes
        if make_discriminator is None:
            make_discriminator = lambda name: stylegan.ResidualDiscriminator(   # noqa: E731
                resolution, channel_base, channel_max, mbstd_group, num_classes, name=name)
        self.discriminators = [make_discriminator(f"speed{s}") for s in self.speeds]

    def call(self, videos, labels=None, training=None):
        return [d(time_to_channel(videos, s), labels)
                for s, d in zip(self.speeds, self.discriminators)]

    def get_config(self):
        return {**super().get_config(), "speeds": self.speeds, "resolution": self.resolution,
                "channel_base": self.channel_base, "channel_max": self.channel_max,
                "mbstd_group": self.mbstd_group, "num_classes": self.num_classes}
