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

import numpy as np
import tensorflow as tf

from tfvidgen.config import TrainConfig
from tfvidgen.layers import adaptive_conv, noise
from tfvidgen.models import base
from tfvidgen.models.twostreamvan_config import (SALT_TEACHER, SALT_Z_C, SALT_Z_M,
                                                 TwoStreamVANConfig)
from tfvidgen.models.twostreamvan_networks import (ImageDiscriminator, TwoStreamVANGenerator,
                                                   VideoDiscriminator)
from tfvidgen.models.twostreamvan_tasks import TwoStreamVANTasks

__all__ = ["TwoStreamVANConfig", "TwoStreamVANGenerator", "TwoStreamVAN"]



def _f32(x):
    return tf.cast(x, tf.float32)


def linear_ramp(step, start, end, first, last):
    """first -> last linearly as step goes start -> end (clamped), in-graph."""
    progress = tf.clip_by_value((_f32(step) - start) / float(end - start), 0.0, 1.0)
    return first + (last - first) * progress


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


class TwoStreamVAN(TwoStreamVANTasks, base.VideoGAN):
    """Trainable TwoStreamVAN; see the module docstring for the paper, the code and departures.

    Tasks content / pred / video, each three phases: its D (on detached fakes), its encoder
    (VAE losses), its generator (reconstruction + adversarial through the updated D); pretrain
    has the encoder and generator phases only. The task's forward runs once, in its first phase,
    recorded on the tapes of the others."""

    Config = TwoStreamVANConfig
    CAPABILITIES = base.Capabilities(variable_length=True)
    PHASES = _PHASE_OPTIMIZERS

    def __init__(self, cfg: TwoStreamVANConfig, train: TrainConfig, **kwargs):
        self.cfg = cfg.validate()
        super().__init__(train, **kwargs)
        self.add_generator(lambda: TwoStreamVANGenerator(cfg, name="generator"))
        self.image_discriminator = ImageDiscriminator(cfg, name="image_discriminator")
        self.video_discriminator = VideoDiscriminator(cfg, name="video_discriminator")
        # The equilibrium gate's last D BCEs (real, fake) per task: read on the host by
        # phases(), so not a network variable; training_state() when gating is on. MEAN:
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

    def active_phases(self) -> tuple:
        """The phases of this configuration's tasks (the curriculum's, and pre-training's)."""
        cfg = self.cfg
        tasks = (["content", "video"] + (["pred"] if cfg.curriculum == "code" else [])
                 + (["pretrain"] if cfg.pretrain_steps and not cfg.pretrain_adversarial else []))
        return tuple(p for t in tasks for p in _TASK_PHASES[t])

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
        declared = [base.Input("z_content", "appearance", (cfg.content_dim,), salt=SALT_Z_C),
                    base.Input("z_motion", "motion", (cfg.motion_steps, cfg.motion_dim),
                               salt=SALT_Z_M)]
        if cfg.conditional:
            declared.append(base.Input("label", "label", (), "int32",
                                       int_range=(0, cfg.num_classes)))
        return declared

    def draw_latent(self, spec, seeds, num_frames=None):
        """eps_m per motion step from (seed, salt, step): a longer video (num_frames) starts
        with the default-length video of the same seed."""
        if spec.name != "z_motion":
            return super().draw_latent(spec, seeds)
        cfg = self.cfg
        keys = noise.salted_keys(seeds, SALT_Z_M)
        steps = cfg.motion_steps if num_frames is None else num_frames + cfg.warmup_frames - 1
        if isinstance(steps, int):
            return tf.stack([noise.step_normal(keys, i, cfg.motion_dim) for i in range(steps)],
                            axis=1)
        per_step = tf.map_fn(lambda i: noise.step_normal(keys, i, cfg.motion_dim),
                             tf.range(tf.cast(steps, tf.int32)),
                             fn_output_signature=tf.TensorSpec([None, cfg.motion_dim]))
        return tf.transpose(per_step, [1, 0, 2])

    def run_generator(self, generator, inputs, training, num_frames=None):
        """num_frames: the rollout uses the first num_frames + warmup_frames - 1 motion steps."""
        if num_frames is not None:
            steps = base.checked_steps(inputs["z_motion"],
                                       num_frames + self.cfg.warmup_frames - 1)
            inputs = {**inputs, "z_motion": inputs["z_motion"][:, :steps]}
        return generator(inputs, training=training)

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

    def training_state(self) -> dict:
        """With equilibrium gating: the gate's stored BCEs, so a resumed run gates its first
        steps as the uninterrupted run would (an older checkpoint without them: the gate starts
        open, its initial BCEs)."""
        return {"equilibrium_gate": dict(self.gate_state)} if self.cfg.equilibrium else {}

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
                                                                tf.int64)]), SALT_TEACHER)
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
        if "forward" not in context:          # one task per step
            # The first phase of the task runs its forward, recorded on the other phases' tapes
            # too (this phase's tape is already recording).
            with contextlib.ExitStack() as stack:
                for other in _TASK_PHASES[task]:
                    if other != phase:
                        stack.enter_context(self.tape_for(context, other))
                context["forward"] = getattr(self, f"_{task}_forward")(batch)
        total, logs = getattr(self, f"_{task}_{role}_loss")(batch, context)
        if self.cfg.weight_decay:
            # PyTorch Adam's weight_decay: gradient + wd * w, i.e. wd/2 * sum w^2 in the loss
            variables = self.optimizer_variables(self.PHASES[phase])
            total += 0.5 * self.cfg.weight_decay * tf.add_n(
                [tf.reduce_sum(tf.square(tf.convert_to_tensor(v))) for v in variables])
        return total, logs

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
        with self.sampling_generator.content_generator.recorded_masks() as found:
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
    def serving_context(self):
        """Endpoints are traced on the adaptive convolution's core-op path (no XLA kernels in
        the SavedModel)."""
        return adaptive_conv.without_jit()
