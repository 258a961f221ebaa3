"""Temporal Pyramid Discriminator: time-to-channel keeps exactly the frames of each stride, in
frame-major channel order; one discriminator (own weights, own input width) per speed."""

import numpy as np
import tensorflow as tf

from tfvidgen.layers import tpd


def _numbered_video(batch=2, frames=16, size=4):
    """video[b, t, y, x, c] = 1000 b + 10 t + c: every value names its frame and channel."""
    b, t, c = np.meshgrid(np.arange(batch), np.arange(frames), np.arange(3), indexing="ij")
    values = (1000 * b + 10 * t + c).astype(np.float32)                 # [B, T, 3]
    return np.broadcast_to(values[:, :, None, None, :], (batch, frames, size, size, 3)).copy()


def test_time_to_channel_stacks_exactly_the_frames_of_each_stride():
    video = _numbered_video()
    expected_frames = {1: list(range(16)), 3: [0, 3, 6, 9, 12, 15], 5: [0, 5, 10, 15],
                       7: [0, 7, 14]}
    for speed, frames in expected_frames.items():
        assert tpd.frames_at_speed(16, speed) == frames
        out = tpd.time_to_channel(tf.constant(video), speed).numpy()
        assert out.shape == (2, 4, 4, 3 * len(frames))              # 48 / 18 / 12 / 9
        for b in range(2):
            want = [1000 * b + 10 * t + c for t in frames for c in range(3)]   # frame-major
            np.testing.assert_array_equal(out[b, 2, 1], want)
            np.testing.assert_array_equal(out[b], np.broadcast_to(want, (4, 4, len(want))))


def test_one_discriminator_per_speed_with_its_own_input_width():
    d = tpd.TemporalPyramidDiscriminator((1, 3), resolution=8, channel_base=32, channel_max=4,
                                         mbstd_group=2)
    logits = d(tf.random.normal([2, 4, 8, 8, 3]))
    assert [l.shape for l in logits] == [(2,), (2,)]
    widths = [net.from_rgb.kernel.shape[2] for net in d.discriminators]
    assert widths == [12, 6]                                       # 4 frames, frames 0 and 3
    ids = [{id(v) for v in net.weights} for net in d.discriminators]
    assert not ids[0] & ids[1]


def test_a_speed_only_sees_its_frames():
    d = tpd.TemporalPyramidDiscriminator((3,), resolution=8, channel_base=32, channel_max=4,
                                         mbstd_group=1)
    video = np.random.default_rng(0).normal(size=(2, 4, 8, 8, 3)).astype(np.float32)
    other = video.copy()
    other[:, 1:3] += 5.0                                           # frames speed 3 skips
    np.testing.assert_allclose(d(tf.constant(video))[0].numpy(),
                               d(tf.constant(other))[0].numpy(), rtol=1e-6)
    other[:, 3] += 5.0
    assert not np.allclose(d(tf.constant(video))[0].numpy(), d(tf.constant(other))[0].numpy())


def test_g3an_with_a_temporal_pyramid_video_discriminator_trains():
    from tests.helpers import tiny_config, tiny_model
    from tfvidgen.data import pipeline
    config = tiny_config(video_discriminator="tpd", tpd_speeds="1,3")
    model = tiny_model(config)
    video_d = model.video_discriminator
    videos = model.generate(model.sample_inputs(2, 0))
    assert video_d(videos).shape == (4,)                           # 2 speeds x 2 videos
    pyramid = video_d.pyramid.discriminators
    first_kernels = [[v for v in net.convs[0].weights if len(v.shape) == 4][0] for net in pyramid]
    assert [k.shape[2] for k in first_kernels] == [12, 6]          # TtoC widths: 4 and 2 frames
    before = [v.numpy().copy() for v in video_d.trainable_variables]
    logs = model.train_step(next(iter(pipeline.make_dataset(config.data, 4, 0))))
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert all(not np.array_equal(b, v.numpy())
               for b, v in zip(before, video_d.trainable_variables))
