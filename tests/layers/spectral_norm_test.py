"""Spectral-norm layers: sigma -> 1, u advances only in training, raw kernel untouched, grad via sigma."""

import keras
import numpy as np
import tensorflow as tf

from tfvidgen.layers import spectral_norm as sn


def _sigma(kernel):
    return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


def test_normalized_kernel_has_unit_spectral_norm_after_power_iterations():
    # Power iteration's error shrinks like (sigma_2 / sigma_1)^(2k): a random kernel whose top two
    # singular values nearly tie may need thousands of iterations (5 of 40 random draws missed 1e-3
    # after 30). So the kernel gets a known gap, sigma_2 / sigma_1 = 0.5: 30 steps leave ~1e-18.
    layer = sn.SNConv3D(6, (2, 3, 3))
    x = tf.random.normal([2, 4, 8, 8, 3], seed=1)
    layer(x)
    rng = np.random.default_rng(0)
    rows = int(np.prod(layer.kernel.shape[:-1]))
    u, _ = np.linalg.qr(rng.normal(size=(rows, 6)))
    v, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    kernel = (u * [3.0, 1.5, 1.0, 0.8, 0.5, 0.1]) @ v.T
    layer.kernel.assign(kernel.reshape(layer.kernel.shape).astype(np.float32))
    raw = layer.kernel.numpy().copy()
    for _ in range(30):
        layer(x, training=True)
    normalized = sn.spectral_normalize(layer.kernel, layer.sn_u, False).numpy()
    assert abs(_sigma(normalized) - 1.0) < 1e-4
    np.testing.assert_array_equal(layer.kernel.numpy(), raw)    # the raw W is never rewritten


def test_power_iteration_never_overshoots_and_only_improves_for_any_kernel():
    # What holds for every draw: the estimate ||v W|| never exceeds sigma_1 (so W / sigma has
    # norm >= 1) and moves monotonically towards it.
    for seed in range(10):
        layer = sn.SNDense(6)
        layer.build((None, 54))
        kernel = np.random.default_rng(seed).normal(size=(54, 6)).astype(np.float32)
        layer.kernel.assign(kernel)
        norms = []
        for _ in range(10):
            norms.append(_sigma(sn.spectral_normalize(layer.kernel, layer.sn_u, True).numpy()))
        assert min(norms) >= 1.0 - 1e-5, norms
        assert all(b <= a + 1e-5 for a, b in zip(norms, norms[1:])), norms


def test_u_advances_only_when_training():
    layer = sn.SNDense(5)
    x = tf.random.normal([3, 7])
    layer(x)
    u0 = layer.sn_u.numpy().copy()
    layer(x, training=False)
    np.testing.assert_array_equal(layer.sn_u.numpy(), u0)
    layer(x, training=True)
    assert not np.allclose(layer.sn_u.numpy(), u0)


def test_output_matches_plain_layer_with_normalized_kernel():
    layer = sn.SNConv2DTranspose(4, 4, strides=2, padding="same")
    x = tf.random.normal([2, 5, 5, 3])
    layer(x)
    plain = keras.layers.Conv2DTranspose(4, 4, strides=2, padding="same")
    plain(x)
    plain.kernel.assign(sn.spectral_normalize(layer.kernel, layer.sn_u, False))
    plain.bias.assign(layer.bias)
    np.testing.assert_allclose(layer(x).numpy(), plain(x).numpy(), atol=1e-5)


def test_gradient_flows_through_sigma():
    layer = sn.SNDense(3, use_bias=False)
    x = tf.random.normal([4, 6])
    layer(x)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x))
    grad = tape.gradient(y, layer.kernel).numpy()
    # The same function with sigma held constant has a different gradient.
    with tf.GradientTape() as tape:
        sigma = tf.stop_gradient(tf.reduce_mean(
            layer.kernel / sn.spectral_normalize(layer.kernel, layer.sn_u, False)))
        y_const = tf.reduce_sum(tf.matmul(x, layer.kernel / sigma))
    naive = tape.gradient(y_const, layer.kernel).numpy()
    assert np.isfinite(grad).all() and not np.allclose(grad, naive, atol=1e-4)
