"""Losses against hand-computed values; R1 with a linear critic of known gradient."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvidgen import losses


def test_bce_and_nonsaturating_at_zero_logits():
    zeros = tf.zeros([4])
    assert float(losses.bce_discriminator_loss(zeros, zeros)) == pytest.approx(2 * math.log(2))
    assert float(losses.nonsaturating_generator_loss(zeros)) == pytest.approx(math.log(2))


def test_bce_values():
    real, fake = tf.constant([2.0, -1.0]), tf.constant([0.5, -3.0])
    expected = (np.mean(np.log1p(np.exp(-np.array([2.0, -1.0]))))
                + np.mean(np.log1p(np.exp(np.array([0.5, -3.0])))))
    assert float(losses.bce_discriminator_loss(real, fake)) == pytest.approx(expected, rel=1e-6)
    # Works for bfloat16 logits of any rank.
    assert float(losses.nonsaturating_generator_loss(tf.zeros([2, 1], tf.bfloat16))) == \
        pytest.approx(math.log(2), rel=1e-2)


def test_hinge_values():
    real, fake = tf.constant([2.0, 0.5]), tf.constant([-2.0, 0.0])
    assert float(losses.hinge_discriminator_loss(real, fake)) == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert float(losses.hinge_generator_loss(tf.constant([1.0, 3.0]))) == pytest.approx(-2.0)


def test_r1_of_linear_critic_is_squared_weight_norm():
    w = tf.constant(np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32))
    critic = lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])   # noqa: E731
    real = tf.random.normal([5, 2, 3, 4])
    assert float(losses.r1_penalty(critic, real)) == pytest.approx(float(tf.reduce_sum(w * w)),
                                                                   rel=1e-5)


def test_bce_is_the_weighted_mean_of_softplus_of_the_signed_logits():
    """Target 1 -> softplus(-l), target 0 -> softplus(l); the mean over every element of
    weight * that, for a scalar or a per-example weight."""
    logits = tf.constant([1.0, -2.0])
    np.testing.assert_allclose(float(losses.bce(logits, 0.0, tf.constant([0.5, 0.0]))),
                               0.5 * np.log1p(np.e) / 2, rtol=1e-6)
    np.testing.assert_allclose(float(losses.bce(logits, 1.0)),
                               (np.log1p(np.exp(-1.0)) + np.log1p(np.exp(2.0))) / 2, rtol=1e-6)
    np.testing.assert_allclose(float(losses.bce(tf.constant([[1.0, 3.0]]), 1.0, 2.0)),
                               np.log1p(np.exp(-1.0)) + np.log1p(np.exp(-3.0)), rtol=1e-6)
    # the D and G losses are its two sides
    real, fake = tf.constant([0.3, -1.2]), tf.constant([2.0, 0.1])
    assert float(losses.bce_discriminator_loss(real, fake)) == pytest.approx(
        float(losses.bce(real, 1.0)) + float(losses.bce(fake, 0.0)), rel=1e-7)
    assert float(losses.nonsaturating_generator_loss(fake)) == float(losses.bce(fake, 1.0))


def test_gaussian_kl_matches_the_closed_form_by_hand():
    mean = np.array([[0.5, -1.0], [0.0, 2.0]], np.float32)
    log_variance = np.array([[0.0, np.log(4.0)], [np.log(0.25), 0.5]], np.float32)
    by_hand = np.mean([sum(-0.5 * (1 + lv - m ** 2 - np.exp(lv)) for m, lv in zip(ms, lvs))
                       for ms, lvs in zip(mean, log_variance)])
    np.testing.assert_allclose(float(losses.gaussian_kl(mean, log_variance)), by_hand, rtol=1e-6)
    assert float(losses.gaussian_kl(np.zeros([3, 4]), np.zeros([3, 4]))) == 0.0
    assert float(losses.gaussian_kl(tf.constant([[1.0]], tf.bfloat16),
                                    tf.constant([[0.0]], tf.bfloat16))) == pytest.approx(0.5)
