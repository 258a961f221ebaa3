"""Adversarial losses and penalties as pure functions (TF-GAN naming).

Every function returns the mean over ITS batch, i.e. the per-replica mean; the one division by the
replica count happens in `base.VideoGAN` (distribute.scale_for_replicas), so N replicas apply the
update one device would apply to the global batch. Inputs are logits of any dtype; maths runs in
float32 (mixed-precision safe). Reductions work for any rank.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["bce_discriminator_loss", "nonsaturating_generator_loss", "hinge_discriminator_loss",
           "hinge_generator_loss", "r1_penalty"]


def _f32(x):
    return tf.cast(x, tf.float32)


def bce_discriminator_loss(real_logits, fake_logits):
    """DCGAN D loss: -log sigmoid(D(real)) - log(1 - sigmoid(D(fake))), batch means."""
    return (tf.reduce_mean(tf.nn.softplus(-_f32(real_logits)))
            + tf.reduce_mean(tf.nn.softplus(_f32(fake_logits))))


def nonsaturating_generator_loss(fake_logits):
    """Non-saturating G loss: -log sigmoid(D(fake))."""
    return tf.reduce_mean(tf.nn.softplus(-_f32(fake_logits)))


def hinge_discriminator_loss(real_logits, fake_logits):
    """max(0, 1 - D(real)) + max(0, 1 + D(fake))."""
    return (tf.reduce_mean(tf.nn.relu(1.0 - _f32(real_logits)))
            + tf.reduce_mean(tf.nn.relu(1.0 + _f32(fake_logits))))


def hinge_generator_loss(fake_logits):
    """-D(fake)."""
    return -tf.reduce_mean(_f32(fake_logits))


def r1_penalty(discriminator_fn, real):
    """R1 (Mescheder et al. 2018): E ||grad_x D(x)||^2 on real data (multiply by gamma/2 yourself).

    Args:
      discriminator_fn: callable real -> logits [B] (or [B, 1]).
      real: [B, ...] real inputs.
    Returns:
      scalar float32: batch mean of the squared gradient norm per example.
    """
    with tf.GradientTape() as tape:
        tape.watch(real)
        logits = _f32(discriminator_fn(real))
        total = tf.reduce_sum(logits)
    grads = _f32(tape.gradient(total, real))
    per_example = tf.reduce_sum(tf.square(tf.reshape(grads, [tf.shape(grads)[0], -1])), axis=1)
    return tf.reduce_mean(per_example)
