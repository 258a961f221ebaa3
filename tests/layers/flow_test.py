"""Differentiable flow: known synthetic motions within a documented EPE bound, gradients."""

import numpy as np
import pytest
import tensorflow as tf

from tfvidgen.eval.flow import end_point_error
from tfvidgen.layers import flow

# Documented bound: mean end-point error on smooth textured 64x64 frames, 8-pixel border excluded.
EPE_BOUND = 0.25


def _texture(size=64, seed=0):
    """A smooth random texture in [-1, 1], [1, size, size, 3]."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, (1, size // 8, size // 8, 3)).astype(np.float32)
    return tf.image.resize(coarse, [size, size], method="bicubic")


def _moved(image, true_flow):
    """frame2 such that frame2(x + flow(x)) = frame1(x), for a smooth flow: warp by -flow."""
    return flow.warp(image, -true_flow)


@pytest.mark.parametrize("shift", [(1.5, -0.75), (-3.0, 2.0)])
def test_translation(shift):
    frame1 = _texture()
    truth = tf.broadcast_to(tf.constant(shift, tf.float32), [1, 64, 64, 2])
    estimate = flow.horn_schunck(frame1, _moved(frame1, truth))
    assert end_point_error(estimate, truth, border=8) < EPE_BOUND


def test_small_rotation():
    frame1 = _texture(seed=1)
    ys, xs = np.mgrid[0:64, 0:64].astype(np.float32) - 31.5
    angle = np.deg2rad(3.0)
    truth = np.stack([(np.cos(angle) - 1) * xs - np.sin(angle) * ys,
                      np.sin(angle) * xs + (np.cos(angle) - 1) * ys], -1)[None].astype(np.float32)
    estimate = flow.horn_schunck(frame1, _moved(frame1, tf.constant(truth)))
    error = end_point_error(estimate, truth, border=8)
    assert error < EPE_BOUND
    assert end_point_error(np.zeros_like(truth), truth, border=8) > 5 * error


def test_gradients_flow_through_the_estimator():
    frame1 = _texture(32)
    frame2 = tf.Variable(_moved(frame1, tf.fill([1, 32, 32, 2], 1.0)))
    with tf.GradientTape() as tape:
        magnitude = tf.reduce_mean(tf.abs(flow.horn_schunck(frame1, frame2, levels=2,
                                                            iterations=10)))
    grad = tape.gradient(magnitude, frame2)
    assert grad is not None and np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).sum() > 0
