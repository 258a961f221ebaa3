"""Temporal shift: one fold from t+1, one from t-1, zero borders, videos never mixed."""

import numpy as np
import tensorflow as tf

from tfvidgen.layers.temporal_shift import temporal_shift


def _frames(videos=2, frames=3, channels=6):
    # value = 100 * video + 10 * frame + channel, folded as [video * T + frame, 1, 1, C]
    v, t, c = np.meshgrid(np.arange(videos), np.arange(frames), np.arange(channels),
                          indexing="ij")
    return (100 * v + 10 * t + c).astype(np.float32).reshape(videos * frames, 1, 1, channels)


def test_shift_by_hand():
    out = temporal_shift(tf.constant(_frames()), 3, fold_div=3).numpy().reshape(2, 3, 6)
    expected = np.array([
        # channels 0-1 from t+1 (last frame 0), 2-3 from t-1 (first frame 0), 4-5 unchanged
        [[10, 11, 0, 0, 4, 5], [20, 21, 2, 3, 14, 15], [0, 0, 12, 13, 24, 25]],
        [[110, 111, 0, 0, 104, 105], [120, 121, 102, 103, 114, 115], [0, 0, 112, 113, 124, 125]],
    ], np.float32)
    np.testing.assert_array_equal(out, expected)


def test_no_value_crosses_between_videos_and_fold_follows_fold_div():
    x = _frames(videos=3, frames=4, channels=16)
    out = temporal_shift(tf.constant(x), tf.constant(4), fold_div=8).numpy().reshape(3, 4, 16)
    for video in range(3):
        nonzero = out[video][out[video] != 0]
        assert np.all(nonzero // 100 == video)            # only its own video's values
    source = x.reshape(3, 4, 16)
    np.testing.assert_array_equal(out[:, :3, :2], source[:, 1:, :2])     # fold 16 // 8 = 2
    np.testing.assert_array_equal(out[:, 1:, 2:4], source[:, :3, 2:4])
    np.testing.assert_array_equal(out[:, :, 4:], source[:, :, 4:])
    assert np.all(out[:, 3, :2] == 0) and np.all(out[:, 0, 2:4] == 0)


def test_fewer_channels_than_fold_div_is_the_identity():
    x = tf.constant(_frames(channels=2))
    np.testing.assert_array_equal(temporal_shift(x, 3, fold_div=3).numpy(), x.numpy())
