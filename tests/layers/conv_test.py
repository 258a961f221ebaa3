"""Conv blocks: shapes of every factorisation, and that (1+2)D is temporal-then-spatial."""

import numpy as np
import pytest
import tensorflow as tf

from tfvidgen.layers import conv


@pytest.mark.parametrize("order", conv.VIDEO_CONVS)
def test_upsampling_shapes(order):
    x = tf.random.normal([2, 4, 4, 4, 6])
    up = conv.FactorizedTransposedConv3D(5, 4, 2, 4, 2, "same", order)
    assert up(x, training=True).shape == (2, 8, 8, 8, 5)
    first = conv.FactorizedTransposedConv3D(5, 4, 1, 4, 1, "valid", order)
    assert first(tf.random.normal([2, 1, 1, 1, 6])).shape == (2, 4, 4, 4, 5)   # G3_0: 1 -> 4
    keep_time = conv.FactorizedTransposedConv3D(5, 1, 1, 4, 2, "same", order)
    assert keep_time(x).shape == (2, 4, 8, 8, 5)
    assert np.all(up(x, training=True).numpy() >= 0)         # ReLU output


def test_one_plus_two_is_temporal_then_spatial():
    x = tf.random.normal([2, 4, 4, 4, 6])
    block = conv.FactorizedTransposedConv3D(5, 4, 2, 4, 2, "same", "1+2")
    block(x)
    temporal, spatial = block.steps
    assert temporal.conv.kernel.shape[:3] == (4, 1, 1) and spatial.conv.kernel.shape[:3] == (1, 4, 4)
    assert temporal(x).shape == (2, 8, 4, 4, 5)              # first step grows time only
    reverse = conv.FactorizedTransposedConv3D(5, 4, 2, 4, 2, "same", "2+1")
    reverse(x)
    assert reverse.steps[0](x).shape == (2, 4, 8, 8, 5)      # (2+1)D grows space first
    # Temporal kernel (4, 1, 1): output position (h, w) depends on input position (h, w) only.
    y1 = temporal(x, training=False).numpy()
    x2 = x.numpy().copy()
    x2[:, :, 0, 0] += 5.0
    y2 = temporal(tf.constant(x2), training=False).numpy()
    changed = np.abs(y1 - y2).max(axis=(0, 1, 4)) > 0
    assert changed[0, 0] and changed.sum() == 1


def test_spectral_norm_factory_and_config():
    layer = conv.conv_layer("conv3d", 4, 3, spectral_norm=True)
    assert type(layer).__name__ == "SNConv3D"
    block = conv.ConvBNReLU("conv2d_t", 3, 4, 2, "same", True)
    clone = conv.ConvBNReLU.from_config(block.get_config())
    assert clone.get_config() == block.get_config()
    with pytest.raises(ValueError, match="unknown conv kind"):
        conv.conv_layer("conv4d", 1, 1)
