"""Dual-MTGAN: Stochastic and Deterministic Motion Transfer for Image-to-Video Synthesis (Yang,
Wang, Fuh; ICPR 2020). No public code exists, so every choice the 4-page paper leaves open is
inferred [I] and, where it matters, a --model_param.

Modules [P]: content encoder E_C (2D, per frame) -> z_c; motion encoder E_M (3D conv, VAE head)
-> z_M ~ N(mu, sigma^2), KL to N(0, I); motion generator G_T (LSTM) z_M -> per-frame codes z_m^t;
frame generator G_I ([z_c ; z_m^t] -> frame, applied per frame); a conditional pair image D_I on
(conditioning image, frame) and a video D_V (3D conv).
Data flow per example (source video V, target image y, real video V_y with y's appearance):
  V~_x = G_I(E_C(x^t), G_T(z_M)) (reconstruction), V~_yd = G_I(E_C(y), G_T(z_M)) (transfer),
  V~_ys = G_I(E_C(y), G_T(z)), z ~ N(0, I) (stochastic).
Losses [P] (Eq. 8): lambda_1 (L_C + L_rec + L_M) + lambda_KL KL + lambda_I L_GAN^I + lambda_V
L_GAN^V with lambda_1 = 10, lambda_KL = 1e-2, lambda_I = 1e-4, lambda_V = 1. L_GAN^I (Eq. 5):
real pairs (x^1, S(V)) and (y, y); fakes (x^1, S(V~_x)), (y, S(V~_y)); mismatched real pairs
(y, S(V)) and (x^1, S(V_y)), each fake/mismatch term weighted 1/2. L_GAN^V (Eq. 6): V and V_y
real, V~_x and V~_y fake. L_M (Eq. 7): |E_M(V~_x) - z_M| + |E_M(V~_yd) - z_M|.

Inference: generate({image, z_motion}) renders y = image with motion code z_motion (stochastic
mode: z_motion ~ N(0, I), the declared latent); transfer(image, video) takes z_motion = mu of
E_M(video) (deterministic mode [P], mu [I]); a conditional model also needs the driving video's
labels (transfer(image, video, labels); no default: a ValueError says so). animate(model, image,
num_videos, seed) is the library entry point of `sample --image`.

Choices: [P] paper, [I] inferred (all sizes are [I]: DCGAN / MoCoGAN-style 64x64x16 layers,
generalised to any power-of-two resolution >= 8 and any num_frames):
- [I] L_C, L_rec, L_M are mean absolute errors (over elements); KL is summed over z_M's dims and
  averaged over the batch (closed form).
- [I] reparameterised z_M in training, mu at test time; L_M compares E_M's mu on the fakes with
  the source's mu, gradient stopped on the target (so L_M trains the generator rather than
  collapsing the encoder). The fakes are encoded in inference mode (E_M's moving BN
  statistics, as transfer() encodes), so the statistics used at test time come from real
  videos only; the target is the train-mode mu of V (the z_M that drives G_T), so L_M also
  pulls E_M's inference encoding towards its training encoding. (Both sides in inference mode
  was measured slower to carry the image's appearance: own / other transfer error 0.53 vs 0.37
  after 360 tiny steps, mean of 4 seeds.)
- [I] V~_ys enters the y-terms of both GAN losses beside V~_yd, each with the paper's weight
  (`stochastic_in_gan`); it has no cycle term (Eq. 7 names V~_x and V~_yd only).
- [I/P] `reconstruction_content`: "per_frame" reconstructs V~_x from each frame's own z_c (Eq. 3
  as written, default) or "first_frame" from x^1's (stricter disentangling; the paper's §3.2
  calls z_c time-invariant).
- [I] GAN terms as BCE with logits; non-saturating generator side; mismatched real pairs only in
  D's loss. A mismatch term is dropped for an example whose V_y IS V (records without another
  clip of the identity, where the "mismatch" would be a matching pair).
- Ablation switches: `motion_cycle=false` drops L_M from the objective (the paper's Fig. 6
  "w/o L_M"; still logged), `mismatch_pairs=false` drops D_I's mismatched real pairs;
  `lambda_image=0` / `lambda_video=0` are "w/o D_I" / "w/o D_V".
- [P] Eq. 8's weights; [I] they weigh the generator/encoder objective only: D_I and D_V each
  minimise their own unweighted GAN loss (same maximiser as Eq. 8's weighted max over D for
  lambdas > 0; a lambda of 0 drops that D's loss). Scaled by lambda_I = 1e-4, D_I's loss put
  60% of its gradient entries under Adam's epsilon (1e-7; median |g| 7e-8) at paper size and
  initialisation, and its median first Adam step was 2% of the learning rate: D_I barely trained.
- [I] Discriminators use spectral norm, not BN (a DCGAN D would have BN): with BN, the
  generator step would have to either move D's statistics or use untrained running means.
  D_V halves time with space (any num_frames) rather than MoCoGAN's unpadded k=4 temporal
  convs.
- [I] Conditional (conditional=True): one-hot label concatenated to G_T's input and as constant
  planes to D_V's input (V_y with its own label, `target_label` of a records triple). The paper
  is unconditional.
- [I] Encoders and G_I: DCGAN-style, synchronized BN, LeakyReLU 0.2 (encoders) / ReLU (G_I),
  tanh out. G_T: one LSTM (input z_M at every step) + Dense to z_m^t; any number of frames.
- Data: triples from pipeline.make_triples_dataset (source_video, target_image, target_video:
  on records V_y is another clip of V's identity and y one of its frames, V itself only when the
  record has no partner); a plain clip batch is taken as same-clip triples (V_y = V, y = a
  random frame of it), never paired across examples, so N replicas compute what one device
  computes.
Not built: U-Net skips from E_C into G_I (DRNet / Monkey-Net style; not in the paper).
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from tfvidgen import pixels, viz
from tfvidgen.config import TrainConfig
from tfvidgen.layers import conv, noise
from tfvidgen.models import base

__all__ = ["DualMTGANConfig", "ContentEncoder", "MotionEncoder", "DualMTGANGenerator",
           "PairImageDiscriminator", "VideoDiscriminator", "DualMTGAN", "kl_to_standard_normal",
           "image_pairs", "animate"]

(_SALT_EPS, _SALT_Z_MOTION, _SALT_Z_SAMPLED, _SALT_FRAME_V, _SALT_FRAME_X, _SALT_FRAME_VY,
 _SALT_FRAME_YD, _SALT_FRAME_YS, _SALT_TARGET_FRAME) = range(1, 10)


@dataclasses.dataclass(frozen=True)
class DualMTGANConfig:
    """Dual-MTGAN hyper-parameters. Sizes are [I]; loss weights are the paper's."""

    content_dim: int = 128            # z_c [I]
    motion_dim: int = 64              # z_M (mu and log sigma^2 heads) [I]
    frame_motion_dim: int = 64        # z_m^t [I]
    lstm_units: int = 256             # G_T hidden size [I]
    base_channels: int = 64           # E_C / G_I width (DCGAN 64) [I]
    motion_channels: int = 64         # E_M width [I]
    d_channels: int = 64              # D_I / D_V width [I]
    lambda_1: float = 10.0            # L_C + L_rec + L_M [P]
    lambda_kl: float = 1e-2           # [P]
    lambda_image: float = 1e-4        # pair image GAN [P]
    lambda_video: float = 1.0         # video GAN [P]
    reconstruction_content: str = "per_frame"   # Eq. 3 [P]; "first_frame" [I]
    stochastic_in_gan: bool = True    # V~_ys in the GAN y-terms [I]
    content_tanh: bool = False        # tanh on z_c as in DRNet [I]
    motion_cycle: bool = True         # L_M (Eq. 7); False: the paper's "w/o L_M" ablation [P]
    mismatch_pairs: bool = True       # D_I's mismatched real pairs (Eq. 5); False: ablation
    conditional: bool = False
    resolution: int = 64
    num_frames: int = 16
    num_classes: int = 1

    DATA_FIELDS = ("resolution", "num_frames", "num_classes")

    @property
    def levels(self) -> int:
        """Stride-2 stages between the resolution and 4x4."""
        return int(math.log2(self.resolution // 4))

    def validate(self) -> "DualMTGANConfig":
        if self.resolution < 8 or 4 * 2 ** self.levels != self.resolution:
            raise ValueError(f"--resolution={self.resolution}: Dual-MTGAN needs a power of two "
                             f">= 8")
        if self.num_frames < 2:
            raise ValueError(f"--num_frames={self.num_frames}: Dual-MTGAN needs >= 2 (L_C "
                             f"compares consecutive frames)")
        if self.reconstruction_content not in ("per_frame", "first_frame"):
            raise ValueError(f"--model_param reconstruction_content="
                             f"{self.reconstruction_content!r}: expected 'per_frame' or "
                             f"'first_frame'")
        for name in ("content_dim", "motion_dim", "frame_motion_dim", "lstm_units",
                     "base_channels", "motion_channels", "d_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected >= 1")
        for name in ("lambda_1", "lambda_kl", "lambda_image", "lambda_video"):
            if getattr(self, name) < 0:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected >= 0")
        if self.conditional and self.num_classes < 2:
            raise ValueError("--model_param conditional=true needs a labelled dataset with at "
                             "least 2 classes")
        return self


def _lrelu(x):
    return tf.nn.leaky_relu(x, alpha=0.2)       # Keras' LeakyReLU default slope is 0.3


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)     # DCGAN


class _Configured(keras.Model):
    """Networks built from the model's config: Keras (de)serialisation through the dataclass."""

    def get_config(self):
        return {**super().get_config(), "cfg": dataclasses.asdict(self.cfg)}

    @classmethod
    def from_config(cls, config):
        return cls(DualMTGANConfig(**config.pop("cfg")), **config)


@keras.saving.register_keras_serializable(package="tfvidgen")
class ContentEncoder(_Configured):
    """E_C: frames [N, H, W, 3] -> z_c [N, content_dim] (DCGAN encoder)."""

    def __init__(self, cfg: DualMTGANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.convs = [conv.conv_layer("conv2d", cfg.base_channels * min(8, 2 ** i), 4, 2, "same",
                                      use_bias=i == 0, kernel_initializer=_init(),
                                      name=f"conv{i}") for i in range(cfg.levels)]
        self.norms = [None] + [conv.batch_norm(name=f"bn{i}") for i in range(1, cfg.levels)]
        self.head = keras.layers.Conv2D(cfg.content_dim, 4, padding="valid", dtype="float32",
                                        kernel_initializer=_init(), name="head")

    def call(self, frames, training=None):
        h = frames
        for layer, norm in zip(self.convs, self.norms):
            h = layer(h)
            h = _lrelu(norm(h, training=training) if norm is not None else h)
        z = tf.reshape(self.head(h), [-1, self.cfg.content_dim])
        return tf.tanh(z) if self.cfg.content_tanh else z


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
        h = videos
        for layer, norm in zip(self.convs, self.norms):
            h = layer(h)
            h = _lrelu(norm(h, training=training) if norm is not None else h)
        pooled = tf.reduce_mean(h, axis=[1, 2, 3])
        return self.mean(pooled), self.log_variance(pooled)


@keras.saving.register_keras_serializable(package="tfvidgen")
class DualMTGANGenerator(_Configured):
    """G_T + G_I: {content [B, C] or [B, T, C], z_motion [B, Zm](, label [B])} -> video
    [B, T, H, W, 3] in [-1, 1]; T = `num_frames` (default cfg.num_frames; any count: G_T is an
    LSTM)."""

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
        self.to_rgb = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same",
                                                   dtype="float32", kernel_initializer=_init(),
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

    def render(self, content, frame_motion, training=None):
        """G_I per frame: content [B, C] or [B, T, C], z_m^t [B, T, M] -> [B, T, H, W, 3]."""
        batch, frames = tf.shape(frame_motion)[0], tf.shape(frame_motion)[1]
        content = tf.cast(content, frame_motion.dtype)
        if content.shape.rank == 2:
            content = tf.repeat(content[:, None, :], frames, axis=1)
        codes = tf.concat([content, frame_motion], axis=-1)
        h = tf.reshape(codes, [-1, 1, 1, codes.shape[-1]])
        for layer in self.ups:
            h = layer(h, training=training)
        images = tf.tanh(self.to_rgb(h))
        size = self.cfg.resolution
        return tf.reshape(images, [batch, frames, size, size, 3])

    def call(self, inputs, training=None, num_frames=None):
        codes = self.motion_codes(inputs["z_motion"], inputs.get("label"), num_frames)
        return self.render(inputs["content"], codes, training=training)


class _SNDiscriminator(_Configured):
    """Spectrally normalised convs with LeakyReLU 0.2 and a conv head to one logit each."""

    def call(self, inputs, training=None):
        h = inputs
        for layer in self.convs:
            h = _lrelu(layer(h, training=training))
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


def kl_to_standard_normal(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, I)), summed over dims, averaged over the batch."""
    mean, log_variance = tf.cast(mean, tf.float32), tf.cast(log_variance, tf.float32)
    per_example = -0.5 * tf.reduce_sum(1.0 + log_variance - tf.square(mean)
                                       - tf.exp(log_variance), axis=-1)
    return tf.reduce_mean(per_example)


def image_pairs(x1, real_frame, y, real_target_frame, fake_frames: dict, distinct,
                mismatch: bool = True):
    """The pairs of Eq. 5 as (name, condition, frame, label, weight [B]).

    real: (x^1, S(V)) and (y, y) with label 1; fakes (x^1, S(V~_x)) and (y, S(V~_y)) for every
    V~_y in fake_frames (label 0, weight 1/2); mismatched real pairs (y, S(V)) and
    (x^1, S(V_y)) (label 0, weight 1/2, only where `distinct`: V_y is not V itself; none at all
    when `mismatch` is False, the ablation)."""
    ones = tf.ones_like(distinct, tf.float32)
    half_distinct = 0.5 * tf.cast(distinct, tf.float32)
    pairs = [("real_x", x1, real_frame, 1.0, ones), ("real_y", y, y, 1.0, ones)]
    if mismatch:
        pairs += [("mismatch_x", y, real_frame, 0.0, half_distinct),
                  ("mismatch_y", x1, real_target_frame, 0.0, half_distinct)]
    for name, frame in fake_frames.items():
        condition = x1 if name == "x" else y
        pairs.append((f"fake_{name}", condition, frame, 0.0, 0.5 * ones))
    return pairs


def _weighted_bce(logits, label: float, weight):
    """Batch mean of weight * BCE(logits, label) (label 1: softplus(-l), 0: softplus(l))."""
    logits = tf.cast(logits, tf.float32)
    per_example = tf.nn.softplus(-logits) if label else tf.nn.softplus(logits)
    return tf.reduce_mean(weight * per_example)


def _pick_frames(videos, seeds, salt):
    """S_I: one frame per video at a per-example random index [P]: [B, H, W, 3]."""
    index = noise.per_example_randint(seeds, salt, tf.shape(videos)[1])
    return tf.gather(videos, index, batch_dims=1)


def _mean_abs(a, b):
    return tf.reduce_mean(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)))


class DualMTGAN(base.VideoGAN):
    """Trainable Dual-MTGAN; see the module docstring.

    Phases: d_main (D_I and D_V on detached fakes) then g_main (E_C, E_M, G_T, G_I through the
    updated D on the same fakes), one forward per step recorded on g_main's tape (as G3AN).
    Inputs of generate(): image [H, W, 3] in [-1, 1] (role image) and z_motion (role motion,
    N(0, I)); transfer() replaces z_motion by E_M's mean of a video."""

    Config = DualMTGANConfig
    PHASES = {"d_main": "d_optimizer", "g_main": "g_optimizer"}
    #: what train_lib should stream for this model (pipeline.make_triples_dataset)
    TRAINING_DATA = "triples"

    def __init__(self, cfg: DualMTGANConfig, train: TrainConfig, **kwargs):
        self.cfg = cfg.validate()
        super().__init__(train, **kwargs)
        self.content_encoder = ContentEncoder(cfg, name="content_encoder")
        self.motion_encoder = MotionEncoder(cfg, name="motion_encoder")
        self.generator = DualMTGANGenerator(cfg, name="generator")
        self.ema_generator = (DualMTGANGenerator(cfg, name="generator") if train.ema_decay > 0
                              else None)
        self.image_discriminator = PairImageDiscriminator(cfg, name="image_discriminator")
        self.video_discriminator = VideoDiscriminator(cfg, name="video_discriminator")

    # ---- declarations -------------------------------------------------------------------------
    def networks(self) -> dict:
        return {"content_encoder": base.Network("encoder", "encoders"),
                "motion_encoder": base.Network("encoder", "encoders"),
                "generator": base.Network("generator", "generator"),
                "ema_generator": base.Network("ema", "ema_generator", source="generator"),
                "image_discriminator": base.Network("discriminator", "discriminators"),
                "video_discriminator": base.Network("discriminator", "discriminators")}

    def optimizer_specs(self) -> dict:
        # The encoders are trained with G_T and G_I (Eq. 8 minimises over all four).
        return {"g_optimizer": base.OptimizerSpec(
                    ("content_encoder", "motion_encoder", "generator"), "g_lr", "generator",
                    name="g_adam"),
                "d_optimizer": base.OptimizerSpec(
                    ("image_discriminator", "video_discriminator"), "d_lr", "discriminator",
                    name="d_adam")}

    def inputs(self) -> list:
        size = self.cfg.resolution
        declared = [base.Input("image", "image", (size, size, 3), bound=1.0),
                    base.Input("z_motion", "motion", (self.cfg.motion_dim,),
                               salt=_SALT_Z_MOTION)]
        if self.cfg.conditional:
            declared.append(base.Input("label", "label", (), "int32",
                                       int_range=(0, self.cfg.num_classes)))
        return declared

    def build_networks(self) -> None:
        inputs = self.sample_inputs(2, 0, labels=tf.zeros([2], tf.int32))
        videos = self.generate(inputs, use_ema=False)
        if self.ema_generator is not None:
            self.generate(inputs)
        self.motion_encoder(videos)
        self.image_discriminator((videos[:, 0], videos[:, 1]))
        self.video_discriminator(videos, inputs.get("label"))

    # ---- inputs that are not drawn from a seed --------------------------------------------------
    def latents_from_seeds(self, seeds, labels=None) -> dict:
        """The seed-drawn inputs (z_motion, and labels): the image is given, never drawn."""
        out = {"z_motion": noise.per_example_normal(seeds, _SALT_Z_MOTION, self.cfg.motion_dim)}
        if self.cfg.conditional:
            if labels is None:
                raise ValueError("conditional DualMTGAN needs labels")
            out["label"] = tf.cast(labels, tf.int32)
        return out

    def sample_inputs(self, batch_size: int, seed: int, labels=None) -> dict:
        """Inputs of samples seed, ..., seed + batch_size - 1. An image cannot be drawn from a
        seed like a latent, so sample i animates the first frame of synthetic_actions video
        `seed + i` (a pure function of the seed; what contract tests and training samples use
        when no data image is given)."""
        seeds = tf.range(batch_size, dtype=tf.int64) + tf.cast(seed, tf.int64)
        out = self.latents_from_seeds(noise.seeds_from_ints(seeds), labels)
        out["image"] = tf.constant(rendered_images(range(seed, seed + batch_size),
                                                   self.cfg.resolution))
        return out

    # ---- inference -------------------------------------------------------------------------------
    def _inference_generator(self, use_ema: bool):
        return self.sampling_generator if use_ema else self.generator

    def generate(self, inputs: dict, training: bool = False, use_ema: bool = True,
                 num_frames=None):
        """Stochastic mode [P]: image [B, H, W, 3] in [-1, 1] animated with z_motion [B, Zm]."""
        content = self.content_encoder(inputs["image"], training=training)
        return self._inference_generator(use_ema)(
            {"content": content, "z_motion": inputs["z_motion"], "label": inputs.get("label")},
            training=training, num_frames=num_frames)

    def transfer(self, image, video, labels=None, use_ema: bool = True):
        """Deterministic motion transfer [P]: image [B, H, W, 3] with the motion of video
        [B, T, H, W, 3] (both in [-1, 1]); z_M = mu of E_M(video) [I]. T must be num_frames
        (E_M's receptive field); the output has T frames.

        Args:
          labels: conditional models only: int [B], the action of the DRIVING video (what
            training conditions G_T on: the source's label). There is no default.
        Raises:
          ValueError: a conditional model called without labels."""
        if self.cfg.conditional and labels is None:
            raise ValueError("conditional Dual-MTGAN: transfer(image, video, labels) needs the "
                             "driving video's action labels [B]")
        mean, _ = self.motion_encoder(video, training=False)
        inputs = {"image": image, "z_motion": mean}
        if self.cfg.conditional:
            inputs["label"] = tf.cast(labels, tf.int32)
        return self.generate(inputs, use_ema=use_ema)

    # ---- training ------------------------------------------------------------------------------
    def triple(self, batch) -> dict:
        """(source V, target image y, real V_y with y's appearance) of a triples batch, or of a
        clip batch as the data pipeline's same-clip triples: V_y = V, y = one of its frames."""
        if "source_video" in batch:
            source, image, target = (batch["source_video"], batch["target_image"],
                                     batch["target_video"])
        else:       # per example, never across the batch: N replicas = one device
            source = target = batch["video"]
            image = _pick_frames(source, batch["seed"], _SALT_TARGET_FRAME)
        differs = tf.reduce_any(tf.not_equal(source, target), axis=[1, 2, 3, 4])
        return {"source": source, "image": image, "target": target, "distinct": differs}

    def phase_context(self, batch) -> dict:
        cfg, seeds = self.cfg, batch["seed"]
        triple = self.triple(batch)
        labels = tf.cast(batch["label"], tf.int32) if cfg.conditional else None
        # V_y's own action for D_V (records partners may do another action; on synthetic
        # triples V_y is the ground truth of the source's motion: the source's label).
        target_labels = (tf.cast(batch.get("target_label", batch["label"]), tf.int32)
                         if cfg.conditional else None)
        context = {"triple": triple, "labels": labels, "target_labels": target_labels}
        with self.tape_for(context, "g_main"):
            source, image = triple["source"], triple["image"]
            shape = tf.shape(source)
            frames = tf.reshape(source, tf.concat([[-1], shape[2:]], 0))
            content_x = tf.reshape(self.content_encoder(frames, training=True),
                                   [shape[0], shape[1], cfg.content_dim])
            content_y = self.content_encoder(image, training=True)
            mean, log_variance = self.motion_encoder(source, training=True)
            eps = noise.per_example_normal(seeds, _SALT_EPS, cfg.motion_dim)
            z_motion = mean + tf.exp(0.5 * log_variance) * eps
            z_sampled = noise.per_example_normal(seeds, _SALT_Z_SAMPLED, cfg.motion_dim)
            if cfg.reconstruction_content == "first_frame":
                content_rec = tf.repeat(content_x[:, :1], shape[1], axis=1)
            else:
                content_rec = content_x
            # One G_I pass over the three videos (x, y_d, y_s): their BN statistics are shared.
            both_labels = None if labels is None else tf.concat([labels, labels], 0)
            codes = self.generator.motion_codes(tf.concat([z_motion, z_sampled], 0),
                                                both_labels)
            codes_d, codes_s = tf.split(codes, 2)
            content = tf.concat([content_rec, tf.repeat(content_y[:, None], shape[1], axis=1),
                                 tf.repeat(content_y[:, None], shape[1], axis=1)], 0)
            videos = self.generator.render(content, tf.concat([codes_d, codes_d, codes_s], 0),
                                           training=True)
            fake_x, fake_yd, fake_ys = tf.split(videos, 3)
            # L_M encodes the fakes in inference mode: E_M's moving statistics (what
            # transfer() encodes with) then come from real videos only.
            cycle_x, cycle_yd = tf.split(self.motion_encoder(
                tf.concat([fake_x, fake_yd], 0), training=False)[0], 2)
        context.update(content_x=content_x, mean=mean, log_variance=log_variance,
                       fakes={"x": fake_x, "yd": fake_yd, "ys": fake_ys},
                       cycle={"x": cycle_x, "yd": cycle_yd})
        context["detached"] = {k: tf.stop_gradient(v) for k, v in context["fakes"].items()}
        return context

    def _gan_fakes(self, fakes: dict) -> dict:
        return fakes if self.cfg.stochastic_in_gan else {k: fakes[k] for k in ("x", "yd")}

    def _pairs(self, batch, context, fakes):
        seeds, triple = batch["seed"], context["triple"]
        salts = {"x": _SALT_FRAME_X, "yd": _SALT_FRAME_YD, "ys": _SALT_FRAME_YS}
        fake_frames = {k: _pick_frames(v, seeds, salts[k])
                       for k, v in self._gan_fakes(fakes).items()}
        return image_pairs(triple["source"][:, 0], _pick_frames(triple["source"], seeds,
                                                                _SALT_FRAME_V),
                           triple["image"], _pick_frames(triple["target"], seeds, _SALT_FRAME_VY),
                           fake_frames, triple["distinct"], self.cfg.mismatch_pairs)

    def phase_loss(self, phase, batch, context):
        if phase == "d_main":
            return self.discriminator_losses(batch, context)
        return self.generator_losses(batch, context)

    def discriminator_losses(self, batch, context):
        labels, triple = context["labels"], context["triple"]
        fakes = self._gan_fakes(context["detached"])
        pairs = self._pairs(batch, context, fakes)
        conditions = tf.concat([p[1] for p in pairs], 0)
        frames = tf.concat([p[2] for p in pairs], 0)
        logits = tf.split(self.image_discriminator((conditions, frames), training=True),
                          len(pairs))
        adv_image = tf.add_n([_weighted_bce(lg, p[3], p[4]) for lg, p in zip(logits, pairs)])
        reals = [triple["source"], triple["target"]]
        videos = tf.concat(reals + list(fakes.values()), 0)
        video_labels = None if labels is None else tf.concat(
            [labels, context["target_labels"]] + [labels] * len(fakes), 0)
        v_logits = tf.split(self.video_discriminator(videos, video_labels, training=True),
                            len(reals) + len(fakes))
        adv_video = (tf.add_n([_weighted_bce(lg, 1.0, 1.0) for lg in v_logits[:len(reals)]])
                     + tf.add_n([_weighted_bce(lg, 0.0, 1.0) for lg in v_logits[len(reals):]]))
        # Eq. 8's lambdas weigh the G/encoder objective only. max_D of lambda_I L^I + lambda_V
        # L^V is max over D_I of L^I and over D_V of L^V (disjoint weights, lambdas > 0), so each
        # D minimises its own unweighted loss: lambda_I = 1e-4 on D_I's loss put most of its
        # gradients under Adam's epsilon (1e-7) and D_I barely trained. lambda = 0 (ablation)
        # drops that D's loss too.
        total = (float(self.cfg.lambda_image > 0) * adv_image
                 + float(self.cfg.lambda_video > 0) * adv_video)
        return total, {"d_total": total, "d_adv_image": adv_image, "d_adv_video": adv_video,
                       "d_real_video": tf.reduce_mean(v_logits[0]),
                       "d_fake_video": tf.reduce_mean(v_logits[len(reals)])}

    def generator_losses(self, batch, context):
        cfg, labels, triple = self.cfg, context["labels"], context["triple"]
        fakes = context["fakes"]
        content_x = context["content_x"]
        content = _mean_abs(content_x[:, 1:], content_x[:, :-1])                       # L_C
        reconstruction = _mean_abs(fakes["x"], triple["source"])                       # L_rec
        target = tf.stop_gradient(context["mean"])
        cycle = _mean_abs(context["cycle"]["x"], target) + _mean_abs(context["cycle"]["yd"],
                                                                     target)           # L_M
        kl = kl_to_standard_normal(context["mean"], context["log_variance"])
        # D runs with training=False: G's step leaves its spectral-norm vectors alone.
        gan_fakes = self._gan_fakes(fakes)
        fake_pairs = [p for p in self._pairs(batch, context, gan_fakes)
                      if p[0].startswith("fake_")]
        logits = tf.split(self.image_discriminator(
            (tf.concat([p[1] for p in fake_pairs], 0), tf.concat([p[2] for p in fake_pairs], 0)),
            training=False), len(fake_pairs))
        adv_image = tf.add_n([_weighted_bce(lg, 1.0, p[4]) for lg, p in zip(logits, fake_pairs)])
        video_labels = None if labels is None else tf.tile(labels, [len(gan_fakes)])
        v_logits = tf.split(self.video_discriminator(tf.concat(list(gan_fakes.values()), 0),
                                                     video_labels, training=False),
                            len(gan_fakes))
        adv_video = tf.add_n([_weighted_bce(lg, 1.0, 1.0) for lg in v_logits])
        # motion_cycle=False ("w/o L_M"): L_M is still logged, not optimised.
        total = (cfg.lambda_1 * (content + reconstruction + float(cfg.motion_cycle) * cycle)
                 + cfg.lambda_kl * kl
                 + cfg.lambda_image * adv_image + cfg.lambda_video * adv_video)
        return total, {"g_total": total, "g_content": content, "g_reconstruction": reconstruction,
                       "g_cycle": cycle, "g_kl": kl, "g_adv_image": adv_image,
                       "g_adv_video": adv_video}

    # ---- inspection (main's tfvidgen.explain) ----------------------------------------------------
    def discriminator_scores(self, videos, labels=None) -> dict:
        """{view: realness logits [B]} of videos in [-1, 1], differentiable w.r.t. them: D_V on
        the clip; D_I on (first frame, frame t) pairs, the video conditioned on its own first
        frame, averaged over frames."""
        b, t = tf.shape(videos)[0], tf.shape(videos)[1]
        frames = tf.reshape(videos, tf.concat([[b * t], tf.shape(videos)[2:]], 0))
        firsts = tf.repeat(videos[:, 0], t, axis=0)
        per_frame = self.image_discriminator((firsts, frames), training=False)
        return {"video_discriminator": self.video_discriminator(videos, labels, training=False),
                "image_discriminator": tf.reduce_mean(tf.reshape(per_frame, [b, t]), axis=1)}

    # ---- serving ----------------------------------------------------------------------------
    #: largest num_frames the animate endpoint accepts (guards the server)
    max_serving_frames = 256

    def endpoint_inputs(self) -> dict:
        """{endpoint: [Input] in signature order} (main's contract v2 reads this; the
        signatures below are built from it). num_frames is a scalar, not per example."""
        size, frames = self.cfg.resolution, self.cfg.num_frames
        declared = sorted(self.inputs(), key=lambda i: i.name)
        label = [i for i in declared if i.role == "label"]
        image = [i for i in declared if i.role == "image"]
        seed = base.Input("seed", "control", (), "int64")     # any int64 is a seed
        image8 = base.Input("image", "image", (size, size, 3), "uint8")
        video8 = base.Input("video", "video", (frames, size, size, 3), "uint8")
        num_frames = base.Input("num_frames", "num_frames", (), "int32",
                                int_range=(1, self.max_serving_frames + 1), per_request=True)
        return {"serving_default": declared, "sample": [seed, *image, *label],
                "latents": [seed, *label], "animate": [image8, seed, *label, num_frames],
                "transfer": [image8, video8, *label]}

    def serving_endpoints(self) -> dict:
        """serving_default: image float [-1, 1] + z_motion (+ label) -> video (stochastic mode);
        sample: seed + image float (+ label); latents: seed (+ label) -> z_motion (+ label);
        animate: image uint8 [B, H, W, 3] + seed int64 [B] (+ label) + num_frames int32 scalar;
        transfer: image uint8 [B, H, W, 3] + video uint8 [B, T, H, W, 3] (+ label).
        Every output is {"video": uint8}. The base's sample/latents cannot be used: they draw
        every non-label input from the seed, and this model's image is given."""
        inputs_of = self.endpoint_inputs()

        def from_inputs(*args):
            return base.video_output(self.generate(
                self.checked_inputs(inputs_of["serving_default"], args)))

        def latents_of(inputs):
            return self.latents_from_seeds(noise.seeds_from_ints(inputs["seed"]),
                                           inputs.get("label"))

        def latents(*args):
            return latents_of(self.checked_inputs(inputs_of["latents"], args))

        def sample(*args):
            inputs = self.checked_inputs(inputs_of["sample"], args)
            return base.video_output(self.generate({**latents_of(inputs),
                                                    "image": inputs["image"]}))

        def animate(*args):
            inputs = self.checked_inputs(inputs_of["animate"], args)
            return base.video_output(self.generate(
                {**latents_of(inputs), "image": pixels.from_uint8(inputs["image"])},
                num_frames=inputs["num_frames"]))

        def transfer(*args):
            inputs = self.checked_inputs(inputs_of["transfer"], args)
            return base.video_output(self.transfer(pixels.from_uint8(inputs["image"]),
                                                   pixels.from_uint8(inputs["video"]),
                                                   inputs.get("label")))

        functions = {"serving_default": from_inputs, "sample": sample, "latents": latents,
                     "animate": animate, "transfer": transfer}
        return {name: (fn, base.signature_of(inputs_of[name]))
                for name, fn in functions.items()}


def rendered_images(seeds, resolution: int) -> np.ndarray:
    """First frames of synthetic_actions videos `seeds` (stream 0) in [-1, 1]: [N, R, R, 3]."""
    from tfvidgen.data import synthetic
    frames = [synthetic.render_actions(synthetic.sample_factors("synthetic_actions", 0, int(s)),
                                       [0], resolution)[0] for s in seeds]
    return viz.from_uint8(np.stack(frames))


def animate(model: DualMTGAN, image, num_videos: int, seed: int, num_frames=None,
            labels=None) -> np.ndarray:
    """`sample --image`: num_videos videos of one image [H, W, 3] in [-1, 1] (already resized),
    video i with z_motion drawn from seed + i, as serving's `animate` does. -> [N, T, H, W, 3]."""
    seeds = tf.range(num_videos, dtype=tf.int64) + tf.cast(seed, tf.int64)
    inputs = model.latents_from_seeds(noise.seeds_from_ints(seeds), labels)
    inputs["image"] = tf.repeat(tf.convert_to_tensor(image, tf.float32)[None], num_videos, 0)
    return model.generate(inputs, num_frames=num_frames).numpy()
