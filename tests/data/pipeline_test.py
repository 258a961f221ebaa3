"""Input pipeline: element contract, clip sampling, determinism, resume and sharding."""

import numpy as np
import pytest
import tensorflow as tf

from tfvidgen.config import DataConfig
from tfvidgen.data import pipeline

SHAPES = DataConfig(dataset="synthetic_shapes", resolution=16, num_frames=4, num_videos=40,
                    video_length=16)


def _take(ds, n):
    return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


def test_element_contract():
    batch = _take(pipeline.make_dataset(SHAPES, 6, seed=0), 1)[0]
    assert batch["video"].shape == (6, 4, 16, 16, 3) and batch["video"].dtype == np.float32
    assert -1.0 <= batch["video"].min() < 0 < batch["video"].max() <= 1.0
    assert batch["label"].dtype == np.int32 and batch["identity"].dtype == np.int32
    assert batch["seed"].shape == (6, 2) and batch["seed"].dtype == np.int64
    for key in ("background", "phase", "speed", "amplitude", "start_x", "direction"):
        assert batch[key].shape == (6,)
    # Keys are unique per example: models derive latents from them.
    assert len({tuple(s) for s in batch["seed"]}) == 6


def test_clip_indices_use_random_feasible_strides():
    strides = set()
    for i in range(200):
        idx = pipeline._clip_indices(32, 8, 4, tf.constant([5, i], tf.int64)).numpy()
        steps = set(np.diff(idx))
        assert len(steps) == 1 and idx[0] >= 0 and idx[-1] < 32
        strides |= steps
    assert strides == {1, 2, 3, 4}
    for i in range(50):   # 16 frames from 32 allow strides 1 and 2 only
        idx = pipeline._clip_indices(32, 16, 4, tf.constant([5, i], tf.int64)).numpy()
        assert np.diff(idx).max() <= 2 and idx[-1] < 32
    short = pipeline._clip_indices(3, 5, 4, tf.constant([1, 1], tf.int64)).numpy()
    np.testing.assert_array_equal(short, [0, 1, 2, 2, 2])   # too short: last frame repeats


def test_deterministic_by_seed_whatever_the_global_seed_and_resumable():
    a = _take(pipeline.make_dataset(SHAPES, 4, seed=7), 5)
    tf.random.set_seed(1234)                    # Dataset.shuffle's order would follow this
    b = _take(pipeline.make_dataset(SHAPES, 4, seed=7), 5)
    c = _take(pipeline.make_dataset(SHAPES, 4, seed=8), 1)
    for x, y in zip(a, b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    assert not np.array_equal(a[0]["video"], c[0]["video"])
    resumed = _take(pipeline.make_dataset(SHAPES, 4, seed=7, start_step=3), 2)
    for x, y in zip(a[3:], resumed):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])


def test_flip_and_crop_augmentations():
    video = tf.constant(np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)), tf.uint8)
    plain = video.numpy() / 127.5 - 1.0
    flip_cfg = DataConfig(**{**SHAPES.__dict__, "random_flip": True})
    flips = []
    for i in range(16):
        out = pipeline._augment(video, flip_cfg, tf.constant([0, i], tf.int64)).numpy()
        flipped = np.allclose(out, plain[:, :, ::-1], atol=1e-6)
        assert flipped or np.allclose(out, plain, atol=1e-6)
        flips.append(flipped)
    assert 0 < sum(flips) < 16
    crop_cfg = DataConfig(**{**SHAPES.__dict__, "random_crop": 0.2})
    cropped = pipeline._augment(video, crop_cfg, tf.constant([0, 1], tf.int64)).numpy()
    assert cropped.shape == plain.shape and not np.allclose(cropped, plain)
    assert cropped.min() >= -1 and cropped.max() <= 1


def _phases_of_pipeline(pipeline_id, cfg, steps):
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id,
                                     num_replicas_in_sync=2)
    batches = _take(pipeline.make_dataset(cfg, 4, seed=3, input_context=ctx), steps)
    assert batches[0]["video"].shape[0] == 2          # per-replica batch of the global 4
    return {round(float(p), 6) for b in batches for p in b["phase"]}


def test_two_worker_sharding_sees_disjoint_videos():
    cfg = DataConfig(**{**SHAPES.__dict__, "num_videos": 20})
    first, second = _phases_of_pipeline(0, cfg, 5), _phases_of_pipeline(1, cfg, 5)
    assert len(first) == 10 and len(second) == 10     # one epoch of each half
    assert not first & second


def test_distribute_datasets_from_function_under_mirrored():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: pipeline.make_dataset(SHAPES, 4, seed=0, input_context=ctx))
    batch = next(iter(dist))
    per_replica = strategy.experimental_local_results(batch["video"])
    assert [v.shape[0] for v in per_replica] == [2, 2]
    single = _take(pipeline.make_dataset(SHAPES, 4, seed=0), 1)[0]
    # The two replicas together hold the global batch a single device would see.
    np.testing.assert_array_equal(np.concatenate([v.numpy() for v in per_replica]),
                                  single["video"])


@pytest.mark.parametrize("bad", [{"dataset": "records", "data_dir": "/nonexistent"}])
def test_missing_records_dir_is_a_clear_error(bad):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        pipeline.make_dataset(DataConfig(**bad), 2, seed=0)


def test_several_real_batches_per_step_are_consecutive_disjoint_and_resumable():
    single = _take(pipeline.make_dataset(SHAPES, 4, seed=7), 6)
    double = _take(pipeline.make_dataset(SHAPES, 4, seed=7, real_batches=2), 3)
    assert double[0]["video"].shape == (2, 4, 4, 16, 16, 3) and double[0]["seed"].shape == (2, 4, 2)
    # Step s with k=2 holds batches 2s and 2s+1 of the k=1 stream: the same stream, in order,
    # and no element is seen twice.
    for s, step in enumerate(double):
        for i in range(2):
            for key in step:
                np.testing.assert_array_equal(step[key][i], single[2 * s + i][key])
    keys = [tuple(k) for step in double for k in step["seed"].reshape(-1, 2)]
    assert len(set(keys)) == len(keys) == 24
    assert pipeline.elements_per_step(4, real_batches=2) == 8
    resumed = _take(pipeline.make_dataset(SHAPES, 4, seed=7, start_step=2, real_batches=2), 1)[0]
    for key in resumed:
        np.testing.assert_array_equal(resumed[key], double[2][key])


def test_several_real_batches_per_replica_under_mirrored():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: pipeline.make_dataset(SHAPES, 4, seed=0, input_context=ctx, real_batches=2,
                                          start_step=1))
    per_replica = strategy.experimental_local_results(next(iter(dist))["video"])
    assert [v.shape[:2] for v in per_replica] == [(2, 2), (2, 2)]
    # Resumed at step 1, the replicas hold the global elements 8..15 of the k=1 stream.
    single = _take(pipeline.make_dataset(SHAPES, 4, seed=0), 4)
    np.testing.assert_array_equal(
        np.concatenate([v.numpy().reshape(-1, 4, 16, 16, 3) for v in per_replica]),
        np.concatenate([single[2]["video"], single[3]["video"]]))
    with pytest.raises(ValueError, match="real_batches"):
        pipeline.make_dataset(SHAPES, 4, seed=0, real_batches=0)
