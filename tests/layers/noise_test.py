"""Per-example stateless draws: frames, indices and per-step noise depend on their own seed only."""

import numpy as np
import tensorflow as tf

from tfvidgen.layers import noise, recording


def _keys(n):
    return noise.seeds_from_ints(tf.range(n, dtype=tf.int64) + 7)


def test_random_frame_picks_one_frame_of_each_video_from_its_own_seed():
    videos = tf.reshape(tf.range(6 * 5, dtype=tf.float32), [6, 5, 1])       # frame value = index
    frames = noise.random_frame(videos, _keys(6), salt=3).numpy()[:, 0]
    index = noise.per_example_randint(_keys(6), 3, 5).numpy()
    np.testing.assert_array_equal(frames, np.arange(6) * 5 + index)
    # the same seed picks the same frame in a larger batch; another salt draws anew
    np.testing.assert_array_equal(noise.random_frame(videos[:2], _keys(2), 3).numpy()[:, 0],
                                  frames[:2])
    draws = [noise.per_example_randint(_keys(64), salt, 5).numpy() for salt in (3, 4)]
    assert not np.array_equal(*draws)


def test_per_example_indices_are_uniform_in_range_and_with_replacement():
    index = noise.per_example_indices(_keys(400), 11, 8, 5).numpy()
    assert index.shape == (400, 8) and index.min() == 0 and index.max() == 4
    np.testing.assert_allclose(np.bincount(index.ravel()) / index.size, 0.2, atol=0.02)
    assert any(len(set(row)) < 8 for row in index)


def test_step_noise_of_a_longer_sequence_extends_the_shorter_one():
    keys = noise.salted_keys(_keys(3), 2)
    steps = [noise.step_normal(keys, i, 4).numpy() for i in range(3)]
    assert steps[0].shape == (3, 4) and not np.allclose(steps[0], steps[1])
    np.testing.assert_array_equal(noise.step_normal(keys, tf.constant(1), 4).numpy(), steps[1])
    np.testing.assert_array_equal(noise.per_example_normal(_keys(3), 2, 6).numpy()[:, :4],
                                  noise.per_example_normal(_keys(3), 2, 4).numpy())


def test_a_recorder_fills_only_the_open_blocks():
    recorder = recording.Recorder()
    with recorder.recording() as outer:
        for found in recorder.open:
            found.append(1)
        with recorder.recording() as inner:
            for found in recorder.open:
                found.append(2)
    for found in recorder.open:                                  # none open: nothing recorded
        found.append(3)
    assert outer == [1, 2] and inner == [2] and recorder.open == []
