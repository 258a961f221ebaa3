"""F-SA attends over the right axes: T-SA mixes time only, S-SA mixes space within a frame only."""

import numpy as np
import tensorflow as tf

from tfvidgen.layers import attention


def _layer(axis, x):
    layer = attention.AxisSelfAttention(axis, spectral_norm=False)
    layer(x)
    layer.gamma.assign(1.0)          # gamma starts at 0 (identity); open it to see the attention
    return layer


def test_gamma_zero_is_identity_and_shapes():
    x = tf.random.normal([2, 4, 3, 3, 16])
    fsa = attention.FactorizedSelfAttention(spectral_norm=True)
    np.testing.assert_allclose(fsa(x).numpy(), x.numpy())
    assert fsa(x).shape == x.shape


def test_temporal_attention_is_permutation_equivariant_over_frames():
    x = tf.random.normal([2, 5, 3, 3, 16])
    layer = _layer("temporal", x)
    perm = [3, 0, 4, 1, 2]
    out = layer(x).numpy()
    out_perm = layer(tf.gather(x, perm, axis=1)).numpy()
    np.testing.assert_allclose(out_perm, out[:, perm], atol=1e-5)
    assert not np.allclose(out, x.numpy())


def test_temporal_attention_mixes_only_time_spatial_only_space():
    x = tf.random.normal([1, 4, 3, 3, 16])
    x2 = x.numpy().copy()
    x2[0, 2, 1, 1] += 3.0                                   # poke one (t=2, h=1, w=1) position
    t_layer, s_layer = _layer("temporal", x), _layer("spatial", x)
    t_change = np.abs(t_layer(x).numpy() - t_layer(tf.constant(x2)).numpy()).max(axis=(0, 4))
    assert (t_change[:, 1, 1] > 0).all()                    # every frame at that position
    t_change[:, 1, 1] = 0
    assert t_change.max() == 0                               # nowhere else
    s_change = np.abs(s_layer(x).numpy() - s_layer(tf.constant(x2)).numpy()).max(axis=(0, 4))
    assert (s_change[2] > 0).all()                           # every position of that frame
    s_change[2] = 0
    assert s_change.max() == 0                               # no other frame


def test_spatial_attention_is_equivariant_to_pixel_permutation():
    x = tf.random.normal([1, 2, 2, 3, 8])
    layer = _layer("spatial", x)
    flipped = tf.reverse(x, axis=[3])
    np.testing.assert_allclose(layer(flipped).numpy(), tf.reverse(layer(x), axis=[3]).numpy(),
                               atol=1e-5)
