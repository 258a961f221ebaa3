"""G3AN: Disentangling Appearance and Motion for Video Generation (Wang, Bilinski, Bremond,
Dantcheva; CVPR 2020, arXiv:1912.05523).

Generator: N stacked G3 modules, each with a spatial stream G_S (2D transposed conv on appearance
features, from z_a), a temporal stream G_T (1D transposed conv on motion features, from z_m, plus
the one-hot label when conditional) and a video stream G_V (factorised transposed (1+2)D conv:
temporal then spatial, BN + ReLU after each), fused by replicate-add-concatenate; factorised
spatio-temporal self-attention (F-SA) on the fused map after G3_3; a (1,3,3) conv + tanh to RGB.
Discriminators: a video D_V on the whole clip and an image D_I on one randomly sampled frame per
video, spectral norm on every conv, LeakyReLU 0.2, DCGAN (BCE) losses, Adam(2e-4, 0.5, 0.999).

Sizes generalise: N = log2(resolution) - 1 modules (5 at 64x64); time grows 1 -> 4 in G3_0 and
doubles per module until num_frames (a power of two >= 4), later modules keep it (kernel 1).
Module n has base_channels * min(8, 2^(N-1-n)) channels (512, 512, 256, 128, 64 at paper size).

Departures and choices (all documented `--model_param`s):
- video_discriminator: "3d" (default, the paper: MoCoGAN-style 3D conv D), "2+1" (the official
  code's later (2+1)D D with unpadded temporal convs; here the temporal kernels are spread so any
  num_frames reduces to 1) or "tpd" (InMoDeGAN's Temporal Pyramid Discriminator, which its
  Table 2 shows improving G3AN: one D_I-style 2D D per speed in tpd_speeds on the time-to-channel
  clip; the video loss is the mean over the speeds [I], so it weighs as the single D it replaces).
- g_spectral_norm (default False): the official code wraps every generator transposed conv in SN;
  the paper does not mention it.
- r1_gamma (default 0, the paper's G3AN has none): adds (r1_gamma / 2) * E||grad D(real)||^2
  for D_V and D_I on every D step (Mescheder et al. 2018), the stabiliser InMoDeGAN uses; the
  quickstart uses it because without it the small generator oscillates and drops modes.
- Conditional (conditional=True): one-hot label concatenated with z_m into G_T only (paper).
  The paper does not say how D sees the label; we use projection discriminators (Miyato & Koyama
  2018): logit += <embed(y), sum-pooled features>, on both D_V and D_I.
- One Adam optimizer updates D_V and D_I together; Adam is per-parameter, so this equals the
  code's two identical Adam optimizers. The fakes of the D step are reused by the G step (code).
- F-SA folds the attention output back correctly (the released code scrambles axes: spec §5).
- D_I frames: one random frame per video (paper), separately drawn for real and fake.
- Ablations: spatial_stream/temporal_stream/attention off, attention_after=n, video_conv in
  {"1+2", "2+1", "3d"} (Tables 3-5). The conv variants are not parameter-matched.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import tensorflow as tf

from tfvidgen import losses
from tfvidgen.config import TrainConfig
from tfvidgen.layers import attention, configured, conv, fusion, noise, tpd
from tfvidgen.models import base

__all__ = ["G3ANConfig", "G3ANGenerator", "G3ANImageDiscriminator", "G3ANVideoDiscriminator",
           "G3AN"]

_SALT_Z_A, _SALT_Z_M, _SALT_REAL_FRAME, _SALT_FAKE_FRAME = 1, 2, 3, 4


@dataclasses.dataclass(frozen=True)
class G3ANConfig:
    """G3AN hyper-parameters (paper defaults). resolution/num_frames/num_classes come from data."""

    z_appearance: int = 128
    z_motion: int = 10
    base_channels: int = 64
    d_channels: int = 64
    conditional: bool = False
    spatial_stream: bool = True
    temporal_stream: bool = True
    attention: bool = True
    attention_after: int = -1          # module index; -1 = second to last (G3_3 at 64x64)
    video_conv: str = "1+2"
    video_discriminator: str = "3d"
    tpd_speeds: str = "1,3,5,7"        # video_discriminator=tpd: frame steps (InMoDeGAN VoxCeleb)
    g_spectral_norm: bool = False
    r1_gamma: float = 0.0
    resolution: int = 64
    num_frames: int = 16
    num_classes: int = 1

    #: fields that come from the data config, not from --model_param
    DATA_FIELDS = ("resolution", "num_frames", "num_classes")

    @property
    def num_modules(self) -> int:
        return int(math.log2(self.resolution)) - 1

    def validate(self) -> "G3ANConfig":
        n = self.num_modules
        if self.resolution < 8 or 2 ** (n + 1) != self.resolution:
            raise ValueError(f"--resolution={self.resolution}: G3AN needs a power of two >= 8")
        doublings = math.log2(self.num_frames / 4) if self.num_frames >= 4 else -1
        if doublings != int(doublings) or doublings < 0 or doublings > n - 1:
            raise ValueError(f"--num_frames={self.num_frames}: G3AN needs 4 * 2^k frames with "
                             f"k <= {n - 1} at resolution {self.resolution}")
        if self.video_conv not in conv.VIDEO_CONVS:
            raise ValueError(f"--model_param video_conv={self.video_conv!r}: expected one of "
                             f"{conv.VIDEO_CONVS}")
        if self.video_discriminator not in ("3d", "2+1", "tpd"):
            raise ValueError(f"--model_param video_discriminator={self.video_discriminator!r}: "
                             f"expected '3d', '2+1' or 'tpd'")
        if self.video_discriminator == "tpd":
            try:
                speeds = [int(s) for s in self.tpd_speeds.split(",")]
            except ValueError:
                speeds = []
            if not speeds or any(not 1 <= s < self.num_frames for s in speeds):
                raise ValueError(f"--model_param tpd_speeds={self.tpd_speeds!r}: expected "
                                 f"comma-separated frame steps in [1, {self.num_frames - 1}]")
        if self.attention and not -1 <= self.attention_after < n:
            raise ValueError(f"--model_param attention_after={self.attention_after}: expected -1 "
                             f"or a module index in [0, {n - 1}]")
        if self.conditional and self.num_classes < 2:
            raise ValueError("--model_param conditional=true needs a labelled dataset with at "
                             "least 2 classes")
        if self.r1_gamma < 0:
            raise ValueError(f"--model_param r1_gamma={self.r1_gamma}: expected >= 0")
        for name in ("z_appearance", "z_motion", "base_channels", "d_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected >= 1")
        return self

    @property
    def attention_index(self) -> int:
        return self.attention_after if self.attention_after >= 0 else self.num_modules - 2


def _module_plan(cfg: G3ANConfig) -> list[dict]:
    """Per module: channels, and (kernel, stride, padding) of the spatial and temporal upsampling."""
    n = cfg.num_modules
    plan, frames = [], 1
    for i in range(n):
        channels = cfg.base_channels * min(8, 2 ** (n - 1 - i))
        if i == 0:                                  # 1 -> 4 in H, W and T: unpadded kernel 4
            plan.append(dict(channels=channels, spatial=(4, 1), temporal=(4, 1), padding="valid"))
            frames = 4
        elif frames < cfg.num_frames:              # x2 in H, W and T
            plan.append(dict(channels=channels, spatial=(4, 2), temporal=(4, 2), padding="same"))
            frames *= 2
        else:                                       # time frozen: pointwise temporal conv
            plan.append(dict(channels=channels, spatial=(4, 2), temporal=(1, 1), padding="same"))
    return plan


@keras.saving.register_keras_serializable(package="tfvidgen")
class G3ANGenerator(configured.ConfiguredModel):
    """latents {z_appearance [B,Za], z_motion [B,Zm](, label [B])} -> video [B,T,H,W,3] in [-1,1]."""

    CONFIG = G3ANConfig

    def __init__(self, cfg: G3ANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg.validate()
        sn = cfg.g_spectral_norm
        self.spatial_convs, self.temporal_convs, self.video_convs = [], [], []
        for i, p in enumerate(_module_plan(cfg)):
            (ks, ss), (kt, st) = p["spatial"], p["temporal"]
            if cfg.spatial_stream:
                self.spatial_convs.append(conv.ConvBNReLU(
                    "conv2d_t", p["channels"], ks, ss, p["padding"], sn, name=f"g3_{i}_spatial"))
            if cfg.temporal_stream:
                self.temporal_convs.append(conv.ConvBNReLU(
                    "conv1d_t", p["channels"], kt, st, p["padding"], sn, name=f"g3_{i}_temporal"))
            self.video_convs.append(conv.FactorizedTransposedConv3D(
                p["channels"], kt, st, ks, ss, p["padding"], cfg.video_conv, sn,
                name=f"g3_{i}_video"))
        self.attention = (attention.FactorizedSelfAttention(spectral_norm=True, name="f_sa")
                          if cfg.attention else None)
        self.to_rgb = keras.layers.Conv3D(
            3, (1, 3, 3), padding="same", dtype="float32", name="to_rgb",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, latents, training=None):
        z_a = latents["z_appearance"]
        z_m = latents["z_motion"]
        z_t = z_m
        if self.cfg.conditional:
            z_t = tf.concat([z_m, tf.one_hot(latents["label"], self.cfg.num_classes,
                                             dtype=z_m.dtype)], axis=-1)
        f_s = z_a[:, None, None, :]                                          # [B, 1, 1, Za]
        f_t = z_t[:, None, :]                                                # [B, 1, Zm(+K)]
        f_v = tf.concat([z_a, z_m], axis=-1)[:, None, None, None, :]         # [B, 1, 1, 1, Za+Zm]
        for i, video_conv in enumerate(self.video_convs):
            f_v = video_conv(f_v, training=training)                         # F_V'
            f_s = self.spatial_convs[i](f_s, training=training) if self.spatial_convs else None
            f_t = self.temporal_convs[i](f_t, training=training) if self.temporal_convs else None
            f_v = fusion.spatio_temporal_fusion(f_s, f_t, f_v)
            if self.attention is not None and i == self.cfg.attention_index:
                f_v = self.attention(f_v, training=training)
        return tf.tanh(self.to_rgb(f_v))


@keras.saving.register_keras_serializable(package="tfvidgen")
class _Projection(keras.layers.Layer):
    """Projection-discriminator label term <embed(y), sum-pooled features> (Miyato & Koyama).

    Always give it a name: the automatic one, "_projection", becomes the root name scope
    "__projection" when the first call is traced, which TensorFlow rejects (conditional
    training crashed at step 1)."""

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.num_classes, int(input_shape[-1])),
            initializer=keras.initializers.RandomUniform(-0.05, 0.05), dtype="float32")

    def call(self, features, labels):
        pooled = tf.reduce_sum(tf.cast(features, tf.float32),
                               axis=list(range(1, len(features.shape) - 1)))          # [B, C]
        # One-hot matmul, not a gather: a dense gradient for this tiny table, all-reduced with
        # the other gradients instead of through a separate IndexedSlices all-gather.
        embedded = tf.matmul(tf.one_hot(labels, self.num_classes), self.embeddings)     # [B, C]
        return tf.reduce_sum(pooled * embedded, axis=-1)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


class _ConvDiscriminator(configured.ConfiguredModel):
    """Spectrally normalised convs with LeakyReLU 0.2, a conv head to one logit per example, and
    a projection term when conditional. Subclasses build `convs` and `head`."""

    CONFIG = G3ANConfig

    def call(self, inputs, labels=None, training=None):
        h = inputs
        for layer in self.convs:
            h = conv.lrelu(layer(h, training=training))
        logits = tf.reshape(tf.cast(self.head(h, training=training), tf.float32), [-1])
        if self.projection is not None:
            logits += self.projection(h, labels)
        return logits


@keras.saving.register_keras_serializable(package="tfvidgen")
class G3ANImageDiscriminator(_ConvDiscriminator):
    """D_I: frames [B, H, W, 3] (+ labels) -> logits [B]."""

    def __init__(self, cfg: G3ANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        levels = int(math.log2(cfg.resolution // 4))
        self.convs = [conv.conv_layer("conv2d", cfg.d_channels * min(8, 2 ** i), 4, 2, "same",
                                      True, name=f"conv{i}") for i in range(levels)]
        self.head = conv.conv_layer("conv2d", 1, 4, 1, "valid", True, name="head")
        self.projection = (_Projection(cfg.num_classes, name="projection") if cfg.conditional
                           else None)


def _temporal_kernels(frames: int, count: int) -> list[int]:
    """Kernels of `count` unpadded temporal convs that together reduce `frames` to 1."""
    base_, extra = divmod(frames - 1, count)
    return [1 + base_ + (1 if i < extra else 0) for i in range(count)]


@keras.saving.register_keras_serializable(package="tfvidgen")
class G3ANVideoDiscriminator(_ConvDiscriminator):
    """D_V: videos [B, T, H, W, 3] (+ labels) -> logits [B]. "3d" (paper) or "2+1" (code)."""

    def __init__(self, cfg: G3ANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        levels = int(math.log2(cfg.resolution // 4))
        channels = [cfg.d_channels * min(8, 2 ** i) for i in range(levels)]
        self.convs = []
        if cfg.video_discriminator == "3d":
            frames = cfg.num_frames
            for i, c in enumerate(channels):        # halve T with H and W while T > 1
                kt, st = (4, 2) if frames > 1 else (1, 1)
                self.convs.append(conv.conv_layer("conv3d", c, (kt, 4, 4), (st, 2, 2), "same",
                                                  True, name=f"conv{i}"))
                frames = -(-frames // st)
            self.head = conv.conv_layer("conv3d", 1, (frames, 4, 4), 1, "valid", True, name="head")
        else:
            kernels = _temporal_kernels(cfg.num_frames, levels + 1)
            for i, c in enumerate(channels):
                self.convs.append(conv.conv_layer("conv3d", c, (1, 4, 4), (1, 2, 2), "same", True,
                                                  name=f"spatial{i}"))
                self.convs.append(conv.conv_layer("conv3d", c, (kernels[i], 1, 1), 1, "valid",
                                                  True, name=f"temporal{i}"))
            self.convs.append(conv.conv_layer("conv3d", channels[-1], (1, 4, 4), 1, "valid", True,
                                              name="spatial_last"))
            self.head = conv.conv_layer("conv3d", 1, (kernels[-1], 1, 1), 1, "valid", True,
                                        name="head")
        self.projection = (_Projection(cfg.num_classes, name="projection") if cfg.conditional
                           else None)


@keras.saving.register_keras_serializable(package="tfvidgen")
class G3ANTemporalPyramidDiscriminator(configured.ConfiguredModel):
    """D_V as InMoDeGAN's TPD: videos [B, T, H, W, 3] (+ labels) -> logits [B * speeds], the
    speeds' logits concatenated (a batch-mean loss over them is the mean of the per-speed losses).
    Each speed has its own D_I-architecture 2D D on the time-to-channel clip."""

    CONFIG = G3ANConfig

    def __init__(self, cfg: G3ANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.pyramid = tpd.TemporalPyramidDiscriminator(
            [int(s) for s in cfg.tpd_speeds.split(",")], name="tpd",
            make_discriminator=lambda name: G3ANImageDiscriminator(cfg, name=name))

    def call(self, videos, labels=None, training=None):
        return tf.concat(self.pyramid(videos, labels, training=training), axis=0)


class G3AN(base.ImageVideoGAN):
    """Trainable G3AN; see the module docstring for the paper and every departure.

    Phases: d_main (D_V and D_I on detached fakes), then g_main (G through the updated D, on the
    same fakes: the official code's order). Both read one generator forward per step, recorded
    on g_main's tape in phase_context."""

    Config = G3ANConfig
    PHASES = {"d_main": "d_optimizer", "g_main": "g_optimizer"}

    def __init__(self, cfg: G3ANConfig, train: TrainConfig, **kwargs):
        self.cfg = cfg.validate()
        super().__init__(train, **kwargs)
        # Construction order fixes model.variables' order (the "discriminators" item) and the
        # initializers' seeds: keep it.
        self.add_generator(lambda: G3ANGenerator(cfg, name="generator"))
        self.image_discriminator = G3ANImageDiscriminator(cfg, name="image_discriminator")
        self.video_discriminator = (
            G3ANTemporalPyramidDiscriminator(cfg, name="video_discriminator")
            if cfg.video_discriminator == "tpd"
            else G3ANVideoDiscriminator(cfg, name="video_discriminator"))

    def inputs(self) -> list:
        declared = [base.Input("z_appearance", "appearance", (self.cfg.z_appearance,),
                               salt=_SALT_Z_A),
                    base.Input("z_motion", "motion", (self.cfg.z_motion,), salt=_SALT_Z_M)]
        if self.cfg.conditional:
            declared.append(base.Input("label", "label", (), "int32",
                                       int_range=(0, self.cfg.num_classes)))
        return declared

    def phase_context(self, batch) -> dict:
        return self.shared_fakes_context(batch)

    def phase_loss(self, phase, batch, context):
        if phase == "d_main":
            return self.discriminator_losses(batch, context)
        return self.generator_losses(batch, context)

    def build_networks(self) -> None:
        latents = self.sample_inputs(2, 0, labels=tf.zeros([2], tf.int32))
        videos = self.generator(latents)
        if self.ema_generator is not None:
            self.ema_generator(latents)
        labels = latents.get("label")
        self.video_discriminator(videos, labels)
        self.image_discriminator(videos[:, 0], labels)

    def _logits(self, videos, seeds, salt, labels, training):
        return (self.video_discriminator(videos, labels, training=training),
                self.image_discriminator(noise.random_frame(videos, seeds, salt), labels,
                                         training=training))

    def discriminator_losses(self, batch, context):
        """D_V and D_I on the context's detached fakes (and R1 when r1_gamma > 0)."""
        fakes, labels = context["detached"], context["latents"].get("label")
        seeds = batch["seed"]
        real_v, real_i = self._logits(batch["video"], seeds, _SALT_REAL_FRAME, labels, True)
        fake_v, fake_i = self._logits(fakes, seeds, _SALT_FAKE_FRAME, labels, True)
        adv_video = losses.bce_discriminator_loss(real_v, fake_v)
        adv_image = losses.bce_discriminator_loss(real_i, fake_i)
        total = adv_video + adv_image
        logs = {}
        if self.cfg.r1_gamma > 0:     # training=False: the SN vectors advance once per step
            r1_video = losses.r1_penalty(
                lambda x: self.video_discriminator(x, labels, training=False), batch["video"])
            r1_image = losses.r1_penalty(
                lambda x: self.image_discriminator(x, labels, training=False),
                noise.random_frame(batch["video"], seeds, _SALT_REAL_FRAME))
            total += self.cfg.r1_gamma / 2.0 * (r1_video + r1_image)
            logs = {"d_r1_video": r1_video, "d_r1_image": r1_image}
        return total, {"d_total": total, "d_adv_video": adv_video, "d_adv_image": adv_image,
                       **logs, "d_real_video": tf.reduce_mean(real_v),
                       "d_fake_video": tf.reduce_mean(fake_v),
                       "d_real_image": tf.reduce_mean(real_i),
                       "d_fake_image": tf.reduce_mean(fake_i)}

    def generator_losses(self, batch, context):
        # D runs with training=False here: its spectral-norm vectors are not advanced by G's step.
        fake_v, fake_i = self._logits(context["fakes"], batch["seed"], _SALT_FAKE_FRAME,
                                      context["latents"].get("label"), False)
        adv_video = losses.nonsaturating_generator_loss(fake_v)
        adv_image = losses.nonsaturating_generator_loss(fake_i)
        total = adv_video + adv_image
        return total, {"g_total": total, "g_adv_video": adv_video, "g_adv_image": adv_image}

    # ---- inspection (tfvidgen.explain) ----------------------------------------------------------
    def discriminator_scores(self, videos, labels=None) -> dict:
        return {"video_discriminator": self.video_discriminator(videos, labels, training=False),
                "image_discriminator": base.frame_scores(self.image_discriminator, videos,
                                                         labels, training=False)}

    def explain_views(self) -> dict:
        if not self.cfg.attention:
            return {}
        return {"attention": ("F-SA attention of the sampling generator: temporal = how much "
                              "the middle frame attends to each frame, per position; spatial = "
                              "where the centre position attends, per frame",
                              self._attention_view)}

    def _attention_view(self, inputs):
        with attention.recorded_attention() as found:
            video = self.sampling_generator(inputs, training=False)
        temporal, spatial = (_recorded(found, axis) for axis in ("temporal", "spatial"))
        b, h, w, t, _ = temporal.shape
        middle_query = tf.transpose(temporal[:, :, :, t // 2, :], [0, 3, 1, 2])   # [B, T, h, w]
        centre = (h // 2) * w + w // 2
        spatial_centre = tf.reshape(spatial[:, :, centre, :], [b, t, h, w])
        spatial_centre /= tf.reduce_max(spatial_centre, axis=[2, 3], keepdims=True)
        size = tf.shape(video)[2:4]
        return video, {name: base.upsample_maps(maps, size) for name, maps in
                       (("temporal", middle_query), ("spatial", spatial_centre))}


def _recorded(found: dict, axis: str):
    """The one recorded attention weights of `axis` (F-SA's sub-layer named after it)."""
    return next(w for path, w in found.items() if path.split("/")[-1] == axis)
