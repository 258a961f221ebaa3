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
labels (transfer(image, video, labels); no default: a ValueError says so). generate(...,
num_frames=N) renders N frames (G_T is an LSTM).

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
- [I] `content_skips` (default off; not in the paper): U-Net skips (DRNet / Monkey-Net style)
  from the conditioning image (x^1 for V~_x, in both reconstruction_content modes; y for V~_y)
  into G_I: E_C's map of each size and, at full resolution, the image itself, the same in every
  frame (G_I gets one more upsampling level and a 3x3 conv to RGB). Without them, every pixel
  of the background passes through the content_dim-wide z_c.
"""

from __future__ import annotations

import tensorflow as tf

from tfvidgen import losses, pixels
from tfvidgen.config import TrainConfig
from tfvidgen.layers import noise
from tfvidgen.models import base
from tfvidgen.models.dual_mtgan_config import DualMTGANConfig
from tfvidgen.models.dual_mtgan_networks import (ContentEncoder, DualMTGANGenerator,
                                                 MotionEncoder, PairImageDiscriminator,
                                                 VideoDiscriminator)

__all__ = ["DualMTGANConfig", "ContentEncoder", "MotionEncoder", "DualMTGANGenerator",
           "PairImageDiscriminator", "VideoDiscriminator", "DualMTGAN", "image_pairs"]

(_SALT_EPS, _SALT_Z_MOTION, _SALT_Z_SAMPLED, _SALT_FRAME_V, _SALT_FRAME_X, _SALT_FRAME_VY,
 _SALT_FRAME_YD, _SALT_FRAME_YS, _SALT_TARGET_FRAME) = range(1, 10)


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


def _mean_abs(a, b):
    return tf.reduce_mean(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)))


class DualMTGAN(base.VideoGAN):
    """Trainable Dual-MTGAN; see the module docstring.

    Phases: d_main (D_I and D_V on detached fakes) then g_main (E_C, E_M, G_T, G_I through the
    updated D on the same fakes), one forward per step recorded on g_main's tape (as G3AN).
    Inputs of generate(): image [H, W, 3] in [-1, 1] (role image) and z_motion (role motion,
    N(0, I)); transfer() replaces z_motion by E_M's mean of a video."""

    Config = DualMTGANConfig
    CAPABILITIES = base.Capabilities(variable_length=True, image_input=True, transfer=True)
    PHASES = {"d_main": "d_optimizer", "g_main": "g_optimizer"}
    #: what train_lib should stream for this model (pipeline.make_triples_dataset)
    TRAINING_DATA = "triples"

    def __init__(self, cfg: DualMTGANConfig, train: TrainConfig, **kwargs):
        self.cfg = cfg.validate()
        super().__init__(train, **kwargs)
        self.content_encoder = ContentEncoder(cfg, name="content_encoder")
        self.motion_encoder = MotionEncoder(cfg, name="motion_encoder")
        self.add_generator(lambda: DualMTGANGenerator(cfg, name="generator"))
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
        size = self.cfg.resolution
        inputs = self.sample_inputs(2, 0, labels=tf.zeros([2], tf.int32),
                                    images=tf.zeros([2, size, size, 3]))
        videos = self.generate(inputs, use_ema=False)
        if self.ema_generator is not None:
            self.generate(inputs)
        self.motion_encoder(videos)
        self.image_discriminator((videos[:, 0], videos[:, 1]))
        self.video_discriminator(videos, inputs.get("label"))

    # ---- inference -------------------------------------------------------------------------------
    def run_generator(self, generator, inputs, training, num_frames=None):
        """Stochastic mode [P]: image [B, H, W, 3] in [-1, 1] animated with z_motion [B, Zm];
        any num_frames (G_T is an LSTM)."""
        content, skips = self.content_encoder(inputs["image"], training=training,
                                              with_features=True)
        return generator({"content": content, "z_motion": inputs["z_motion"],
                          "label": inputs.get("label"),
                          "skips": skips if self.cfg.content_skips else None},
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
            image = noise.random_frame(source, batch["seed"], _SALT_TARGET_FRAME)
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
            content_x, features_x = self.content_encoder(frames, training=True,
                                                         with_features=True)
            content_x = tf.reshape(content_x, [shape[0], shape[1], cfg.content_dim])
            content_y, features_y = self.content_encoder(image, training=True,
                                                         with_features=True)
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
            skips = None
            if cfg.content_skips:   # from the conditioning image: x^1 for V~_x, y for V~_y
                skips = []
                for fx, fy in zip(features_x, features_y):
                    first = tf.reshape(fx, tf.concat([shape[:2], tf.shape(fx)[1:]], 0))[:, 0]
                    skips.append(tf.concat([first, fy, fy], 0))
            videos = self.generator.render(content, tf.concat([codes_d, codes_d, codes_s], 0),
                                           training=True, skips=skips)
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
        fake_frames = {k: noise.random_frame(v, seeds, salts[k])
                       for k, v in self._gan_fakes(fakes).items()}
        return image_pairs(triple["source"][:, 0], noise.random_frame(triple["source"], seeds,
                                                                _SALT_FRAME_V),
                           triple["image"],
                           noise.random_frame(triple["target"], seeds, _SALT_FRAME_VY),
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
        adv_image = tf.add_n([losses.bce(lg, p[3], p[4]) for lg, p in zip(logits, pairs)])
        reals = [triple["source"], triple["target"]]
        videos = tf.concat(reals + list(fakes.values()), 0)
        video_labels = None if labels is None else tf.concat(
            [labels, context["target_labels"]] + [labels] * len(fakes), 0)
        v_logits = tf.split(self.video_discriminator(videos, video_labels, training=True),
                            len(reals) + len(fakes))
        adv_video = (tf.add_n([losses.bce(lg, 1.0, 1.0) for lg in v_logits[:len(reals)]])
                     + tf.add_n([losses.bce(lg, 0.0, 1.0) for lg in v_logits[len(reals):]]))
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
        kl = losses.gaussian_kl(context["mean"], context["log_variance"])
        # D runs with training=False: G's step leaves its spectral-norm vectors alone.
        gan_fakes = self._gan_fakes(fakes)
        fake_pairs = [p for p in self._pairs(batch, context, gan_fakes)
                      if p[0].startswith("fake_")]
        logits = tf.split(self.image_discriminator(
            (tf.concat([p[1] for p in fake_pairs], 0), tf.concat([p[2] for p in fake_pairs], 0)),
            training=False), len(fake_pairs))
        adv_image = tf.add_n([losses.bce(lg, 1.0, p[4]) for lg, p in zip(logits, fake_pairs)])
        video_labels = None if labels is None else tf.tile(labels, [len(gan_fakes)])
        v_logits = tf.split(self.video_discriminator(tf.concat(list(gan_fakes.values()), 0),
                                                     video_labels, training=False),
                            len(gan_fakes))
        adv_video = tf.add_n([losses.bce(lg, 1.0, 1.0) for lg in v_logits])
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
    def extra_endpoints(self) -> dict:
        """transfer: image uint8 [B, H, W, 3] + video uint8 [B, T, H, W, 3] (+ label) -> the
        video's motion on the image (deterministic mode)."""
        size, frames = self.cfg.resolution, self.cfg.num_frames
        label = [i for i in self.inputs() if i.role == "label"]
        inputs = [base.Input("image", "image", (size, size, 3), "uint8"),
                  base.Input("video", "video", (frames, size, size, 3), "uint8"), *label]

        def transfer(inputs):
            return self.transfer(pixels.from_uint8(inputs["image"]),
                                 pixels.from_uint8(inputs["video"]), inputs.get("label"))

        return {"transfer": (inputs, transfer)}
