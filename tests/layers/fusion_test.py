"""Spatio-temporal fusion: replicate, add, concatenate (spatial channels first)."""

import numpy as np
import tensorflow as tf

from tfvidgen.layers import fusion


def test_fusion_values_and_order():
    f_s = tf.random.normal([2, 4, 4, 3])
    f_t = tf.random.normal([2, 5, 6])
    f_v = tf.random.normal([2, 5, 4, 4, 6])
    out = fusion.spatio_temporal_fusion(f_s, f_t, f_v).numpy()
    assert out.shape == (2, 5, 4, 4, 9)
    for t in range(5):
        np.testing.assert_allclose(out[:, t, :, :, :3], f_s.numpy())          # F_S replicated over T
    np.testing.assert_allclose(out[..., 3:], f_v.numpy() + f_t.numpy()[:, :, None, None, :],
                               rtol=1e-6)                                      # F_V' + replicated F_T


def test_fusion_ablations():
    f_v = tf.random.normal([1, 2, 2, 2, 4])
    np.testing.assert_array_equal(fusion.spatio_temporal_fusion(None, None, f_v).numpy(), f_v.numpy())
    assert fusion.spatio_temporal_fusion(tf.zeros([1, 2, 2, 5]), None, f_v).shape == (1, 2, 2, 2, 9)
