"""StyleGAN2 blocks: modulated conv against a per-sample reference, demodulation, equalised lr,
FIR-equivalent upsampling, noise injection, minibatch stddev, shapes of synthesis and D."""

import math

import numpy as np
import tensorflow as tf

from tfvidgen.layers import stylegan


def _modulated_weight(layer, w):
    """The per-sample (demodulated) weight [N, k, k, Cin, Cout], written out (the reference)."""
    weight = layer.kernel[None] * layer.scale * layer.styles(w)[:, None, None, :, None]
    if layer.demodulate:
        weight *= tf.math.rsqrt(tf.reduce_sum(tf.square(weight), axis=[1, 2, 3],
                                              keepdims=True) + 1e-8)
    return weight


def _reference_conv(layer, x, w):
    """Per-sample conv with the explicitly modulated (and demodulated) weight."""
    weights = _modulated_weight(layer, w)                                 # [N, k, k, Cin, Cout]
    x = tf.image.resize(x, [2 * x.shape[1], 2 * x.shape[2]]) if layer.up else x
    return tf.concat([tf.nn.conv2d(x[i:i + 1], weights[i], 1, "SAME")
                      for i in range(x.shape[0])], axis=0)


def test_modulated_conv_equals_the_per_sample_reference_conv():
    x = tf.random.normal([3, 8, 8, 5])
    w = tf.random.normal([3, 6])
    for demodulate, up in ((True, False), (False, False), (True, True)):
        layer = stylegan.ModulatedConv2D(7, 3, demodulate=demodulate, up=up)
        y = layer(x, w).numpy()
        assert y.shape == (3, 16 if up else 8, 16 if up else 8, 7)
        np.testing.assert_allclose(y, _reference_conv(layer, x, w).numpy(), rtol=1e-4, atol=1e-4)


def test_demodulated_weights_have_unit_norm_and_normalise_output_variance():
    layer = stylegan.ModulatedConv2D(32, 3)
    w = tf.random.normal([4, 16]) * 3.0                                  # styles far from 1
    x = tf.random.normal([4, 32, 32, 64])                                 # unit variance, iid
    layer(x, w)
    norms = tf.sqrt(tf.reduce_sum(tf.square(_modulated_weight(layer, w)), axis=[1, 2, 3]))
    np.testing.assert_allclose(norms.numpy(), 1.0, rtol=1e-5)            # per sample and o
    # Interior pixels (borders see zero padding): E[y^2] = sum w''^2 = 1 per output channel.
    y = layer(x, w)[:, 1:-1, 1:-1].numpy()
    assert 0.9 < y.var() < 1.1
    undemodulated = stylegan.ModulatedConv2D(32, 3, demodulate=False)
    assert undemodulated(x, w)[:, 1:-1, 1:-1].numpy().var() > 2.0      # scaled by the styles


def test_equalised_dense_scales_at_run_time_with_the_lr_multiplier():
    layer = stylegan.EqualizedDense(3, lr_multiplier=0.01, bias_init=1.0)
    x = tf.random.normal([2, 4])
    y = layer(x).numpy()
    # Stored weights are N(0, 1 / lr_mul): ~100 here; the runtime scale brings them to N(0, 1/4).
    assert np.abs(layer.kernel.numpy()).mean() > 10
    expected = x.numpy() @ (layer.kernel.numpy() * 0.01 / math.sqrt(4)) + 1.0
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_bilinear_upsampling_is_the_fir_1331_upsampler_away_from_the_border():
    x = tf.random.normal([1, 6, 6, 1])
    up = stylegan.upsample_2x(x).numpy()[0, :, :, 0]
    # FIR reference: zero insertion, then the separable [1,3,3,1] * 2 / 8 filter (gain 4 in 2D).
    zeros = np.zeros((12, 12))
    zeros[::2, ::2] = x.numpy()[0, :, :, 0]
    k = np.array([1.0, 3.0, 3.0, 1.0]) / 4.0
    padded = np.pad(zeros, 2)
    fir = np.zeros((12, 12))
    for i in range(12):
        for j in range(12):
            fir[i, j] = np.sum(padded[i:i + 4, j:j + 4] * np.outer(k, k))
    np.testing.assert_allclose(up[2:-2, 2:-2], fir[2:-2, 2:-2], rtol=1e-5, atol=1e-5)


def test_noise_injection_starts_off_and_acts_through_its_strength():
    layer = stylegan.StyledConv(4)
    x, w = tf.random.normal([2, 4, 4, 3]), tf.random.normal([2, 5])
    noise = tf.random.normal([2, 4, 4, 1])
    np.testing.assert_array_equal(layer(x, w, noise).numpy(), layer(x, w).numpy())
    layer.noise_strength.assign(0.5)
    assert not np.allclose(layer(x, w, noise).numpy(), layer(x, w).numpy())


def test_synthesis_shapes_noise_layout_and_every_noise_map_used():
    layout, size = stylegan.noise_layout(16)
    assert [s for s, _ in layout] == [4, 8, 8, 16, 16] and size == 16 + 2 * 64 + 2 * 256
    net = stylegan.SynthesisNetwork(16, channel_base=64, channel_max=8)
    w = tf.random.normal([2, 6])
    noise = tf.random.normal([2, size])
    image = net(w, noise)
    assert image.shape == (2, 16, 16, 3) and image.dtype == tf.float32
    assert [stylegan.channels_at(r, 64, 8) for r in (4, 8, 16)] == [8, 8, 4]
    assert len(net.convs) == 5 and len(net.to_rgbs) == 3
    for conv in net.convs:
        conv.noise_strength.assign(1.0)
    base = net(w, noise).numpy()
    for (s, offset) in layout:                    # each map's slice changes the image
        bumped = noise.numpy().copy()
        bumped[:, offset:offset + s * s] += 1.0
        assert not np.allclose(net(w, tf.constant(bumped)).numpy(), base)


def test_minibatch_stddev_by_hand():
    x = tf.constant(np.arange(4 * 2 * 2 * 3, dtype=np.float32).reshape(4, 2, 2, 3))
    out = stylegan.minibatch_stddev(x, group_size=2).numpy()
    assert out.shape == (4, 2, 2, 4)
    # Groups are consecutive samples {0, 1} and {2, 3}: each pair differs by 12 everywhere, so
    # the std is 6 at every position.
    np.testing.assert_allclose(out[..., 3], 6.0, rtol=1e-5)
    np.testing.assert_array_equal(out[..., :3], x.numpy())
    # Replica invariance: the two halves of the batch alone give the same feature.
    halves = np.concatenate([stylegan.minibatch_stddev(x[:2], 2).numpy(),
                             stylegan.minibatch_stddev(x[2:], 2).numpy()])
    np.testing.assert_array_equal(halves, out)
    varied = x.numpy().copy()
    varied[2:] *= 3.0                                    # a different spread in the 2nd group
    out = stylegan.minibatch_stddev(tf.constant(varied), 2).numpy()
    assert out[0, 0, 0, 3] != out[2, 0, 0, 3]
    # A group size that does not divide the batch: one group over all 3 samples.
    three = stylegan.minibatch_stddev(x[:3], 2).numpy()[..., 3]
    np.testing.assert_allclose(three, np.std(np.arange(3) * 12.0), rtol=1e-5)


def test_residual_discriminator_shapes_and_label_projection():
    d = stylegan.ResidualDiscriminator(16, channel_base=64, channel_max=8, mbstd_group=2)
    assert d(tf.random.normal([4, 16, 16, 9])).shape == (4,)
    assert len(d.conv0s) == 2                      # 16 -> 8 -> 4
    conditional = stylegan.ResidualDiscriminator(16, 64, 8, num_classes=3)
    x = tf.random.normal([2, 16, 16, 3])
    a = conditional(x, tf.constant([0, 0])).numpy()
    b = conditional(x, tf.constant([2, 2])).numpy()
    assert a.shape == (2,) and not np.allclose(a, b)
