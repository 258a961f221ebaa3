"""Adversarial losses and penalties as pure functions (TF-GAN naming).

Every function returns the mean over ITS batch, i.e. the per-replica mean; the one division by the
replica count happens in `base.VideoGAN` (distribute.scale_for_replicas), so N replicas apply the
update one device would apply to the global batch. Inputs are logits of any dtype; maths runs in
float32 (mixed-precision safe). Reductions work for any rank.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["bce", "bce_discriminator_loss", "nonsaturating_generator_loss",
           "hinge_discriminator_loss", "hinge_generator_loss", "r1_penalty", "gaussian_kl",
           "classification_loss"]


def _f32(x):
    return tf.cast(x, tf.float32)


def bce(logits, target: float, weight=1.0):
    """Mean over every element of weight * BCE(sigmoid(logits), target), target 1 or 0:
    softplus(-l) = -log sigmoid(l) for 1, softplus(l) = -log(1 - sigmoid(l)) for 0. weight: a
    scalar or per-example [B] (broadcast against logits [B, ...])."""
    logits = _f32(logits)
    per_element = tf.nn.softplus(-logits) if target else tf.nn.softplus(logits)
    return tf.reduce_mean(weight * per_element)


def bce_discriminator_loss(real_logits, fake_logits):
    """DCGAN D loss: -log sigmoid(D(real)) - log(1 - sigmoid(D(fake))), batch means."""
    return bce(real_logits, 1.0) + bce(fake_logits, 0.0)


def nonsaturating_generator_loss(fake_logits):
    """Non-saturating G loss: -log sigmoid(D(fake))."""
    return bce(fake_logits, 1.0)


def classification_loss(class_logits, labels):
    """Mean softmax cross-entropy of class logits [B, K] against integer labels [B] (an AC-GAN
    auxiliary classifier's loss, Odena et al. 2017)."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=_f32(class_logits)))


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


def gaussian_kl(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, I)) summed over the last axis, averaged over the
    rest (the batch): the VAE term of TwoStreamVAN and Dual-MTGAN."""
    mean, log_variance = _f32(mean), _f32(log_variance)
    per_example = -0.5 * tf.reduce_sum(1.0 + log_variance - tf.square(mean)
                                       - tf.exp(log_variance), axis=-1)
    return tf.reduce_mean(per_example)
