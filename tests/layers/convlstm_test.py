"""TwoStreamVAN's ConvLSTM cell: ones initial state, +1 forget bias inside the sigmoid, shapes, and
one step against a hand-written step."""

import numpy as np
import tensorflow as tf

from tfvidgen.layers import convlstm


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_initial_state_is_ones_and_shapes_hold():
    cell = convlstm.ConvLSTMCell(5)
    c, h = cell.initial_state(3, 4, 6)
    assert c.shape == h.shape == (3, 4, 6, 5)
    np.testing.assert_array_equal(c.numpy(), 1.0)
    np.testing.assert_array_equal(h.numpy(), 1.0)
    out, (c2, h2) = cell(tf.random.normal([3, 4, 6, 2]), (c, h))
    assert out.shape == c2.shape == h2.shape == (3, 4, 6, 5)
    np.testing.assert_array_equal(out.numpy(), h2.numpy())
    assert cell.gates.kernel.shape == (3, 3, 2 + 5, 20)


def test_one_step_equals_a_hand_written_step():
    cell = convlstm.ConvLSTMCell(3, kernel_size=1, forget_bias=1.0)
    x = tf.random.normal([2, 3, 3, 2])
    state = (tf.random.normal([2, 3, 3, 3]), tf.random.normal([2, 3, 3, 3]))
    out, (c_new, h_new) = cell(x, state)
    kernel = cell.gates.kernel.numpy()[0, 0]              # 1x1 conv: a matmul per pixel
    bias = cell.gates.bias.numpy()
    z = np.concatenate([x.numpy(), state[1].numpy()], -1) @ kernel + bias
    i, j, f, o = np.split(z, 4, axis=-1)
    c = state[0].numpy() * _sigmoid(f + 1.0) + _sigmoid(i) * np.tanh(j)
    h = np.tanh(c) * _sigmoid(o)
    np.testing.assert_allclose(c_new.numpy(), c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_new.numpy(), h, rtol=1e-5, atol=1e-6)
    # the forget bias is a constant, not a weight: zero bias would change the result
    other = convlstm.ConvLSTMCell(3, kernel_size=1, forget_bias=0.0)
    other(x, state)
    other.set_weights(cell.get_weights())
    assert not np.allclose(other(x, state)[1][0].numpy(), c_new.numpy())
    assert len(cell.trainable_variables) == 2


def test_config_round_trip():
    cell = convlstm.ConvLSTMCell(4, kernel_size=3, forget_bias=0.5, name="lstm")
    clone = convlstm.ConvLSTMCell.from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
