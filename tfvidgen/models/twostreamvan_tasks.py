"""TwoStreamVAN's training tasks (tfvidgen.models.twostreamvan has the paper, the code, the
curriculum and every choice): for content, pretrain, pred and video, the task's forward and the
losses of its phases (its D, its encoder, its generator), as the mixin TwoStreamVANTasks of the
model class. Every loss takes (batch, context): context["forward"] is the task's forward of
this step (phase_loss runs it once)."""

from __future__ import annotations

import tensorflow as tf

from tfvidgen import losses
from tfvidgen.layers import noise
from tfvidgen.models.twostreamvan_config import (NUM_FUSION_SCALES, SALT_FRAME,
                                                 SALT_POSTERIOR_C, SALT_POSTERIOR_M,
                                                 SALT_PRED_T, SALT_PRIOR_C, SALT_PRIOR_M)
from tfvidgen.models.twostreamvan_networks import feedback_frame, frame_difference

__all__ = ["TwoStreamVANTasks"]


def _f32(x):
    return tf.cast(x, tf.float32)


def mse(a, b):
    return tf.reduce_mean(tf.square(_f32(a) - _f32(b)))


def halves(x):
    """The two halves of a doubled batch (posterior, prior) by tf.split: its gradient is one
    concat, where two slices' are two zero-filled full-size maps (StridedSliceGrad)."""
    return tf.split(x, 2, axis=0)


def scored_together(discriminator, inputs):
    """discriminator(x, training=False) of each of `inputs` (equal batch sizes) in ONE call:
    with BN on its moving statistics every example is scored independently, so this equals
    separate calls, with larger, faster convolutions. Each output split back per input
    (None stays None)."""
    outputs = discriminator(tf.concat(inputs, 0), training=False)
    split = lambda x: [None] * len(inputs) if x is None else tf.split(x, len(inputs))  # noqa: E731
    if isinstance(outputs, (tuple, list)):
        return list(zip(*(split(x) for x in outputs)))
    return split(outputs)


def _class_loss(logits, labels):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.cast(labels, tf.int32), _f32(logits)))


class TwoStreamVANTasks:
    """The tasks' forwards and losses; the model class provides the networks, cfg, the
    schedules (_progress, _teacher_draws, _content_kl_weight) and the gate state."""

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
            fake = ((1.0 - share) * losses.bce(fake_logits, 0.0)
                    + share * losses.bce(prior_logits, 0.0))
            self.gate_state[task].assign(tf.stack([losses.bce(real_logits, 1.0), fake]))

    # content task
    def _content_forward(self, batch, prior: bool = True):
        video, seeds, labels = batch["video"], batch["seed"], self._labels(batch)
        real = noise.random_frame(video, seeds, SALT_FRAME)
        mu, logvar = self.content_encoder(real, labels, training=True)
        z = self._sample(mu, logvar, seeds, SALT_POSTERIOR_C)
        recon = _f32(self.generator.content_frame(z, labels, True)[0])
        out = {"real": real, "mu": mu, "logvar": logvar, "recon": recon}
        if prior:
            z_prior = noise.per_example_normal(seeds, SALT_PRIOR_C, self.cfg.content_dim)
            out["prior"] = _f32(self.generator.content_frame(z_prior, labels, True)[0])
        return out

    def _image_d_loss(self, task, real, recon, prior, prior_weight):
        d = self.image_discriminator
        real_logits = d(real, training=True)
        fake_logits = d(tf.stop_gradient(recon), training=True)
        prior_logits = d(tf.stop_gradient(prior), training=True)
        total = (losses.bce(real_logits, 1.0) + losses.bce(fake_logits, 0.0)
                 + losses.bce(prior_logits, 0.0, prior_weight))
        self._record_gate(task, real_logits, fake_logits, prior_logits)
        return total, {f"{task}_d_total": total,
                       f"{task}_d_real": tf.reduce_mean(_f32(real_logits)),
                       f"{task}_d_fake": tf.reduce_mean(_f32(fake_logits))}

    def _image_g_adv(self, task, real, recon, prior, prior_weight):
        d = self.image_discriminator
        fake_logits, prior_logits = scored_together(d, [recon, prior])
        if self.cfg.equilibrium:
            # on its own: in the batch above D's input gradient would be computed for it too
            self._record_gate(task, d(tf.stop_gradient(real), training=False),
                              tf.stop_gradient(fake_logits), tf.stop_gradient(prior_logits))
        return self.cfg.image_adv_weight * (losses.bce(fake_logits, 1.0)
                                            + losses.bce(prior_logits, 1.0, prior_weight))

    def _content_d_loss(self, batch, context):
        fwd = context["forward"]
        return self._image_d_loss("content", fwd["real"], fwd["recon"], fwd["prior"],
                                  self.cfg.prior_weight)

    def _content_encoder_loss(self, batch, context):
        fwd = context["forward"]
        kl = losses.gaussian_kl(fwd["mu"], fwd["logvar"])
        recon = mse(fwd["recon"], fwd["real"])
        kl_weight = self._content_kl_weight()
        total = kl_weight * kl + self.cfg.lambda_recon * recon
        logs = {"content_kl": kl, "content_mse": recon, "content_encoder_total": total}
        if self.cfg.content_kl_warmup_steps:
            logs["content_kl_weight"] = kl_weight
        return total, logs

    def _content_generator_loss(self, batch, context):
        fwd = context["forward"]
        recon = mse(fwd["recon"], fwd["real"])
        adv = self._image_g_adv("content", fwd["real"], fwd["recon"], fwd["prior"],
                                self.cfg.prior_weight)
        total = self.cfg.lambda_recon * recon + adv
        return total, {"content_g_adv": adv, "content_generator_total": total}

    # content pre-training: the VAE alone [P][C]; no prior sample (nothing scores it)
    def _pretrain_forward(self, batch):
        return self._content_forward(batch, prior=False)

    _pretrain_encoder_loss = _content_encoder_loss

    def _pretrain_generator_loss(self, batch, context):
        fwd = context["forward"]
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
        target_t = noise.per_example_randint(seeds, SALT_PRED_T, t_max - 1) + 1
        pick = lambda x, t: tf.gather(x, t, batch_dims=1)
        c_states = tf.stack([s[0] for s in states], 1)
        h_states = tf.stack([s[1] for s in states], 1)
        state = (pick(c_states, target_t - 1), pick(h_states, target_t - 1))
        z_prev = pick(gt["mu_c"], target_t - 1)
        mu_m, logvar_m = pick(gt["mu_m"], target_t - 1), pick(gt["logvar_m"], target_t - 1)
        eps_post = self._sample(mu_m, logvar_m, seeds, SALT_POSTERIOR_M)
        eps_prior = noise.per_example_normal(seeds, SALT_PRIOR_M, self.cfg.motion_dim)
        # posterior and prior predictions in one call over the doubled batch
        twice = lambda x: None if x is None else tf.concat([x, x], 0)
        frames, maps = self.generator.next_frame(
            twice(z_prev), (twice(state[0]), twice(state[1])),
            tf.concat([eps_post, eps_prior], 0), twice(labels), True)
        targets = [pick(m, target_t) for m in gt["maps"]]
        recon, prior = halves(frames)
        return {"real": pick(video, target_t), "recon": _f32(recon), "prior": _f32(prior),
                "mu": mu_m, "logvar": logvar_m,
                "scale": self._scale_loss([halves(m)[0] for m in maps], targets)}

    def _pred_d_loss(self, batch, context):
        fwd = context["forward"]
        return self._image_d_loss("pred", fwd["real"], fwd["recon"], fwd["prior"], 1.0)

    def _pred_encoder_loss(self, batch, context):
        fwd = context["forward"]
        kl = losses.gaussian_kl(fwd["mu"], fwd["logvar"])
        recon = mse(fwd["recon"], fwd["real"])
        total = (self.cfg.lambda_pred_kl * kl + self.cfg.lambda_recon * recon
                 + self.cfg.lambda_scale * fwd["scale"])
        return total, {"pred_kl": kl, "pred_mse": recon, "pred_scale": fwd["scale"],
                       "pred_encoder_total": total}

    def _pred_generator_loss(self, batch, context):
        fwd = context["forward"]
        recon = mse(fwd["recon"], fwd["real"])
        adv = self._image_g_adv("pred", fwd["real"], fwd["recon"], fwd["prior"], 1.0)
        total = self.cfg.lambda_recon * recon + adv + self.cfg.lambda_scale * fwd["scale"]
        return total, {"pred_g_adv": adv, "pred_generator_total": total}

    # video task
    def _video_rollout(self, gt, labels, eps_at, teacher):
        """Frames [N, T, ...] of a doubled batch (N = 2B) from the content reconstruction of
        frame 0: frame t from frame t-1's content code and the history, each fed the ground
        truth where teacher[t-1] [N, 2] (content, history) is true; and sum_t scale-feature loss
        of the first half (gt["maps"] holds the B real videos')."""
        g, mg = self.generator, self.motion_generator
        steps = gt["mu_m"].shape[1]
        first = _f32(g.content_frame(gt["mu_c"][:, 0], labels, True)[0])
        frames, state, scale = [first], mg.initial_state(tf.shape(first)[0]), 0.0
        fed = [first]          # what the next steps see: the frames, clipped if clip_feedback
        for t in range(1, steps + 1):
            use_content, use_history = teacher[t - 1][:, 0], teacher[t - 1][:, 1]
            z_gen = g.content_mean(fed[t - 1], labels, True)
            z_prev = tf.where(use_content[:, None], gt["mu_c"][:, t - 1], z_gen)
            if t >= 2:
                generated = frame_difference(fed[t - 2], fed[t - 1], self.cfg, True)
                gen_map = self.motion_encoder(generated, labels, training=True)[0]
                history = tf.where(use_history[:, None, None, None],
                                   tf.cast(gt["diff_map"][:, t - 2], gen_map.dtype), gen_map)
                state = mg.advance(state, history)
            frame, maps = g.next_frame(z_prev, state, eps_at(t - 1), labels, True)
            frames.append(_f32(frame))
            fed.append(feedback_frame(frames[-1], self.cfg))
            scale += self._scale_loss([halves(m)[0] for m in maps],
                                      [m[:, t] for m in gt["maps"]])
        return tf.stack(frames, 1), scale

    def _video_forward(self, batch):
        video, seeds, labels = batch["video"], batch["seed"], self._labels(batch)
        steps, m = video.shape[1] - 1, self.cfg.motion_dim
        gt = self._ground_truth(batch)
        eps, kl_weight = self._progress()
        eps_post = self._sample(tf.reshape(gt["mu_m"], [-1, steps * m]),
                                tf.reshape(gt["logvar_m"], [-1, steps * m]),
                                seeds, SALT_POSTERIOR_M)
        eps_prior = noise.per_example_normal(seeds, SALT_PRIOR_M, steps * m)
        motion = tf.reshape(tf.concat([eps_post, eps_prior], 0), [-1, steps, m])
        size = tf.shape(video)[0]
        draws = tf.repeat(self._teacher_draws(steps, eps), size, axis=0)     # [2B, steps, 2]
        # v~ and v_p in ONE rollout over the doubled batch: half the graph to trace and
        # differentiate (BN statistics are over both halves [I]).
        twice = lambda x: None if x is None else tf.concat([x, x], 0)
        doubled = {"mu_c": twice(gt["mu_c"]), "diff_map": twice(gt["diff_map"]),
                   "mu_m": gt["mu_m"], "maps": gt["maps"]}
        frames, scale = self._video_rollout(doubled, twice(labels), lambda i: motion[:, i],
                                            [draws[:, i] for i in range(steps)])
        # The code's KL is a mean over the B x (T-1) rows; Eq. 5's sum_t of batch means is
        # (T-1) times it.
        kl = losses.gaussian_kl(tf.reshape(gt["mu_m"], [-1, m]),
                                tf.reshape(gt["logvar_m"], [-1, m]))
        if self.cfg.motion_kl_reduction == "sum":
            kl *= steps
        recon, prior = halves(frames)
        return {"recon": recon, "prior": prior, "kl": kl,
                "kl_weight": kl_weight, "teacher_probability": eps, "scale": scale / steps}

    def _video_d_loss(self, batch, context):
        fwd = context["forward"]
        d, labels = self.video_discriminator, self._labels(batch)
        real_logits, real_cls = d(batch["video"], training=True)
        fake_logits, fake_cls = d(tf.stop_gradient(fwd["recon"]), training=True)
        prior_logits, prior_cls = d(tf.stop_gradient(fwd["prior"]), training=True)
        total = (losses.bce(real_logits, 1.0) + losses.bce(fake_logits, 0.0)
                 + losses.bce(prior_logits, 0.0))
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

    def _video_encoder_loss(self, batch, context):
        fwd = context["forward"]
        recon = mse(fwd["recon"], batch["video"])
        total = (fwd["kl_weight"] * fwd["kl"] + self.cfg.lambda_recon * recon
                 + self.cfg.lambda_scale * fwd["scale"])
        return total, {"video_kl": fwd["kl"], "video_kl_weight": fwd["kl_weight"],
                       "video_mse": recon, "video_scale": fwd["scale"],
                       "teacher_probability": fwd["teacher_probability"],
                       "video_encoder_total": total}

    def _video_generator_loss(self, batch, context):
        fwd = context["forward"]
        d, labels = self.video_discriminator, self._labels(batch)
        (fake_logits, fake_cls), (prior_logits, prior_cls) = scored_together(
            d, [fwd["recon"], fwd["prior"]])
        adv = losses.bce(fake_logits, 1.0) + losses.bce(prior_logits, 1.0)
        if self.cfg.equilibrium:
            # on its own: in the batch above D_V's input gradient would be computed for it too
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
