"""InMoDeGAN: Interpretable Motion Decomposition GAN (Wang, Bilinski, Bremond, Dantcheva;
arXiv:2101.03049, 2021). No public code exists: the paper is the authority, the rest is
StyleGAN2 practice [S2] or our inference [I], each choice a `--model_param`.

Generator [P]: w_0 = G_A(z_a) (8-layer mapping MLP); a GRU with h_0 = z_a runs over the
per-transition motion noises z_m (T - 1 of them), the motion net G_M (8-layer MLP, per step)
turns its outputs into magnitudes A_t in R^N; the motion bank is a trainable matrix M whose right
singular vectors (tf.linalg.svd every forward pass, gradients through it) are the orthonormal
directions D = V^T (rows d_i, descending singular value; signs kept continuous through training
by a stored reference [I], see MotionBank); w_t = w_0 + (sum_{k<=t} A_k) D; every
frame is rendered independently by a StyleGAN2 synthesis network G_S from its w_t.
Discriminators [P]: an image D on one random frame per video plus the Temporal Pyramid
Discriminator (tfvidgen/layers/tpd.py): one 2D D per temporal speed on the time-to-channel
stacked clip; min_G (lambda * sum_i max L_DVi + max L_DI), lambda = 0.5. Non-saturating logistic
loss, lazy R1 [P: "as in StyleGAN2"], Adam(0.002, 0, 0.99) [P] (set through --g_lr/--d_lr/--beta1/
--beta2 in the configs), EMA of G [S2] (--ema_decay).

Choices (P = paper, S2 = StyleGAN2 practice, I = inferred), each a field of InMoDeGANConfig:
- z_appearance 512, z_motion 256, T - 1 motion noises, N = w_dim = 512 directions [P]. The GRU's
  hidden size is z_appearance (h_0 = z_a) [P]; its output feeds G_M [P].
- G_A and G_M: StyleGAN mapping layers (equalised lr, lr multiplier mapping_lr_multiplier = 0.01,
  leaky-ReLU 0.2 * sqrt 2) [S2]; G_A pixel-normalises z_a [S2]; G_M's last layer is linear
  so magnitudes are signed [I].
- Motion scale [I] (the paper gives none): G_M's input, the GRU output (not normalised), sets
  the scale of A. Measured at the paper configuration at initialisation (pinned by a test):
  |w_0| = 22.7 (unit rms per entry), |A_t| = 14 at t = 1 falling to 6, but 80% of A_t is one
  vector shared by every video and step (8 zero-bias leaky-ReLU layers make their outputs
  collinear), so the offsets add up to one common drift: |w_15 - w_0| = 89 = 3.9 |w_0|. Kept:
  G_M is the same StyleGAN mapping MLP as G_A, and training removes the drift through the GRU
  (lr x1) while the 0.01 multiplier holds G_M's own weights nearly still. In 400 steps of
  configs/inmodegan_quickstart.cfg (T = 8) |w_7 - w_0| went from 1.34 |w_0| to 0.33 |w_0|
  and |A_t| (t >= 2) fell 4-5x, while G_M's weights moved 0.1% (the trained GRU gives the same
  |A_t| with G_M reset to its initial weights).
- Synthesis: StyleGAN2 modulated/demodulated convs (non-fused form), noise injection, skip ToRGB,
  learned 4x4 constant; widths min(g_channel_base / res, g_channel_max) [S2]; every layer gets the
  frame's w_t [P: "same w_t"][I]. Noise maps: one draw per video shared by all its frames
  (noise=video, default, avoids texture flicker) or none (noise=none) [I]. The noise is a declared
  input (role "noise") so a video is a pure function of its seed.
- Generator output is unbounded during training (StyleGAN2, no tanh); generate() and serving clip
  it to [-1, 1] [S2].
- Discriminators: StyleGAN2 residual D for the image D and for each TPD speed, own weights [S2][I];
  TtoC keeps frames 0, v, 2v, ... (fixed count per speed), frame-major channels [I]; speeds by
  `speeds` ("1,3,5,7" VoxCeleb, "1,3,5" BAIR [P]); tpd_weight = lambda = 0.5 [P] weights the
  TPD terms of both the D and the G loss, and the TPD's R1 [I].
- Lazy R1 [S2]: phase d_reg on steps k-1, 2k-1, ... (k = r1_interval = 16), loss
  (r1_gamma / 2) * E||grad D(real)||^2 * k for every D (gamma = 10 [S2][I]). d_main and d_reg
  share the D optimizer, whose lr and betas are scaled by c = k / (k + 1) and ** c [S2].
- Phases, in order: d_main, d_reg (every k), g_main. One generator forward per step: the G step
  reuses the D step's fakes through the updated D (as G3AN here) [I].
- conditional (not in the paper): label embedding concatenated to z_a before G_A, projection
  term <embed(y), features> on every D [S2-ADA style].
- Not built: path-length regularisation and style mixing (not in the paper [P]); random TtoC
  start offsets; per-frame noise.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import tensorflow as tf

from tfvidgen import losses
from tfvidgen.config import TrainConfig
from tfvidgen.layers import configured, noise, stylegan, tpd
from tfvidgen.models import base, serving

__all__ = ["InMoDeGANConfig", "InMoDeGANGenerator", "MotionGRU", "MotionBank", "InMoDeGAN"]

_SALT_Z_A, _SALT_Z_M, _SALT_NOISE, _SALT_REAL_FRAME, _SALT_FAKE_FRAME = 1, 2, 3, 4, 5


@dataclasses.dataclass(frozen=True)
class InMoDeGANConfig:
    """InMoDeGAN hyper-parameters (paper defaults). resolution/num_frames/num_classes: data."""

    z_appearance: int = 512            # [P]; also the GRU's hidden size (h_0 = z_a)
    z_motion: int = 256                # [P] per transition
    w_dim: int = 512                   # [P] latent w and direction size
    num_directions: int = 512          # [P] N directions (<= w_dim: orthonormal rows)
    mapping_layers: int = 8            # [P] G_A depth
    motion_layers: int = 8             # [P] G_M depth
    mapping_lr_multiplier: float = 0.01   # [S2] on G_A and G_M [I]
    g_channel_base: int = 32768        # [S2] synthesis width min(base / res, max)
    g_channel_max: int = 512
    d_channel_base: int = 32768        # [S2] discriminator width, same rule
    d_channel_max: int = 512
    speeds: str = "1,3,5,7"            # [P] TPD frame steps (VoxCeleb 1,3,5,7; BAIR 1,3,5)
    tpd_weight: float = 0.5            # [P] lambda
    r1_gamma: float = 10.0             # [S2][I] gamma of R1
    r1_interval: int = 16              # [S2] lazy R1 every k steps (0: no R1)
    noise: str = "video"               # [I] "video": one noise draw per video; "none"
    mbstd_group: int = 4               # [S2] minibatch-stddev group size
    conditional: bool = False          # not in the paper (see the module docstring)
    resolution: int = 64
    num_frames: int = 16
    num_classes: int = 1

    DATA_FIELDS = ("resolution", "num_frames", "num_classes")

    @property
    def speed_list(self) -> tuple:
        return tuple(int(s) for s in self.speeds.split(",") if s.strip())

    @property
    def noise_size(self) -> int:
        return stylegan.noise_layout(self.resolution)[1] if self.noise == "video" else 0

    def validate(self) -> "InMoDeGANConfig":
        if self.resolution < 4 or 2 ** int(math.log2(self.resolution)) != self.resolution:
            raise ValueError(f"--resolution={self.resolution}: InMoDeGAN needs a power of two "
                             f">= 4")
        if self.num_frames < 2:
            raise ValueError(f"--num_frames={self.num_frames}: expected >= 2")
        try:
            speeds = self.speed_list
        except ValueError:
            raise ValueError(f"--model_param speeds={self.speeds!r}: expected comma-separated "
                             f"integers") from None
        if not speeds or any(not 1 <= s < self.num_frames for s in speeds):
            raise ValueError(f"--model_param speeds={self.speeds!r}: each speed must be in "
                             f"[1, {self.num_frames - 1}] (at least 2 frames per speed)")
        if len(set(speeds)) != len(speeds):
            raise ValueError(f"--model_param speeds={self.speeds!r}: repeated speed")
        if self.noise not in ("video", "none"):
            raise ValueError(f"--model_param noise={self.noise!r}: expected 'video' or 'none'")
        if not 1 <= self.num_directions <= self.w_dim:
            raise ValueError(f"--model_param num_directions={self.num_directions}: expected in "
                             f"[1, w_dim={self.w_dim}] (orthonormal directions in R^w_dim)")
        for name in ("z_appearance", "z_motion", "w_dim", "mapping_layers", "motion_layers",
                     "g_channel_base", "g_channel_max", "d_channel_base", "d_channel_max",
                     "mbstd_group"):
            if getattr(self, name) < 1:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected >= 1")
        if self.r1_interval < 0 or self.r1_gamma < 0 or self.tpd_weight < 0:
            raise ValueError("--model_param r1_interval, r1_gamma and tpd_weight must be >= 0")
        if self.mapping_lr_multiplier <= 0:
            raise ValueError("--model_param mapping_lr_multiplier must be > 0")
        if self.conditional and self.num_classes < 2:
            raise ValueError("--model_param conditional=true needs a labelled dataset with at "
                             "least 2 classes")
        return self


class MotionGRU(keras.layers.Layer):
    """GRU over the motion noises: (z_m [B, L, Zm], h_0 [B, H]) -> outputs [B, L, H] for any L
    (a tf.scan: core ops, runs any length in a SavedModel). Keras' gate convention:
    h_t = u * h_{t-1} + (1 - u) * tanh(x W_h + (r * h_{t-1}) U_h + b_h)."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, z_shape, h_shape):
        self.kernel = self.add_weight(name="kernel", shape=(int(z_shape[-1]), 3 * self.units),
                                      initializer="glorot_uniform", dtype="float32")
        self.recurrent = self.add_weight(name="recurrent_kernel", shape=(self.units,
                                                                         3 * self.units),
                                         initializer="orthogonal", dtype="float32")
        self.bias = self.add_weight(name="bias", shape=(3 * self.units,), initializer="zeros",
                                    dtype="float32")

    def call(self, z, h):
        z = tf.cast(z, tf.float32)
        inputs = tf.einsum("blz,zk->lbk", z, self.kernel) + self.bias       # time-major
        h_units = self.units

        def step(h_prev, x):
            x_u, x_r, x_h = tf.split(x, 3, axis=-1)
            r_u, r_r, r_h = (self.recurrent[:, :h_units], self.recurrent[:, h_units:2 * h_units],
                             self.recurrent[:, 2 * h_units:])
            u = tf.sigmoid(x_u + tf.matmul(h_prev, r_u))
            r = tf.sigmoid(x_r + tf.matmul(h_prev, r_r))
            candidate = tf.tanh(x_h + tf.matmul(r * h_prev, r_h))
            return u * h_prev + (1.0 - u) * candidate

        outputs = tf.scan(step, inputs, initializer=tf.cast(h, tf.float32))
        return tf.transpose(outputs, [1, 0, 2])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class MotionBank(keras.layers.Layer):
    """The trainable matrix M [N, w_dim] (N(0, 1) init) and its orthonormal directions
    D = V^T [N, w_dim] (rows = right singular vectors, descending singular value) [P].

    Signs [I]: the SVD fixes each d_i only up to sign and tf.linalg.svd picks one per call: an
    Adam-sized change of M (+-0.002 per entry, 512 x 512, N(0, 1)) reverses 14-19 of the 512 raw
    rows (<d_old, d_new> < -0.99; 403 in one of 6 draws), which reverses their share of w_t
    mid-training and changes what "direction i" means between checkpoints (steer). No rule on D
    alone prevents it, as such a step turns a direction by 0.033 (median): in the same 6 draws
    "largest |entry| positive" reversed 13-21, "positive sum" 3-7. So the bank keeps
    `reference` (non-trainable, checkpointed, copied to the EMA generator), the directions of
    the last training forward, and each d_i takes the sign with <d_i, reference_i> >= 0 (a
    stop-gradient factor: gradients reach M as through the raw SVD). Before the first training
    forward (reference 0) the largest-|entry| rule applies. A reversal now needs a direction to
    turn by more than 90 degrees in one step."""

    def __init__(self, num_directions: int, w_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.num_directions, self.w_dim = num_directions, w_dim

    def build(self, input_shape=None):
        self.matrix = self.add_weight(name="matrix", shape=(self.num_directions, self.w_dim),
                                      initializer=keras.initializers.RandomNormal(stddev=1.0),
                                      dtype="float32")
        # Replicas compute identical directions: the first replica's value is every replica's.
        self.reference = self.add_weight(name="reference", shape=(self.num_directions,
                                                                  self.w_dim),
                                         initializer="zeros", trainable=False, dtype="float32",
                                         aggregation="only_first_replica")

    def directions(self, training=False):
        """D [N, w_dim] with the signs above; training=True also stores it as the reference."""
        if not self.built:
            self.build()
        _, _, v = tf.linalg.svd(self.matrix, full_matrices=False)           # v: [w_dim, N]
        raw = tf.transpose(v)
        reference = tf.convert_to_tensor(self.reference)
        agreement = tf.reduce_sum(raw * reference, axis=1)
        pivot = tf.gather(raw, tf.argmax(tf.abs(raw), axis=1), batch_dims=1)
        has_reference = tf.reduce_sum(tf.square(reference), axis=1) > 0.5
        key = tf.where(has_reference, agreement, pivot)
        signs = tf.stop_gradient(tf.where(key < 0.0, -1.0, 1.0))
        directions = raw * signs[:, None]
        if training:
            self.reference.assign(tf.stop_gradient(directions))
        return directions

    def call(self, magnitudes, training=None):
        """Cumulative magnitudes [B, L, N] -> latent offsets [B, L, w_dim]."""
        return tf.einsum("bln,nw->blw", magnitudes, self.directions(bool(training)))

    def get_config(self):
        return {**super().get_config(), "num_directions": self.num_directions,
                "w_dim": self.w_dim}


@keras.saving.register_keras_serializable(package="tfvidgen")
class InMoDeGANGenerator(configured.ConfiguredModel):
    """latents {z_appearance [B, Za], z_motion [B, L, Zm](, z_noise [B, S])(, label [B])
    (, direction_scale [B, N])} -> video [B, L + 1, R, R, 3], unbounded (clip for display).
    direction_scale (not a declared input; control and the `steer` endpoint) multiplies every
    magnitude alpha_{t, i} by scale_i: 1 keeps, 0 deactivates, > 1 amplifies direction i."""

    CONFIG = InMoDeGANConfig

    def __init__(self, cfg: InMoDeGANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg.validate()
        lr_mul = cfg.mapping_lr_multiplier
        self.label_embedding = (stylegan.EqualizedDense(cfg.z_appearance, name="label_embedding")
                                if cfg.conditional else None)
        self.appearance_net = stylegan.MappingNetwork(cfg.mapping_layers, cfg.w_dim, lr_mul,
                                                      name="appearance_net")
        # float32 under mixed precision: the recurrence and the SVD need the precision.
        self.gru = MotionGRU(cfg.z_appearance, name="gru", dtype="float32")
        self.motion_net = stylegan.MappingNetwork(
            cfg.motion_layers, cfg.w_dim, lr_mul, normalize_input=False, linear_output=True,
            output_units=cfg.num_directions, name="motion_net")
        self.motion_bank = MotionBank(cfg.num_directions, cfg.w_dim, name="motion_bank",
                                      dtype="float32")
        self.synthesis = stylegan.SynthesisNetwork(cfg.resolution, cfg.g_channel_base,
                                                   cfg.g_channel_max, name="synthesis")

    # ---- the pieces, for control and analysis ----------------------------------------------
    def appearance(self, latents):
        """w_0 [B, w_dim] = G_A(z_a) (z_a and the normalised label embedding when conditional)."""
        z = tf.cast(latents["z_appearance"], tf.float32)
        if self.label_embedding is not None:
            onehot = tf.one_hot(latents["label"], self.cfg.num_classes)
            y = self.label_embedding(onehot)
            z = tf.concat([_pixel_norm(z), _pixel_norm(tf.cast(y, tf.float32))], axis=-1)
        return tf.cast(self.appearance_net(z), tf.float32)

    def magnitudes(self, latents):
        """A [B, L, N]: G_M(GRU(z_m; h_0 = z_a)), alpha_{t, i} for transitions t = 1..L."""
        z_m = tf.cast(latents["z_motion"], tf.float32)
        hidden = self.gru(z_m, tf.cast(latents["z_appearance"], tf.float32))     # [B, L, H]
        shape = tf.shape(hidden)
        flat = self.motion_net(tf.reshape(hidden, [-1, self.cfg.z_appearance]))
        return tf.reshape(tf.cast(flat, tf.float32), [shape[0], shape[1], self.cfg.num_directions])

    def directions(self):
        """D [N, w_dim], orthonormal rows."""
        return self.motion_bank.directions()

    def latent_path(self, w0, magnitudes, training=None):
        """W [B, L + 1, w_dim]: w_0, then w_t = w_0 + (sum_{k<=t} A_k) D (training: also stores
        D as the motion bank's sign reference)."""
        offsets = self.motion_bank(tf.cumsum(tf.cast(magnitudes, tf.float32), axis=1),
                                   training=training)
        w0 = tf.cast(w0, tf.float32)
        return tf.concat([w0[:, None], w0[:, None] + offsets], axis=1)

    def render(self, path, latents):
        """Frames of W [B, T, w_dim] -> video [B, T, R, R, 3] (each frame independently)."""
        shape = tf.shape(path)
        frames = tf.reshape(path, [-1, self.cfg.w_dim])
        noise_maps = None
        if self.cfg.noise == "video":                       # one draw per video, every frame
            noise_maps = tf.repeat(tf.cast(latents["z_noise"], tf.float32), shape[1], axis=0)
        images = self.synthesis(tf.cast(frames, self.compute_dtype), noise_maps)
        r = self.cfg.resolution
        return tf.reshape(images, [shape[0], shape[1], r, r, 3])

    def call(self, latents, training=None):
        w0 = self.appearance(latents)
        magnitudes = self.magnitudes(latents)
        if latents.get("direction_scale") is not None:
            magnitudes *= tf.cast(latents["direction_scale"], tf.float32)[:, None, :]
        return self.render(self.latent_path(w0, magnitudes, training), latents)


def _pixel_norm(x):
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + 1e-8)


@keras.saving.register_keras_serializable(package="tfvidgen")
class InMoDeGANDiscriminators(configured.ConfiguredModel):
    """The image D (one frame [B, R, R, 3]) and the TPD (videos [B, T, R, R, 3]); when
    conditional, each has a label projection term."""

    CONFIG = InMoDeGANConfig

    def __init__(self, cfg: InMoDeGANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        args = (cfg.resolution, cfg.d_channel_base, cfg.d_channel_max, cfg.mbstd_group,
                cfg.num_classes if cfg.conditional else 0)
        self.image = stylegan.ResidualDiscriminator(*args, name="image")
        self.tpd = tpd.TemporalPyramidDiscriminator(cfg.speed_list, *args, name="tpd")

    def call(self, frames, videos, labels=None):
        """-> (image logits [B], [TPD logits [B] per speed])."""
        return self.image(frames, labels), self.tpd(videos, labels)


class InMoDeGAN(base.VideoGAN):
    """Trainable InMoDeGAN; see the module docstring for the paper and every choice."""

    Config = InMoDeGANConfig
    CAPABILITIES = base.Capabilities(variable_length=True, steer=True)
    PHASES = {"d_main": "d_optimizer", "d_reg": "d_optimizer", "g_main": "g_optimizer"}
    #: a video needs one motion noise: two frames at least
    min_serving_frames = 2
    #: largest |direction scale| the steer endpoint accepts
    max_direction_scale = 100.0

    def __init__(self, cfg: InMoDeGANConfig, train: TrainConfig, **kwargs):
        self.cfg = cfg.validate()
        super().__init__(train, **kwargs)
        self.add_generator(lambda: InMoDeGANGenerator(cfg, name="generator"))
        self.discriminators = InMoDeGANDiscriminators(cfg, name="discriminators")

    # ---- declarations -----------------------------------------------------------------------
    def networks(self) -> dict:
        return {"generator": base.Network("generator", "generator"),
                "ema_generator": base.Network("ema", "ema_generator", source="generator"),
                "discriminators": base.Network("discriminator", "discriminators")}

    @property
    def lazy_ratio(self) -> float:
        """c = k / (k + 1) of lazy regularisation (1 without R1)."""
        k = self.cfg.r1_interval
        return k / (k + 1) if k > 0 else 1.0

    def optimizer_specs(self) -> dict:
        c = self.lazy_ratio
        return {"g_optimizer": base.OptimizerSpec(("generator",), "g_lr", "generator",
                                                  name="g_adam"),
                "d_optimizer": base.OptimizerSpec(("discriminators",), "d_lr", "discriminator",
                                                  name="d_adam", lr_scale=c, beta_power=c)}

    def inputs(self) -> list:
        cfg = self.cfg
        declared = [base.Input("z_appearance", "appearance", (cfg.z_appearance,), salt=_SALT_Z_A),
                    base.Input("z_motion", "motion", (cfg.num_frames - 1, cfg.z_motion),
                               salt=_SALT_Z_M)]
        if cfg.noise == "video":
            declared.append(base.Input("z_noise", "noise", (cfg.noise_size,), salt=_SALT_NOISE))
        if cfg.conditional:
            declared.append(base.Input("label", "label", (), "int32",
                                       int_range=(0, cfg.num_classes)))
        return declared

    def phases(self, step: int) -> tuple:
        k = self.cfg.r1_interval
        # The last step of every k (k-1, 2k-1, ...): with k > 1 the first step is a plain one.
        reg = ("d_reg",) if k > 0 and self.cfg.r1_gamma > 0 and step % k == k - 1 else ()
        return ("d_main", *reg, "g_main")

    def build_networks(self) -> None:
        latents = self.sample_inputs(2, 0, labels=tf.zeros([2], tf.int32))
        videos = self.generator(latents)
        if self.ema_generator is not None:
            self.ema_generator(latents)
        self.discriminators(videos[:, 0], videos, latents.get("label"))

    # ---- sampling ---------------------------------------------------------------------------
    def draw_latent(self, spec, seeds, num_frames=None):
        """z_motion holds num_frames - 1 motion noises (any length, a tensor is fine): the
        first T - 1 of a longer draw are those of the trained length (stateless draws are
        prefixes of longer ones), so a longer video continues the trained-length one."""
        if spec.name != "z_motion" or num_frames is None:
            return super().draw_latent(spec, seeds)
        steps = num_frames - 1 if isinstance(num_frames, int) else tf.cast(num_frames,
                                                                           tf.int32) - 1
        z_m = noise.per_example_normal(seeds, _SALT_Z_M, steps * self.cfg.z_motion)
        return tf.reshape(z_m, [tf.shape(seeds)[0], -1, self.cfg.z_motion])

    def run_generator(self, generator, inputs, training, num_frames=None):
        """The video clipped to [-1, 1] (the generator is unbounded [S2]); num_frames: the
        first num_frames - 1 motion noises of z_motion."""
        if num_frames is not None:
            steps = base.checked_steps(inputs["z_motion"], num_frames - 1)
            inputs = {**inputs, "z_motion": inputs["z_motion"][:, :steps]}
        return tf.clip_by_value(generator(inputs, training=training), -1.0, 1.0)

    # ---- inspection (tfvidgen.explain) ----------------------------------------------------------
    def discriminator_scores(self, videos, labels=None) -> dict:
        d = self.discriminators
        scores = {"image_discriminator": base.frame_scores(d.image, videos, labels)}
        for speed, logits in zip(self.cfg.speed_list, d.tpd(videos, labels)):
            scores[f"tpd_speed_{speed}"] = tf.reshape(tf.cast(logits, tf.float32), [-1])
        return scores

    # ---- serving ----------------------------------------------------------------------------
    def extra_endpoints(self) -> dict:
        """steer: seed int64 [B], direction_scale float32 [B, N] (1 keeps, 0 deactivates, > 1
        amplifies direction i), num_frames int32 scalar (+ label) -> video."""
        seed, *given = serving.seed_inputs(self)
        scale = base.Input("direction_scale", "control", (self.cfg.num_directions,),
                           bound=self.max_direction_scale)

        def steer(inputs):
            latents = self.latents_from_seeds(noise.seeds_from_ints(inputs["seed"]),
                                              inputs.get("label"), inputs["num_frames"])
            latents["direction_scale"] = inputs["direction_scale"]
            return self.generate(latents, num_frames=inputs["num_frames"])

        return {"steer": ([seed, scale, serving.num_frames_input(self), *given], steer)}

    # ---- training ---------------------------------------------------------------------------
    def phase_context(self, batch) -> dict:
        return self.shared_fakes_context(batch)

    def phase_loss(self, phase, batch, context):
        if phase == "d_main":
            return self.discriminator_losses(batch, context)
        if phase == "d_reg":
            return self.r1_losses(batch, context)
        return self.generator_losses(batch, context)

    def _logits(self, videos, seeds, salt, labels):
        # one frame per video at a per-example random index [P: as MoCoGAN/G3AN]
        return self.discriminators(noise.random_frame(videos, seeds, salt), videos, labels)

    def discriminator_losses(self, batch, context):
        fakes, labels, seeds = context["detached"], context["latents"].get("label"), batch["seed"]
        real_i, real_v = self._logits(batch["video"], seeds, _SALT_REAL_FRAME, labels)
        fake_i, fake_v = self._logits(fakes, seeds, _SALT_FAKE_FRAME, labels)
        adv_image = losses.bce_discriminator_loss(real_i, fake_i)
        adv_video = tf.add_n([losses.bce_discriminator_loss(r, f)
                              for r, f in zip(real_v, fake_v)])
        total = adv_image + self.cfg.tpd_weight * adv_video
        logs = {"d_total": total, "d_adv_image": adv_image, "d_adv_tpd": adv_video,
                "d_real_image": tf.reduce_mean(real_i), "d_fake_image": tf.reduce_mean(fake_i)}
        for speed, r, f in zip(self.cfg.speed_list, real_v, fake_v):
            logs[f"d_real_speed{speed}"] = tf.reduce_mean(r)
            logs[f"d_fake_speed{speed}"] = tf.reduce_mean(f)
        return total, logs

    def r1_losses(self, batch, context):
        """Lazy R1 on real data: (gamma / 2) * E||grad D(x)||^2 * interval, for the image D and
        (times tpd_weight) for each TPD discriminator on its TtoC input."""
        labels, cfg = context["latents"].get("label"), self.cfg
        d = self.discriminators
        frames = noise.random_frame(batch["video"], batch["seed"], _SALT_REAL_FRAME)
        r1_image = losses.r1_penalty(lambda x: d.image(x, labels), frames)
        r1_video = tf.add_n([
            losses.r1_penalty(lambda x, net=net: net(x, labels),
                              tpd.time_to_channel(batch["video"], s))
            for s, net in zip(cfg.speed_list, d.tpd.discriminators)])
        scale = cfg.r1_gamma / 2.0 * cfg.r1_interval
        total = scale * (r1_image + cfg.tpd_weight * r1_video)
        return total, {"d_r1_image": r1_image, "d_r1_tpd": r1_video, "d_reg": total}

    def generator_losses(self, batch, context):
        fake_i, fake_v = self._logits(context["fakes"], batch["seed"], _SALT_FAKE_FRAME,
                                      context["latents"].get("label"))
        adv_image = losses.nonsaturating_generator_loss(fake_i)
        adv_video = tf.add_n([losses.nonsaturating_generator_loss(f) for f in fake_v])
        total = adv_image + self.cfg.tpd_weight * adv_video
        return total, {"g_total": total, "g_adv_image": adv_image, "g_adv_tpd": adv_video}

