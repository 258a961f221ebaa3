"""TwoStreamVAN: Improving Motion Modeling in Video Generation (Sun, Xu, Saenko; WACV 2020,
arXiv:1812.01037). [P] paper, [C] official code, [I] ours.

Two VAE-GAN streams generate a video frame by frame, class-conditionally (one-hot label):
- content stream: E_c (frame -> q(z_c|x, k)), G_c (z_c, k -> frame, no BN), patch image D_I [P];
- motion stream: E_m over frame differences (-> q(z_m|dx, k) and an 8x8 "diff map"), a ConvLSTM
  (ones initial state, +1 forget bias [C]) advanced ONLY by the diff maps of realised frames; the
  current motion map (from eps_m) goes through one extra, discarded ConvLSTM step, its output is
  joined with G_c's hidden vector (outer product [C]) and G_m decodes, at each fusion scale,
  per-pixel separable kernels (w_v, w_h) and a motion mask M [P][C];
- fusion at each scale (res/8, /4, /2 and the RGB output): h^ = M * AdaConv(h; w_v, w_h) + (1-M) * h
  (tfvidgen/layers/adaptive_conv.py), the finest `num_scales` of the four [P Table 3 / I];
- video D_V (3D, MoCoGAN-style) with 1 + K outputs: real/fake logit and class logits [P][C].

Training tasks (each one step = one task, chosen on the host by phases(step)):
- pretrain (the first pretrain_steps): the content VAE alone on one random frame, E_c on lambda1
  MSE + lambda2 KL, G_c on lambda1 MSE; no D_I, no prior sample [P: "the image reconstruction
  task"][C]. pretrain_adversarial=True runs the content task instead [I].
- content: VAE-GAN on one random frame: E_c gets lambda1 MSE + lambda2 KL, G_c gets lambda1 MSE +
  image_adv_weight * BCE on x~ and prior_weight * on x_p, D_I real vs x~ and x_p [P][C].
- video: 10-frame rollout with scheduled sampling (ground truth fed to E_c and as history with
  probability eps(step), linear 1 -> 0, one draw per step for the whole batch [C]) from the
  content reconstruction of frame 0 [P][C]: v~ with eps_m from q(z_m|dx_t, k), v_p with
  eps_m ~ N(0, I) [C]; E_m gets lambda5(step) KL + lambda4 MSE + lambda3 scale-feature MSE / (T-1);
  the motion generator lambda4 MSE + BCE(D_V) on v~ and v_p + class CE + the scale term; D_V real
  vs v~, v_p + class CE [P]. The motion KL (motion_kl_reduction) is the code's mean over the
  B x (T-1) steps by default [C], the reduction Table 6's lambda5 were tuned with; "sum" is Eq. 5's
  literal sum_t, (T-1) times larger [P]. The content stream is frozen in motion tasks [P][C].
- pred (code curriculum only): one-step prediction of x_t with full GT history, judged by D_I
  (weight image_adv_weight), its own KL weight lambda_pred_kl [C].
Encoders never receive adversarial gradients; six Adam optimizers [C]. Loss forms as in the code:
MSE = mean, KL = -0.5 sum_dims(1 + logvar - mu^2 - e^logvar) batch-mean against N(0, I) (the class
enters by one-hot concatenation: E_c/E_m heads, trajectory FC, G_c FC1) [C].

Schedules (offset by pretrain_steps, content-only pre-training [P]; the content-KL warm-up is not):
- curriculum "paper": content : motion = 3 : 2 deterministically (step % 5 < 3), motion = video
  task with scheduled sampling [P]. "code": content with probability content_probability (0.6),
  else video with probability ramping video_task_start -> video_task_end over
  video_task_ramp_steps, else pred [C]; the draws are a seeded hash of the step (host side).
- scheduled sampling eps and the motion KL lambda5 ramp linearly over
  [schedule_start, schedule_end] (code: 150k -> 400k) [C]; read in-graph from self.step.
- equilibrium=True: the VAE-GAN equilibrium gating of the code [C], decided on the host from the
  D's real/fake BCE of the previous step of the same task [I: the code uses the current step's];
  the fake cost is the mean of x~'s and x_p's BCE (pred, video), (1 - w) BCE(x~) + w BCE(x_p) with
  w = prior_weight (content) [C]. Pre-training has no D, hence no gate.

Departures and choices [I]: D_I / D_V run with training=False (BN moving statistics) in the
generator phases so a generator update never moves D's state (the contract); the generated video
is clipped to [-1, 1] at inference (fusion on the RGB output is unnormalised); generalised sizes:
base map res/8, D_V's temporal padding per the code's for T=10 and fitted for other T; the SGVAN
ablation (single_generator) feeds FC(e_m) into G_c's FC1 and drops G_m and the fusion, and its
motion optimizer also trains G_c; with fewer than 4 scales the finest ones are fused. The code's
weight decay (Adam's coupled L2, 1e-5) is `weight_decay`, off by default (the paper has none) and
on in the configs that reproduce the code; no instance noise (off in the code).

Known differences from the code, kept [I]: the content task draws its frame from all T frames and
the pred task its target from 1 .. T-1 (the code: 0 .. T-2 and 1 .. T-2, numpy's exclusive upper
bound: those two tasks never see a clip's last frame). The data pipeline (tfvidgen/data, not this
model) draws each clip's stride from [1, max_stride] and the Weizmann config has no random crop;
the code samples Weizmann at a fixed stride 2 (1 for run, side, skip) and crops (H-5) x (W-5) at a
random offset 0-4 (centre at test) before resizing to 64.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from tfvidgen.config import TrainConfig
from tfvidgen.layers import adaptive_conv, conv, convlstm, noise, recording
from tfvidgen.models import base

__all__ = ["TwoStreamVANConfig", "TwoStreamVANGenerator", "TwoStreamVAN", "kl_divergence"]

(_SALT_Z_C, _SALT_Z_M, _SALT_FRAME, _SALT_POSTERIOR_C, _SALT_PRIOR_C, _SALT_PRED_T,
 _SALT_POSTERIOR_M, _SALT_PRIOR_M, _SALT_TEACHER) = range(1, 10)
#: fusion scales, coarse to fine, relative to the base map (res / 8)
NUM_FUSION_SCALES = 4
#: G_m trunk widths and how many channels of each block feed that scale's kernel sub-net [C]
_TRUNK = ((128, 32), (64, 22), (32, 16), (16, 16))


@dataclasses.dataclass(frozen=True)
class TwoStreamVANConfig:
    """TwoStreamVAN hyper-parameters (Weizmann values of Table 6 by default)."""

    conditional: bool = True           # [P] class-conditional (one-hot k); False: unlabelled
    gf_dim: int = 16                   # ngf [P Table 6]
    content_dim: int = 512             # C [P]
    motion_dim: int = 64               # M [P]
    motion_width: int = 16             # E_m / ConvLSTM / motion map width (16 in the code) [C]
    joint_dim: int = 64                # FC(e_m) width before the outer product with h_fc1 [C]
    encoder_extra_conv: bool = False   # [C] E_c's extra stride-1 first conv (paper: 5 convs)
    kernel_size: int = 5               # n of the adaptive kernels [P][C]
    num_scales: int = 4                # fusion scales 1-4, the finest ones [P Table 3]
    masks: bool = True                 # False: the -M ablation (h^ = adapted map) [P]
    single_generator: bool = False     # SGVAN ablation: one generator, no fusion [P]
    lambda_recon: float = 1e4          # lambda1 = lambda4 (L2 of frames / videos) [P]
    lambda_content_kl: float = 7.0     # lambda2 [P]
    lambda_scale: float = 1e2          # lambda3 (scale-feature L2) [P]
    lambda_motion_kl_start: float = 2.0    # lambda5 ramp [P]
    lambda_motion_kl_end: float = 20.0
    motion_kl_reduction: str = "mean"  # the video task's motion KL: "mean" over the B x (T-1)
                                       # steps [C] (Table 6's lambda5 are the code's weights);
                                       # "sum": Eq. 5's literal sum_t of batch means [P], (T-1)x
    lambda_pred_kl: float = 7.0        # KL weight of the pred task [C]
    image_adv_weight: float = 10.0     # weight of D_I's generator terms [C]
    prior_weight: float = 1.0          # weight of the prior-sample terms in the content task [C]
    d_class_on_fakes: bool = True      # [P] D_V's class loss on v, v~, v_p; False: real only [C]
    curriculum: str = "paper"          # "paper" (3:2, video task) or "code" (stochastic + pred)
    content_probability: float = 0.6   # code curriculum [C]
    video_task_start: float = 0.1      # code curriculum: P(video | motion) ramp [C]
    video_task_end: float = 0.9
    video_task_ramp_steps: int = 150000
    curriculum_seed: int = 0           # seeds the host-side hash of the code curriculum and
                                       # the per-step scheduled-sampling draws
    schedule_start: int = 150000       # scheduled sampling 1 -> 0 and lambda5 ramp [C]
    schedule_end: int = 400000
    pretrain_steps: int = 0            # content-only steps first (SynAction: 300k) [P]
    pretrain_adversarial: bool = False # False: pre-training is the content VAE alone, no D_I
                                       # [P: "image reconstruction task"][C]; True: the full
                                       # content VAE-GAN task [I]
    content_kl_warmup_steps: int = 0   # lambda2 ramps 0 -> lambda2 over steps 0 .. N (SynAction
                                       # pre-training: 100k) [C]; 0: constant
    weight_decay: float = 0.0          # the code's Adam weight_decay (1e-5), coupled L2: each
                                       # phase adds wd/2 * sum w^2 of the weights it updates [C]
    equilibrium: bool = False          # the code's VAE-GAN D/G update gating [C]
    equilibrium_value: float = 0.68
    equilibrium_margin: float = 0.5
    equilibrium_pred_margin: float = 0.4
    code_difference: bool = False      # [C] (x_{t-1} - x_t)/2 real, x^_{t-1} - x^_t generated
    warmup_frames: int = 2             # generated then dropped at test time [P]
    resolution: int = 64
    num_frames: int = 10
    num_classes: int = 1

    DATA_FIELDS = ("resolution", "num_frames", "num_classes")

    @property
    def base_size(self) -> int:
        return self.resolution // 8

    @property
    def fused_scales(self) -> tuple:
        if self.single_generator:
            return ()
        return tuple(range(NUM_FUSION_SCALES - self.num_scales, NUM_FUSION_SCALES))

    @property
    def motion_steps(self) -> int:
        """eps_m vectors one generated video uses: frames 1 .. T + warm-up - 1."""
        return self.num_frames + self.warmup_frames - 1

    def validate(self) -> "TwoStreamVANConfig":
        if self.resolution < 16 or self.resolution % 16:
            raise ValueError(f"--resolution={self.resolution}: TwoStreamVAN needs a multiple "
                             f"of 16 (four stride-2 stages in each direction)")
        if self.num_frames < 2:
            raise ValueError(f"--num_frames={self.num_frames}: TwoStreamVAN needs >= 2")
        if not 1 <= self.num_scales <= NUM_FUSION_SCALES:
            raise ValueError(f"--model_param num_scales={self.num_scales}: expected 1-4")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"--model_param kernel_size={self.kernel_size}: expected odd >= 1")
        if self.motion_kl_reduction not in ("mean", "sum"):
            raise ValueError(f"--model_param motion_kl_reduction={self.motion_kl_reduction!r}: "
                             f"expected 'mean' or 'sum'")
        if self.curriculum not in ("paper", "code"):
            raise ValueError(f"--model_param curriculum={self.curriculum!r}: expected 'paper' "
                             f"or 'code'")
        if self.conditional and self.num_classes < 2:
            raise ValueError("--model_param conditional=true needs a labelled dataset with at "
                             "least 2 classes")
        for name in ("gf_dim", "content_dim", "motion_dim", "motion_width", "joint_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected >= 1")
        for name in ("content_probability", "video_task_start", "video_task_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected [0, 1]")
        if self.schedule_end <= self.schedule_start or self.video_task_ramp_steps < 1:
            raise ValueError("--model_param schedule_end must exceed schedule_start and "
                             "video_task_ramp_steps must be >= 1")
        if min(self.pretrain_steps, self.warmup_frames, self.content_kl_warmup_steps) < 0:
            raise ValueError("--model_param pretrain_steps, warmup_frames and "
                             "content_kl_warmup_steps must be >= 0")
        if self.weight_decay < 0:
            raise ValueError(f"--model_param weight_decay={self.weight_decay}: expected >= 0")
        return self


# ---- helpers ---------------------------------------------------------------------------------
def _xavier():
    """Xavier-uniform with ReLU gain sqrt(2) [P][C]."""
    return keras.initializers.VarianceScaling(2.0, "fan_avg", "uniform")


def _with_label(x, labels, cfg):
    if not cfg.conditional:
        return x
    return tf.concat([x, tf.one_hot(labels, cfg.num_classes, dtype=x.dtype)], axis=-1)


def _f32(x):
    return tf.cast(x, tf.float32)


def kl_divergence(mu, logvar):
    """KL(N(mu, e^logvar) || N(0, I)) summed over dimensions, batch mean [C]."""
    mu, logvar = _f32(mu), _f32(logvar)
    return tf.reduce_mean(-0.5 * tf.reduce_sum(1.0 + logvar - mu ** 2 - tf.exp(logvar), -1))


def mse(a, b):
    return tf.reduce_mean(tf.square(_f32(a) - _f32(b)))


def linear_ramp(step, start, end, first, last):
    """first -> last linearly as step goes start -> end (clamped), in-graph."""
    progress = tf.clip_by_value((_f32(step) - start) / float(end - start), 0.0, 1.0)
    return first + (last - first) * progress


def motion_step_noise(keys, index, dim):
    """keys int64 [B, 2] (already salted) -> eps_m [B, dim] of motion step `index` (a tensor):
    one fold-in per step, so a longer video extends a shorter one with the same seed."""
    index = tf.cast(index, tf.int32)
    return tf.map_fn(
        lambda s: tf.random.stateless_normal(
            [dim], tf.random.experimental.stateless_fold_in(s, index)),
        keys, fn_output_signature=tf.TensorSpec([dim], tf.float32))


def salted_keys(seeds, salt):
    return tf.map_fn(
        lambda s: tf.cast(tf.random.experimental.stateless_fold_in(s, salt), tf.int64),
        tf.cast(seeds, tf.int64), fn_output_signature=tf.TensorSpec([2], tf.int64))


_MASK_RECORDINGS: list = []


def recorded_masks():
    """Collects, for inspection (tfvidgen.explain), every motion mask the content generator
    blends with inside the block: a list of (scale, mask [B, l, l, 1]) in call order. Eager
    calls (an eager tf.while_loop runs its body in Python, so a rollout records every step)."""
    return recording.recording(_MASK_RECORDINGS, [])


# ---- generator-side networks -------------------------------------------------------------------
# Layers, not Models: export tracks each declared network, and Keras would give a tracked Model
# a default signature calling it with its first positional input only (no labels).
@keras.saving.register_keras_serializable(package="tfvidgen")
class ContentEncoder(keras.layers.Layer):
    """E_c: frames [B, H, W, 3] (+ labels) -> (mu, logvar) [B, C]; no BN, no conv bias [P][C]."""

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        g = cfg.gf_dim
        plan = [(g, 2), (g, 1), (2 * g, 2), (2 * g, 1), (g, 2)]
        if cfg.encoder_extra_conv:
            plan = [(g, 1)] + plan
        self.convs = [keras.layers.Conv2D(c, 3, s, "same", use_bias=False, activation="relu",
                                          kernel_initializer=_xavier(), name=f"conv{i}")
                      for i, (c, s) in enumerate(plan)]
        self.fc = keras.layers.Dense(32 * g, activation="relu", kernel_initializer=_xavier(),
                                     name="fc")
        self.mu = keras.layers.Dense(cfg.content_dim, dtype="float32",
                                     kernel_initializer=_xavier(), name="mu")
        self.logvar = keras.layers.Dense(cfg.content_dim, dtype="float32",
                                         kernel_initializer=_xavier(), name="logvar")

    def call(self, frames, labels=None, training=None):
        h = frames
        for layer in self.convs:
            h = layer(h)
        h = self.fc(keras.ops.reshape(h, [-1, math.prod(h.shape[1:])]))
        h = _with_label(h, labels, self.cfg)
        return self.mu(h), self.logvar(h)


@keras.saving.register_keras_serializable(package="tfvidgen")
class MotionEncoder(keras.layers.Layer):
    """E_m: difference maps [B, H, W, 3] (+ labels) -> (diff map [B, b, b, w], mu, logvar [B, M]);
    conv + synchronized BN + ReLU, three max-pools [C]."""

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        w = cfg.motion_width
        plan = [(w, 5, False), (w, 5, True), (2 * w, 5, False), (2 * w, 5, True),
                (2 * w, 7, False), (w, 7, True)]
        # No bias before BN (the code has one): BN cancels it, so its gradient is rounding
        # noise, which Adam's normalisation turns into lr-sized steps that differ between 1 and 2
        # replicas (measured 3e-4). 656 parameters at Weizmann size (144 conv + 512 FC biases).
        self.convs = [keras.layers.Conv2D(c, k, padding="same", use_bias=False,
                                          kernel_initializer=_xavier(), name=f"conv{i}")
                      for i, (c, k, _) in enumerate(plan)]
        self.norms = [conv.batch_norm(name=f"bn{i}") for i in range(len(plan))]
        self.pools = [p for _, _, p in plan]
        self.fc = keras.layers.Dense(32 * w, use_bias=False, kernel_initializer=_xavier(),
                                     name="fc")
        self.fc_norm = conv.batch_norm(name="fc_bn")
        self.mu = keras.layers.Dense(cfg.motion_dim, dtype="float32",
                                     kernel_initializer=_xavier(), name="mu")
        self.logvar = keras.layers.Dense(cfg.motion_dim, dtype="float32",
                                         kernel_initializer=_xavier(), name="logvar")

    def call(self, diffs, labels=None, training=None):
        h = diffs
        for layer, norm, pool in zip(self.convs, self.norms, self.pools):
            h = keras.ops.relu(norm(layer(h), training=training))
            if pool:
                h = keras.ops.max_pool(h, 2, 2)
        diff_map = h
        h = keras.ops.relu(self.fc_norm(self.fc(keras.ops.reshape(h, [-1, math.prod(h.shape[1:])])),
                                        training=training))
        h = _with_label(h, labels, self.cfg)
        return diff_map, self.mu(h), self.logvar(h)


@keras.saving.register_keras_serializable(package="tfvidgen")
class ContentGenerator(keras.layers.Layer):
    """G_c: [z_c, one-hot k] -> FC1 (h_fc1) -> FC2 -> base map -> transposed convs -> RGB, with
    optional fusion at the four scales (base map, x2, x4, RGB output); no BN, no conv bias [P][C]."""

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        g = cfg.gf_dim
        self.fc1 = keras.layers.Dense(32 * g, activation="relu", kernel_initializer=_xavier(),
                                      name="fc1")
        self.fc2 = keras.layers.Dense(cfg.base_size ** 2 * g, activation="relu",
                                      kernel_initializer=_xavier(), name="fc2")
        plan = [(8 * g, 2), (4 * g, 1), (2 * g, 2), (2 * g, 1), (g, 2)]
        # Xavier (ReLU gain) on every layer [P: "Xavier initialization for each layer"]; the code
        # leaves transposed convs at PyTorch's default, which shrinks G_c's output to ~1e-3 at init.
        self.deconvs = [keras.layers.Conv2DTranspose(c, 3, s, "same", use_bias=False,
                                                     activation="relu",
                                                     kernel_initializer=_xavier(),
                                                     name=f"deconv{i}")
                        for i, (c, s) in enumerate(plan)]
        self.to_rgb = keras.layers.Conv2DTranspose(3, 3, 1, "same", use_bias=False,
                                                   dtype="float32",
                                                   kernel_initializer=_xavier(), name="to_rgb")

    def hidden(self, z_c, labels=None, motion_code=None):
        """h_fc1 [B, 32 ngf] (SGVAN: the motion code joins the input)."""
        x = _with_label(z_c, labels, self.cfg)
        if self.cfg.single_generator:
            if motion_code is None:
                motion_code = tf.zeros([tf.shape(z_c)[0], self.cfg.joint_dim], z_c.dtype)
            x = tf.concat([x, tf.cast(motion_code, x.dtype)], axis=-1)
        return self.fc1(x)

    def decode(self, hidden, kernels=None):
        """(frame [B, H, W, 3], per-scale maps after fusion). kernels: {scale: (w_v, w_h, mask)}."""
        kernels = kernels or {}
        b, g = self.cfg.base_size, self.cfg.gf_dim
        features = []

        def fuse(scale, h):
            if scale in kernels:
                w_v, w_h, mask = kernels[scale]
                if mask is not None:
                    for found in _MASK_RECORDINGS:
                        found.append((scale, mask))
                h = adaptive_conv.blend(adaptive_conv.adaptive_separable_conv(h, w_v, w_h), h,
                                        mask)
            features.append(h)
            return h

        h = fuse(0, keras.ops.reshape(self.fc2(hidden), [-1, b, b, g]))
        for i, layer in enumerate(self.deconvs):
            h = layer(h)
            if i == 0:
                h = fuse(1, h)
            elif i == 2:
                h = fuse(2, h)
        frame = fuse(3, tf.tanh(self.to_rgb(h)))
        return frame, features

    def call(self, inputs, training=None):
        return self.decode(self.hidden(inputs["z"], inputs.get("label")))[0]


@keras.saving.register_keras_serializable(package="tfvidgen")
class KernelSubnet(keras.layers.Layer):
    """One scale's sub-net of G_m [C]: shared conv-BN-ReLU (16), then the w_v and w_h branches
    (conv-BN-ReLU-conv, n channels each) and the mask branch (conv-BN-ReLU (16)-conv, tanh,
    (m + 1) / 2). The three branches' first conv-BN-ReLU run as ONE conv with their channels
    side by side (convolution and BN are per output channel: the same function, a third of the
    ops to trace and differentiate)."""

    def __init__(self, kernel_size: int, masks: bool, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size, self.masks = kernel_size, masks
        init = _xavier()
        self.shared = conv.ConvBNReLU("conv2d", 16, 3, name="shared")
        self.branches = conv.ConvBNReLU("conv2d", 2 * kernel_size + (16 if masks else 0), 3,
                                        name="branches")
        out = lambda c, name: keras.layers.Conv2D(c, 3, padding="same", dtype="float32",
                                                  kernel_initializer=init, name=name)
        self.v_out, self.h_out = out(kernel_size, "v_out"), out(kernel_size, "h_out")
        self.m_out = out(1, "m_out") if masks else None

    def call(self, x, training=None):
        n = self.kernel_size
        x = self.branches(self.shared(x, training=training), training=training)
        w_v, w_h = self.v_out(x[..., :n]), self.h_out(x[..., n:2 * n])
        mask = None
        if self.m_out is not None:
            mask = (tf.tanh(self.m_out(x[..., 2 * n:])) + 1.0) / 2.0
        return w_v, w_h, mask

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "masks": self.masks}


@keras.saving.register_keras_serializable(package="tfvidgen")
class MotionGenerator(keras.layers.Layer):
    """Trajectory FC + ConvLSTM + joint content x motion input + G_m trunk with per-scale kernel
    and mask sub-nets [C]. SGVAN: trajectory + ConvLSTM + FC(e_m) (the motion code) only."""

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        b, w = cfg.base_size, cfg.motion_width
        self.trajectory = keras.layers.Dense(b * b * w, activation="relu",
                                             kernel_initializer=_xavier(), name="trajectory")
        self.lstm = convlstm.ConvLSTMCell(w, 3, forget_bias=1.0, kernel_initializer=_xavier(),
                                          name="convlstm")
        self.joint_in = keras.layers.Dense(cfg.joint_dim, activation="relu",
                                           kernel_initializer=_xavier(), name="joint_in")
        self.joint = self.blocks = self.subnets = None
        if not cfg.single_generator:
            self.joint = keras.layers.Dense(b * b * w, activation="relu",
                                            kernel_initializer=_xavier(), name="joint")
            self.blocks = []
            for i, (width, _) in enumerate(_TRUNK):
                kernel, stride = (3, 1) if i == 0 else (4, 2)
                self.blocks.append([
                    conv.ConvBNReLU("conv2d_t", width, kernel, stride, name=f"up{i}"),
                    conv.ConvBNReLU("conv2d", width, 3, name=f"conv{i}")])
            # a list (a dict with int keys cannot be saved), aligned with fused_scales
            self.subnets = [KernelSubnet(cfg.kernel_size, cfg.masks, name=f"kernels{s}")
                            for s in cfg.fused_scales]

    def initial_state(self, batch_size):
        b = self.cfg.base_size
        return self.lstm.initial_state(batch_size, b, b)

    def advance(self, state, diff_map):
        """The persistent state after one realised frame difference (its E_m diff map)."""
        return self.lstm(diff_map, state)[1]

    def embed(self, state, eps_m, labels=None, training=None):
        """e_m [B, b, b, w]: the current motion map through one extra, discarded LSTM step."""
        b, w = self.cfg.base_size, self.cfg.motion_width
        current = keras.ops.reshape(self.trajectory(_with_label(eps_m, labels, self.cfg)),
                                    [-1, b, b, w])
        return self.lstm(current, state)[0]

    def motion_code(self, e_m):
        return self.joint_in(keras.ops.reshape(e_m, [-1, math.prod(e_m.shape[1:])]))

    def kernels(self, e_m, hidden, training=None):
        """{scale: (w_v, w_h, mask)} from e_m and G_c's h_fc1 (outer product join) [C]."""
        b, w = self.cfg.base_size, self.cfg.motion_width
        code = self.motion_code(e_m)
        hidden = tf.cast(hidden, code.dtype)
        outer = tf.reshape(hidden[:, :, None] * code[:, None, :],
                           [-1, hidden.shape[-1] * code.shape[-1]])
        x = keras.ops.reshape(self.joint(outer), [-1, b, b, w])
        out = {}
        for scale, ((_, split), (up, refine)) in enumerate(zip(_TRUNK, self.blocks)):
            x = refine(up(x, training=training), training=training)
            if scale in self.cfg.fused_scales:
                subnet = self.subnets[self.cfg.fused_scales.index(scale)]
                out[scale] = subnet(x[..., :split], training=training)
            if scale < NUM_FUSION_SCALES - 1:
                x = x[..., split:]
        return out

    def call(self, inputs, training=None):
        state = self.initial_state(tf.shape(inputs["eps_m"])[0])
        e_m = self.embed(state, inputs["eps_m"], inputs.get("label"), training)
        if self.cfg.single_generator:
            return self.motion_code(e_m)
        return self.kernels(e_m, inputs["hidden"], training)


def frame_difference(previous, current, cfg, generated: bool):
    """Paper: x_t - x_{t-1}; code: (x_{t-1} - x_t) / 2 for real, x^_{t-1} - x^_t generated [C]."""
    if not cfg.code_difference:
        return current - previous
    return (previous - current) if generated else (previous - current) / 2.0


@keras.saving.register_keras_serializable(package="tfvidgen")
class TwoStreamVANGenerator(keras.Model):
    """All generator-side networks (E_c, E_m, G_c, motion generator) and the autoregressive
    rollout. latents {z_content [B, C], z_motion [B, S, M](, label [B])} -> video
    [B, S + 1 - warmup_frames, H, W, 3] in [-1, 1]."""

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg.validate()
        self.content_encoder = ContentEncoder(cfg, name="content_encoder")
        self.motion_encoder = MotionEncoder(cfg, name="motion_encoder")
        self.content_generator = ContentGenerator(cfg, name="content_generator")
        self.motion_generator = MotionGenerator(cfg, name="motion_generator")

    # -- one frame --
    def content_frame(self, z_c, labels=None, training=None):
        """(frame, per-scale maps) of the content stream alone (no fusion)."""
        return self.content_generator.decode(self.content_generator.hidden(z_c, labels))

    def next_frame(self, z_c, state, eps_m, labels=None, training=None):
        """(frame, per-scale maps after fusion) from the previous frame's content code, the
        motion history state and this step's eps_m."""
        cg, mg = self.content_generator, self.motion_generator
        e_m = mg.embed(state, eps_m, labels, training)
        if self.cfg.single_generator:
            return cg.decode(cg.hidden(z_c, labels, mg.motion_code(e_m)))
        hidden = cg.hidden(z_c, labels)
        return cg.decode(hidden, mg.kernels(e_m, hidden, training))

    def content_mean(self, frames, labels=None, training=None):
        return self.content_encoder(frames, labels, training=training)[0]

    # -- test-time rollout --
    def rollout(self, z_c, labels, motion_at, steps, training=False):
        """Frames [B, steps + 1, H, W, 3]: frame 0 from z_c, then `steps` predicted frames with
        eps_m = motion_at(i) (i = 0 .. steps - 1); `steps` may be a tensor (tf.while_loop)."""
        first, _ = self.content_frame(z_c, labels, training)
        first = _f32(first)
        c, h = self.motion_generator.initial_state(tf.shape(z_c)[0])
        frames = tf.TensorArray(tf.float32, size=steps + 1, element_shape=first.shape)
        frames = frames.write(0, first)

        def body(t, previous, before, c, h, frames):
            z_prev = self.content_mean(previous, labels, training)
            diff = frame_difference(before, previous, self.cfg, generated=True)
            diff_map = self.motion_encoder(diff, labels, training=training)[0]
            advanced_c, advanced_h = self.motion_generator.advance((c, h), diff_map)
            # History is the differences of realised frames: none before the second frame.
            has_history = t >= 2
            c = tf.where(has_history, advanced_c, c)
            h = tf.where(has_history, advanced_h, h)
            frame, _ = self.next_frame(z_prev, (c, h), motion_at(t - 1), labels, training)
            frame = _f32(frame)
            return t + 1, frame, previous, c, h, frames.write(t, frame)

        *_, frames = tf.while_loop(lambda t, *_: t <= steps, body,
                                   (tf.constant(1), first, first, c, h, frames))
        return tf.transpose(frames.stack(), [1, 0, 2, 3, 4])

    def call(self, latents, training=None):
        z_motion = latents["z_motion"]
        frames = self.rollout(latents["z_content"], latents.get("label"),
                              lambda i: tf.gather(z_motion, i, axis=1), z_motion.shape[1],
                              training=bool(training))
        return tf.clip_by_value(frames[:, self.cfg.warmup_frames:], -1.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "cfg": dataclasses.asdict(self.cfg)}

    @classmethod
    def from_config(cls, config):
        return cls(TwoStreamVANConfig(**config.pop("cfg")), **config)


# ---- discriminators ----------------------------------------------------------------------------
def _lrelu(x):
    return tf.nn.leaky_relu(x, alpha=0.2)       # Keras' LeakyReLU default slope is 0.3


@keras.saving.register_keras_serializable(package="tfvidgen")
class ImageDiscriminator(keras.Model):
    """D_I: frames [B, H, W, 3] -> patch logits [B, res/16, res/16] [C] (no bias)."""

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.convs = [keras.layers.Conv2D(c, 4, 2, "same", use_bias=False,
                                          kernel_initializer=_xavier(), name=f"conv{i}")
                      for i, c in enumerate((16, 32, 64))]
        self.norms = [None, conv.batch_norm(name="bn1"), conv.batch_norm(name="bn2")]
        self.head = keras.layers.Conv2D(1, 4, 2, "same", use_bias=False, dtype="float32",
                                        kernel_initializer=_xavier(), name="head")

    def call(self, frames, training=None):
        h = frames
        for layer, norm in zip(self.convs, self.norms):
            h = layer(h)
            h = _lrelu(norm(h, training=training) if norm is not None else h)
        return self.head(h)[..., 0]

    def get_config(self):
        return {**super().get_config(), "cfg": dataclasses.asdict(self.cfg)}


def video_discriminator_plan(num_frames: int) -> list:
    """(temporal kernel, pad before, pad after) of D_V's five 3D convs: the code's paddings
    (0, 0, 1, 1) for T = 10 with kernels shrunk to fit short clips, and a head whose padding or
    kernel brings T to 1 [C for T=10, I otherwise]."""
    plan, frames = [], num_frames
    for pad in (0, 0, 1, 1):
        kernel = min(4, frames + 2 * pad)
        plan.append((kernel, pad, pad))
        frames = frames + 2 * pad - kernel + 1
    if frames <= 4:
        total = 4 - frames
        plan.append((4, total // 2 + total % 2, total // 2))
    else:
        plan.append((frames, 0, 0))
    return plan


@keras.saving.register_keras_serializable(package="tfvidgen")
class VideoDiscriminator(keras.Model):
    """D_V: videos [B, T, H, W, 3] -> (logits [B], class logits [B, K] or None); 3D convs 4x4x4,
    no bias, BN, LeakyReLU 0.2, widths 64-128-256-512, head 1 + K [P][C]."""

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        plan = video_discriminator_plan(cfg.num_frames)
        self.pads, self.convs, self.norms = [], [], []
        for i, ((kt, before, after), width) in enumerate(zip(plan, (64, 128, 256, 512))):
            self.pads.append(((before, after), (1, 1), (1, 1)))
            self.convs.append(keras.layers.Conv3D(width, (kt, 4, 4), (1, 2, 2), "valid",
                                                  use_bias=False, kernel_initializer=_xavier(),
                                                  name=f"conv{i}"))
            self.norms.append(conv.batch_norm(name=f"bn{i}") if i else None)
        kt, before, after = plan[-1]
        self.head_pad = ((before, after), (0, 0), (0, 0))
        spatial = cfg.resolution // 16
        outputs = 1 + (cfg.num_classes if cfg.conditional else 0)
        self.head = keras.layers.Conv3D(outputs, (kt, spatial, spatial), 1, "valid",
                                        use_bias=False, dtype="float32",
                                        kernel_initializer=_xavier(), name="head")

    def call(self, videos, training=None):
        h = videos
        for pad, layer, norm in zip(self.pads, self.convs, self.norms):
            h = layer(tf.pad(h, [(0, 0), *pad, (0, 0)]))
            h = _lrelu(norm(h, training=training) if norm is not None else h)
        out = tf.reshape(self.head(tf.pad(h, [(0, 0), *self.head_pad, (0, 0)])),
                         [-1, self.head.filters])
        return out[:, 0], (out[:, 1:] if self.cfg.conditional else None)

    def get_config(self):
        return {**super().get_config(), "cfg": dataclasses.asdict(self.cfg)}


# ---- the trainable model -------------------------------------------------------------------------
_TASK_PHASES = {"content": ("content_d", "content_encoder", "content_generator"),
                "pred": ("pred_d", "pred_encoder", "pred_generator"),
                "video": ("video_d", "video_encoder", "video_generator"),
                # content pre-training: the VAE alone, no discriminator [P][C]
                "pretrain": ("pretrain_encoder", "pretrain_generator")}
#: the tasks with a discriminator, hence an equilibrium gate
_GATED_TASKS = ("content", "pred", "video")
_PHASE_OPTIMIZERS = {"pretrain_encoder": "content_encoder_optimizer",
                     "pretrain_generator": "content_generator_optimizer",
                     "content_d": "image_d_optimizer",
                     "content_encoder": "content_encoder_optimizer",
                     "content_generator": "content_generator_optimizer",
                     "pred_d": "image_d_optimizer",
                     "pred_encoder": "motion_encoder_optimizer",
                     "pred_generator": "motion_generator_optimizer",
                     "video_d": "video_d_optimizer",
                     "video_encoder": "motion_encoder_optimizer",
                     "video_generator": "motion_generator_optimizer"}


def _bce(logits, target: float, weight=1.0):
    logits = _f32(logits)
    return weight * tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        tf.fill(tf.shape(logits), target), logits))


def _class_loss(logits, labels):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.cast(labels, tf.int32), _f32(logits)))


class TwoStreamVAN(base.VideoGAN):
    """Trainable TwoStreamVAN; see the module docstring for the paper, the code and departures.

    Tasks content / pred / video, each three phases: its D (on detached fakes), its encoder
    (VAE losses), its generator (reconstruction + adversarial through the updated D); pretrain
    has the encoder and generator phases only. The task's forward runs once, in its first phase,
    recorded on the tapes of the others."""

    Config = TwoStreamVANConfig

    def __init__(self, cfg: TwoStreamVANConfig, train: TrainConfig, **kwargs):
        self.cfg = cfg.validate()
        super().__init__(train, **kwargs)
        self.generator = TwoStreamVANGenerator(cfg, name="generator")
        self.ema_generator = (TwoStreamVANGenerator(cfg, name="generator")
                              if train.ema_decay > 0 else None)
        self.image_discriminator = ImageDiscriminator(cfg, name="image_discriminator")
        self.video_discriminator = VideoDiscriminator(cfg, name="video_discriminator")
        # The equilibrium gate's last D BCEs (real, fake) per task: read on the host by
        # phases(), so not a network variable; checkpoint() adds them when gating is on. MEAN:
        # written in replica context, the global value is the replica mean.
        object.__setattr__(self, "gate_state", {
            task: tf.Variable(tf.fill([2], cfg.equilibrium_value), trainable=False,
                              aggregation=tf.VariableAggregation.MEAN, name=f"gate_{task}")
            for task in _GATED_TASKS})

    # -- the sub-networks by name (they live inside `generator`) --
    @property
    def content_encoder(self):
        return self.generator.content_encoder

    @property
    def motion_encoder(self):
        return self.generator.motion_encoder

    @property
    def content_generator(self):
        return self.generator.content_generator

    @property
    def motion_generator(self):
        return self.generator.motion_generator

    @property
    def PHASES(self) -> dict:
        cfg = self.cfg
        tasks = (["content", "video"] + (["pred"] if cfg.curriculum == "code" else [])
                 + (["pretrain"] if cfg.pretrain_steps and not cfg.pretrain_adversarial else []))
        return {p: _PHASE_OPTIMIZERS[p] for t in tasks for p in _TASK_PHASES[t]}

    def networks(self) -> dict:
        # `generator` first: every generator-side variable is in the "generator" item.
        return {"generator": base.Network("generator", "generator"),
                "ema_generator": base.Network("ema", "ema_generator", source="generator"),
                "content_encoder": base.Network("encoder", "generator"),
                "motion_encoder": base.Network("encoder", "generator"),
                "content_generator": base.Network("generator", "generator"),
                "motion_generator": base.Network("generator", "generator"),
                "image_discriminator": base.Network("discriminator", "discriminators"),
                "video_discriminator": base.Network("discriminator", "discriminators")}

    def optimizer_specs(self) -> dict:
        motion = (("motion_generator", "content_generator") if self.cfg.single_generator
                  else ("motion_generator",))
        spec = base.OptimizerSpec
        return {"content_encoder_optimizer": spec(("content_encoder",), "g_lr", "content_encoder",
                                                  name="ec_adam"),
                "motion_encoder_optimizer": spec(("motion_encoder",), "g_lr", "motion_encoder",
                                                 name="em_adam"),
                "content_generator_optimizer": spec(("content_generator",), "g_lr",
                                                    "content_generator", name="gc_adam"),
                "motion_generator_optimizer": spec(motion, "g_lr", "motion_generator",
                                                   name="gm_adam"),
                "image_d_optimizer": spec(("image_discriminator",), "d_lr",
                                          "image_discriminator", name="di_adam"),
                "video_d_optimizer": spec(("video_discriminator",), "d_lr",
                                          "video_discriminator", name="dv_adam")}

    def inputs(self) -> list:
        cfg = self.cfg
        declared = [base.Input("z_content", "appearance", (cfg.content_dim,), salt=_SALT_Z_C),
                    base.Input("z_motion", "motion", (cfg.motion_steps, cfg.motion_dim),
                               salt=_SALT_Z_M)]
        if cfg.conditional:
            declared.append(base.Input("label", "label", (), "int32",
                                       int_range=(0, cfg.num_classes)))
        return declared

    def latents_from_seeds(self, seeds, labels=None) -> dict:
        """As the base, but eps_m per motion step from (seed, salt, step): the `num_frames`
        endpoint's longer videos then start with the default-length video of the same seed."""
        cfg = self.cfg
        keys = salted_keys(seeds, _SALT_Z_M)
        out = {"z_content": noise.per_example_normal(seeds, _SALT_Z_C, cfg.content_dim),
               "z_motion": tf.stack([motion_step_noise(keys, i, cfg.motion_dim)
                                     for i in range(cfg.motion_steps)], axis=1)}
        if cfg.conditional:
            if labels is None:
                raise ValueError("conditional TwoStreamVAN needs labels")
            out["label"] = tf.cast(labels, tf.int32)
        return out

    def build_networks(self) -> None:
        labels = tf.zeros([2], tf.int32) if self.cfg.conditional else None
        latents = self.sample_inputs(2, 0, labels=labels)
        # One short eager rollout builds every layer; the plain path spares an XLA compile per
        # fusion shape.
        with adaptive_conv.without_jit():
            for generator in (self.generator, self.ema_generator):
                if generator is not None:
                    video = generator(latents)
                    generator.content_encoder(video[:, 0], labels)       # the logvar heads
                    # built through their methods, not __call__: say so (export checks it)
                    generator.content_generator.built = True
                    generator.motion_generator.built = True
        self.video_discriminator(video)
        self.image_discriminator(video[:, 0])

    def checkpoint(self, training: bool = True) -> tf.train.Checkpoint:
        """The base's, plus (training with equilibrium gating) the gate's stored BCEs, so a
        resumed run gates its first steps as the uninterrupted run would."""
        checkpoint = super().checkpoint(training)
        if training and self.cfg.equilibrium:
            checkpoint.equilibrium_gate = dict(self.gate_state)
        return checkpoint

    def restore_for_training(self, checkpoint, prefix, log) -> None:
        stored = {name.split("/")[0] for name, _ in tf.train.list_variables(prefix)}
        if self.cfg.equilibrium and "equilibrium_gate" not in stored:
            # Written before the gate was checkpointed: all else must match; the gate starts
            # open (its initial BCEs), as such a run did on every resume.
            super().checkpoint(training=True).restore(prefix).assert_consumed()
            log(f"note: {prefix} holds no equilibrium gate state (written by an older "
                f"tfvidgen): the gate starts open")
            return
        super().restore_for_training(checkpoint, prefix, log)

    # -- schedules --
    def task_at(self, step: int) -> str:
        """The task of `step` (host side): content pre-training, then the curriculum."""
        cfg = self.cfg
        if step < cfg.pretrain_steps:
            return "content" if cfg.pretrain_adversarial else "pretrain"
        step -= cfg.pretrain_steps
        if cfg.curriculum == "paper":
            return "content" if step % 5 < 3 else "video"
        draws = np.random.default_rng([cfg.curriculum_seed, step]).random(2)
        if draws[0] < cfg.content_probability:
            return "content"
        progress = min(1.0, step / cfg.video_task_ramp_steps)
        p_video = cfg.video_task_start + (cfg.video_task_end - cfg.video_task_start) * progress
        return "video" if draws[1] < p_video else "pred"

    def phases(self, step: int) -> tuple:
        task = self.task_at(step)
        if not self.cfg.equilibrium or task not in _GATED_TASKS:
            return _TASK_PHASES[task]
        d_phase, encoder_phase, generator_phase = _TASK_PHASES[task]
        real, fake = (float(v) for v in self.gate_state[task].numpy())
        margin = (self.cfg.equilibrium_pred_margin if task == "pred"
                  else self.cfg.equilibrium_margin)
        low, high = self.cfg.equilibrium_value - margin, self.cfg.equilibrium_value + margin
        train_d = not (real < low or fake < low)
        train_g = not (real > high or fake > high)
        if not train_d and not train_g:
            train_d = train_g = True
        return tuple(p for p, on in ((d_phase, train_d), (encoder_phase, True),
                                     (generator_phase, train_g)) if on)

    def _progress(self):
        """(scheduled-sampling eps, motion KL weight lambda5) at the current step, in-graph."""
        cfg = self.cfg
        step = _f32(self.step) - cfg.pretrain_steps
        eps = linear_ramp(step, cfg.schedule_start, cfg.schedule_end, 1.0, 0.0)
        kl = linear_ramp(step, cfg.schedule_start, cfg.schedule_end,
                         cfg.lambda_motion_kl_start, cfg.lambda_motion_kl_end)
        return eps, kl

    def _teacher_draws(self, steps: int, eps):
        """bool [2, steps, 2]: whether v~ (row 0) and v_p (row 1) are fed the ground truth
        (content code, history) at each rollout step, with probability eps: one draw per step for
        the whole batch [C], a stateless function of (curriculum_seed, self.step), so every
        replica draws the global batch's."""
        seed = tf.random.experimental.stateless_fold_in(
            tf.stack([tf.cast(self.step, tf.int64), tf.constant(self.cfg.curriculum_seed,
                                                                tf.int64)]), _SALT_TEACHER)
        return tf.random.stateless_uniform([2, steps, 2], seed) < eps

    def _content_kl_weight(self):
        """lambda2, ramped 0 -> lambda2 over the first content_kl_warmup_steps steps [C]."""
        cfg = self.cfg
        if not cfg.content_kl_warmup_steps:
            return tf.constant(cfg.lambda_content_kl)
        return linear_ramp(self.step, 0, cfg.content_kl_warmup_steps, 0.0, cfg.lambda_content_kl)

    # -- phases --
    # Not autograph-converted: plain Python control flow on static values only (conversion
    # cost ~20% of the trace).
    @tf.autograph.experimental.do_not_convert
    def phase_loss(self, phase, batch, context):
        task, role = phase.split("_", 1)
        if task not in context:
            # The first phase of the task runs its forward, recorded on the other phases' tapes
            # too (this phase's tape is already recording).
            with contextlib.ExitStack() as stack:
                for other in _TASK_PHASES[task]:
                    if other != phase:
                        stack.enter_context(self.tape_for(context, other))
                context[task] = getattr(self, f"_{task}_forward")(batch)
        total, logs = getattr(self, f"_{task}_{role}_loss")(batch, context[task])
        if self.cfg.weight_decay:
            # PyTorch Adam's weight_decay: gradient + wd * w, i.e. wd/2 * sum w^2 in the loss
            variables = self.optimizer_variables(self.PHASES[phase])
            total += 0.5 * self.cfg.weight_decay * tf.add_n(
                [tf.reduce_sum(tf.square(tf.convert_to_tensor(v))) for v in variables])
        return total, logs

    def _labels(self, batch):
        return batch.get("label") if self.cfg.conditional else None

    def _sample(self, mu, logvar, seeds, salt):
        eps = noise.per_example_normal(seeds, salt, mu.shape[-1])
        return mu + tf.exp(0.5 * logvar) * eps

    def _record_gate(self, task, real_logits, fake_logits, prior_logits):
        """Stores the gate's (real cost, fake cost) [C]: the fake cost is the mean of the BCEs of
        x~ (reconstruction) and x_p (prior sample) in the pred and video tasks, and
        mean(2 (1 - w) BCE(x~), 2 w BCE(x_p)) = (1 - w) BCE(x~) + w BCE(x_p) in the content task
        (w = prior_weight: x_p's alone at w = 1)."""
        if self.cfg.equilibrium:
            share = self.cfg.prior_weight if task == "content" else 0.5
            fake = ((1.0 - share) * _bce(fake_logits, 0.0) + share * _bce(prior_logits, 0.0))
            self.gate_state[task].assign(tf.stack([_bce(real_logits, 1.0), fake]))

    # content task
    def _content_forward(self, batch, prior: bool = True):
        video, seeds, labels = batch["video"], batch["seed"], self._labels(batch)
        index = noise.per_example_randint(seeds, _SALT_FRAME, tf.shape(video)[1])
        real = tf.gather(video, index, batch_dims=1)
        mu, logvar = self.content_encoder(real, labels, training=True)
        z = self._sample(mu, logvar, seeds, _SALT_POSTERIOR_C)
        recon = _f32(self.generator.content_frame(z, labels, True)[0])
        out = {"real": real, "mu": mu, "logvar": logvar, "recon": recon}
        if prior:
            z_prior = noise.per_example_normal(seeds, _SALT_PRIOR_C, self.cfg.content_dim)
            out["prior"] = _f32(self.generator.content_frame(z_prior, labels, True)[0])
        return out

    def _image_d_loss(self, task, real, recon, prior, prior_weight):
        d = self.image_discriminator
        real_logits = d(real, training=True)
        fake_logits = d(tf.stop_gradient(recon), training=True)
        prior_logits = d(tf.stop_gradient(prior), training=True)
        total = (_bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
                 + _bce(prior_logits, 0.0, prior_weight))
        self._record_gate(task, real_logits, fake_logits, prior_logits)
        return total, {f"{task}_d_total": total,
                       f"{task}_d_real": tf.reduce_mean(_f32(real_logits)),
                       f"{task}_d_fake": tf.reduce_mean(_f32(fake_logits))}

    def _image_g_adv(self, task, real, recon, prior, prior_weight):
        d = self.image_discriminator
        fake_logits, prior_logits = d(recon, training=False), d(prior, training=False)
        if self.cfg.equilibrium:
            self._record_gate(task, d(tf.stop_gradient(real), training=False),
                              tf.stop_gradient(fake_logits), tf.stop_gradient(prior_logits))
        return self.cfg.image_adv_weight * (_bce(fake_logits, 1.0)
                                            + _bce(prior_logits, 1.0, prior_weight))

    def _content_d_loss(self, batch, fwd):
        return self._image_d_loss("content", fwd["real"], fwd["recon"], fwd["prior"],
                                  self.cfg.prior_weight)

    def _content_encoder_loss(self, batch, fwd):
        kl = kl_divergence(fwd["mu"], fwd["logvar"])
        recon = mse(fwd["recon"], fwd["real"])
        kl_weight = self._content_kl_weight()
        total = kl_weight * kl + self.cfg.lambda_recon * recon
        logs = {"content_kl": kl, "content_mse": recon, "content_encoder_total": total}
        if self.cfg.content_kl_warmup_steps:
            logs["content_kl_weight"] = kl_weight
        return total, logs

    def _content_generator_loss(self, batch, fwd):
        recon = mse(fwd["recon"], fwd["real"])
        adv = self._image_g_adv("content", fwd["real"], fwd["recon"], fwd["prior"],
                                self.cfg.prior_weight)
        total = self.cfg.lambda_recon * recon + adv
        return total, {"content_g_adv": adv, "content_generator_total": total}

    # content pre-training: the VAE alone [P][C]; no prior sample (nothing scores it)
    def _pretrain_forward(self, batch):
        return self._content_forward(batch, prior=False)

    _pretrain_encoder_loss = _content_encoder_loss

    def _pretrain_generator_loss(self, batch, fwd):
        total = self.cfg.lambda_recon * mse(fwd["recon"], fwd["real"])
        return total, {"pretrain_generator_total": total}

    # motion tasks: shared ground-truth encodings
    def _ground_truth(self, batch):
        """E_c means of every real frame, E_m of every real difference, and the content maps of
        every real frame (the scale-feature targets, no gradient)."""
        video, labels = batch["video"], self._labels(batch)
        b, t = tf.shape(video)[0], video.shape[1]
        frames = tf.reshape(video, [-1, *video.shape[2:]])
        per_frame_labels = (None if labels is None
                            else tf.reshape(tf.tile(labels[:, None], [1, t]), [-1]))
        mu_c = self.generator.content_mean(frames, per_frame_labels, True)
        _, maps = self.generator.content_frame(tf.stop_gradient(mu_c), per_frame_labels, True)
        diffs = frame_difference(video[:, :-1], video[:, 1:], self.cfg, generated=False)
        diff_labels = (None if labels is None
                       else tf.reshape(tf.tile(labels[:, None], [1, t - 1]), [-1]))
        diff_map, mu_m, logvar_m = self.motion_encoder(
            tf.reshape(diffs, [-1, *video.shape[2:]]), diff_labels, training=True)

        def per_step(x, steps):
            return tf.reshape(x, [b, steps, *x.shape[1:]])
        return {"mu_c": per_step(tf.stop_gradient(mu_c), t),
                "maps": [per_step(tf.stop_gradient(m), t) for m in maps],
                # index s - 1 holds the difference x_s - x_{s-1}, s = 1 .. T-1
                "diff_map": per_step(diff_map, t - 1), "mu_m": per_step(mu_m, t - 1),
                "logvar_m": per_step(logvar_m, t - 1)}

    def _scale_loss(self, maps, targets):
        """Sum over fused scales below the RGB output of MSE(fused map, content map) [P][C]."""
        terms = [mse(maps[s], targets[s]) for s in self.cfg.fused_scales
                 if s < NUM_FUSION_SCALES - 1]
        return tf.add_n(terms) if terms else tf.constant(0.0)

    # pred task
    def _pred_forward(self, batch):
        video, seeds, labels = batch["video"], batch["seed"], self._labels(batch)
        t_max = video.shape[1]
        gt = self._ground_truth(batch)
        mg = self.motion_generator
        # The history state before predicting frame s (s = 1 .. T-1): diffs 1 .. s-1 advanced.
        state = mg.initial_state(tf.shape(video)[0])
        states = [state]
        for s in range(1, t_max - 1):
            state = mg.advance(state, gt["diff_map"][:, s - 1])
            states.append(state)
        target_t = noise.per_example_randint(seeds, _SALT_PRED_T, t_max - 1) + 1
        pick = lambda x, t: tf.gather(x, t, batch_dims=1)
        c_states = tf.stack([s[0] for s in states], 1)
        h_states = tf.stack([s[1] for s in states], 1)
        state = (pick(c_states, target_t - 1), pick(h_states, target_t - 1))
        z_prev = pick(gt["mu_c"], target_t - 1)
        mu_m, logvar_m = pick(gt["mu_m"], target_t - 1), pick(gt["logvar_m"], target_t - 1)
        eps_post = self._sample(mu_m, logvar_m, seeds, _SALT_POSTERIOR_M)
        eps_prior = noise.per_example_normal(seeds, _SALT_PRIOR_M, self.cfg.motion_dim)
        # posterior and prior predictions in one call over the doubled batch
        twice = lambda x: None if x is None else tf.concat([x, x], 0)
        frames, maps = self.generator.next_frame(
            twice(z_prev), (twice(state[0]), twice(state[1])),
            tf.concat([eps_post, eps_prior], 0), twice(labels), True)
        size = tf.shape(video)[0]
        targets = [pick(m, target_t) for m in gt["maps"]]
        return {"real": pick(video, target_t), "recon": _f32(frames[:size]),
                "prior": _f32(frames[size:]), "mu": mu_m, "logvar": logvar_m,
                "scale": self._scale_loss([m[:size] for m in maps], targets)}

    def _pred_d_loss(self, batch, fwd):
        return self._image_d_loss("pred", fwd["real"], fwd["recon"], fwd["prior"], 1.0)

    def _pred_encoder_loss(self, batch, fwd):
        kl = kl_divergence(fwd["mu"], fwd["logvar"])
        recon = mse(fwd["recon"], fwd["real"])
        total = (self.cfg.lambda_pred_kl * kl + self.cfg.lambda_recon * recon
                 + self.cfg.lambda_scale * fwd["scale"])
        return total, {"pred_kl": kl, "pred_mse": recon, "pred_scale": fwd["scale"],
                       "pred_encoder_total": total}

    def _pred_generator_loss(self, batch, fwd):
        recon = mse(fwd["recon"], fwd["real"])
        adv = self._image_g_adv("pred", fwd["real"], fwd["recon"], fwd["prior"], 1.0)
        total = self.cfg.lambda_recon * recon + adv + self.cfg.lambda_scale * fwd["scale"]
        return total, {"pred_g_adv": adv, "pred_generator_total": total}

    # video task
    def _video_rollout(self, gt, labels, eps_at, teacher, scored):
        """Frames [N, T, ...] from the content reconstruction of frame 0: frame t from frame
        t-1's content code and the history, each fed the ground truth where teacher[t-1] [N, 2]
        (content, history) is true; and sum_t scale-feature loss of the first `scored` rows."""
        g, mg = self.generator, self.motion_generator
        steps = gt["mu_m"].shape[1]
        first = _f32(g.content_frame(gt["mu_c"][:, 0], labels, True)[0])
        frames, state, scale = [first], mg.initial_state(tf.shape(first)[0]), 0.0
        for t in range(1, steps + 1):
            use_content, use_history = teacher[t - 1][:, 0], teacher[t - 1][:, 1]
            z_gen = g.content_mean(frames[t - 1], labels, True)
            z_prev = tf.where(use_content[:, None], gt["mu_c"][:, t - 1], z_gen)
            if t >= 2:
                generated = frame_difference(frames[t - 2], frames[t - 1], self.cfg, True)
                gen_map = self.motion_encoder(generated, labels, training=True)[0]
                history = tf.where(use_history[:, None, None, None],
                                   tf.cast(gt["diff_map"][:, t - 2], gen_map.dtype), gen_map)
                state = mg.advance(state, history)
            frame, maps = g.next_frame(z_prev, state, eps_at(t - 1), labels, True)
            frames.append(_f32(frame))
            scale += self._scale_loss([m[:scored] for m in maps],
                                      [m[:scored, t] for m in gt["maps"]])
        return tf.stack(frames, 1), scale

    def _video_forward(self, batch):
        video, seeds, labels = batch["video"], batch["seed"], self._labels(batch)
        steps, m = video.shape[1] - 1, self.cfg.motion_dim
        gt = self._ground_truth(batch)
        eps, kl_weight = self._progress()
        eps_post = self._sample(tf.reshape(gt["mu_m"], [-1, steps * m]),
                                tf.reshape(gt["logvar_m"], [-1, steps * m]),
                                seeds, _SALT_POSTERIOR_M)
        eps_prior = noise.per_example_normal(seeds, _SALT_PRIOR_M, steps * m)
        motion = tf.reshape(tf.concat([eps_post, eps_prior], 0), [-1, steps, m])
        size = tf.shape(video)[0]
        draws = tf.repeat(self._teacher_draws(steps, eps), size, axis=0)     # [2B, steps, 2]
        # v~ and v_p in ONE rollout over the doubled batch: half the graph to trace and
        # differentiate (BN statistics are over both halves [I]).
        twice = lambda x: None if x is None else tf.concat([x, x], 0)
        doubled = {"mu_c": twice(gt["mu_c"]), "diff_map": twice(gt["diff_map"]),
                   "mu_m": gt["mu_m"], "maps": gt["maps"]}
        frames, scale = self._video_rollout(doubled, twice(labels), lambda i: motion[:, i],
                                            [draws[:, i] for i in range(steps)],
                                            scored=size)
        # The code's KL is a mean over the B x (T-1) rows; Eq. 5's sum_t of batch means is
        # (T-1) times it.
        kl = kl_divergence(tf.reshape(gt["mu_m"], [-1, m]), tf.reshape(gt["logvar_m"], [-1, m]))
        if self.cfg.motion_kl_reduction == "sum":
            kl *= steps
        return {"recon": frames[:size], "prior": frames[size:], "kl": kl,
                "kl_weight": kl_weight, "teacher_probability": eps, "scale": scale / steps}

    def _video_d_loss(self, batch, fwd):
        d, labels = self.video_discriminator, self._labels(batch)
        real_logits, real_cls = d(batch["video"], training=True)
        fake_logits, fake_cls = d(tf.stop_gradient(fwd["recon"]), training=True)
        prior_logits, prior_cls = d(tf.stop_gradient(fwd["prior"]), training=True)
        total = _bce(real_logits, 1.0) + _bce(fake_logits, 0.0) + _bce(prior_logits, 0.0)
        logs = {}
        if real_cls is not None:
            cls = _class_loss(real_cls, labels)
            if self.cfg.d_class_on_fakes:
                cls += _class_loss(fake_cls, labels) + _class_loss(prior_cls, labels)
            total += cls
            logs["video_d_class"] = cls
        self._record_gate("video", real_logits, fake_logits, prior_logits)
        return total, {**logs, "video_d_total": total,
                       "video_d_real": tf.reduce_mean(real_logits),
                       "video_d_fake": tf.reduce_mean(fake_logits)}

    def _video_encoder_loss(self, batch, fwd):
        recon = mse(fwd["recon"], batch["video"])
        total = (fwd["kl_weight"] * fwd["kl"] + self.cfg.lambda_recon * recon
                 + self.cfg.lambda_scale * fwd["scale"])
        return total, {"video_kl": fwd["kl"], "video_kl_weight": fwd["kl_weight"],
                       "video_mse": recon, "video_scale": fwd["scale"],
                       "teacher_probability": fwd["teacher_probability"],
                       "video_encoder_total": total}

    def _video_generator_loss(self, batch, fwd):
        d, labels = self.video_discriminator, self._labels(batch)
        fake_logits, fake_cls = d(fwd["recon"], training=False)
        prior_logits, prior_cls = d(fwd["prior"], training=False)
        adv = _bce(fake_logits, 1.0) + _bce(prior_logits, 1.0)
        if self.cfg.equilibrium:
            self._record_gate("video", d(batch["video"], training=False)[0],
                              tf.stop_gradient(fake_logits), tf.stop_gradient(prior_logits))
        recon = mse(fwd["recon"], batch["video"])
        total = self.cfg.lambda_recon * recon + adv + self.cfg.lambda_scale * fwd["scale"]
        logs = {"video_g_adv": adv}
        if fake_cls is not None:
            cls = _class_loss(fake_cls, labels) + _class_loss(prior_cls, labels)
            total += cls
            logs["video_g_class"] = cls
        return total, {**logs, "video_generator_total": total}

    # -- inspection (tfvidgen.explain) --
    def discriminator_scores(self, videos, labels=None) -> dict:
        """D_V's realness logit, and D_I's patch logits averaged over patches and frames."""
        del labels                              # the discriminators take no label
        video_logits = self.video_discriminator(videos, training=False)[0]
        return {"video_discriminator": tf.reshape(tf.cast(video_logits, tf.float32), [-1]),
                "image_discriminator": base.frame_scores(self.image_discriminator, videos,
                                                            training=False)}

    def explain_views(self) -> dict:
        if not self.cfg.fused_scales or not self.cfg.masks:
            return {}
        return {"motion_masks": ("TwoStreamVAN's motion masks M of the sampling generator, one "
                                 "panel per fusion scale (paper Fig. 8): where the adapted map "
                                 "replaces the content map (1) or the content passes (0); frame "
                                 "0 of an unwarmed video has none",
                                 self._motion_mask_view)}

    def _motion_mask_view(self, inputs):
        with recorded_masks() as found:
            video = self.sampling_generator(inputs, training=False)
        cfg, size = self.cfg, tf.shape(video)[2:4]
        panels = {}
        for scale in cfg.fused_scales:
            steps = [tf.cast(m[..., 0], tf.float32) for s, m in found if s == scale]
            # frame 0 comes from the content stream alone: no mask
            masks = tf.stack([tf.zeros_like(steps[0])] + steps, axis=1)[:, cfg.warmup_frames:]
            side = cfg.base_size * 2 ** scale
            panels[f"mask {side}x{side}"] = base.upsample_maps(masks, size)
        return video, panels

    # -- serving --
    #: longest video the num_frames endpoint generates
    max_serving_frames = 1024

    def endpoint_inputs(self) -> dict:
        declared = super().endpoint_inputs()
        seed, *given = declared["sample"]
        length = base.Input("num_frames", "num_frames", (), "int32",
                            int_range=(1, self.max_serving_frames + 1), per_request=True)
        return {**declared, "num_frames": [seed, length, *given]}

    def serving_endpoints(self) -> dict:
        """The base's three, plus num_frames: seed [B], num_frames (scalar int32)(, label [B])
        -> {"video": uint8 [B, num_frames, H, W, 3]}; every endpoint traced on the core-op path
        of the adaptive convolution (no XLA kernels in the SavedModel)."""
        endpoints = super().serving_endpoints()
        cfg = self.cfg
        generator = self.sampling_generator
        declared = self.endpoint_inputs()["num_frames"]

        def by_length(*args):
            inputs = self.checked_inputs(declared, args)
            seeds = noise.seeds_from_ints(inputs["seed"])
            keys = salted_keys(seeds, _SALT_Z_M)
            z_c = noise.per_example_normal(seeds, _SALT_Z_C, cfg.content_dim)
            steps = inputs["num_frames"] + cfg.warmup_frames - 1
            frames = generator.rollout(z_c, inputs.get("label"),
                                       lambda i: motion_step_noise(keys, i, cfg.motion_dim),
                                       steps)
            return base.video_output(frames[:, cfg.warmup_frames:])

        endpoints["num_frames"] = (by_length, base.signature_of(declared))
        return {name: (_core_ops(fn), signature) for name, (fn, signature) in endpoints.items()}

def _core_ops(fn):
    """fn traced with the adaptive convolution's plain (non-XLA) path."""
    def traced(*args):
        with adaptive_conv.without_jit():
            return fn(*args)
    return traced
