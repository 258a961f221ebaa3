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
