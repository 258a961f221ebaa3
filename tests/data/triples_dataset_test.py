"""Triples as training data: exact synthetic ground truth per (seed, index), resume, k batches;
self-supervised triples from records."""

import numpy as np
import pytest
import tensorflow as tf

from tfvidgen import viz
from tfvidgen.config import DataConfig
from tfvidgen.data import pipeline, records, triples

ACTIONS = DataConfig(dataset="synthetic_actions", resolution=16, num_frames=4, num_videos=6,
                     video_length=12, max_stride=2)


def _take(ds, n):
    return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


def test_contract_and_exact_triples_from_the_renderer():
    batches = _take(pipeline.make_triples_dataset(ACTIONS, 3, seed=4), 2)
    batch = batches[0]
    assert batch["target_image"].shape == (3, 16, 16, 3)
    assert batch["source_video"].shape == batch["target_video"].shape == (3, 4, 16, 16, 3)
    assert batch["target_image"].dtype == batch["target_video"].dtype == np.float32
    assert batch["label"].dtype == np.int32 and batch["seed"].shape == (3, 2)
    seen = []
    for b in batches:
        for j in range(3):
            frames = pipeline._clip_indices(ACTIONS.video_length, 4, 2,
                                            tf.constant(b["seed"][j])).numpy()
            # Which video index this is: exactly one triple of the stream renders to it.
            matches = []
            for index in range(ACTIONS.num_videos):
                target, source, truth, label = triples.transfer_triple(4, index, frames, 16)
                if np.array_equal(viz.from_uint8(truth), b["target_video"][j]):
                    matches.append(index)
                    np.testing.assert_array_equal(viz.from_uint8(target), b["target_image"][j])
                    np.testing.assert_array_equal(viz.from_uint8(source), b["source_video"][j])
                    assert label == b["label"][j]
            assert len(matches) == 1
            seen.append(matches[0])
    assert sorted(seen) == list(range(6))               # one epoch: every video once


def test_deterministic_resumable_and_several_batches_per_step():
    a = _take(pipeline.make_triples_dataset(ACTIONS, 2, seed=1), 4)
    resumed = _take(pipeline.make_triples_dataset(ACTIONS, 2, seed=1, start_step=3), 1)[0]
    for key in resumed:
        np.testing.assert_array_equal(resumed[key], a[3][key])
    double = _take(pipeline.make_triples_dataset(ACTIONS, 2, seed=1, real_batches=2,
                                                 start_step=1), 1)[0]
    assert double["source_video"].shape == (2, 2, 4, 16, 16, 3)
    for i in range(2):                                   # step 1 with k=2: batches 2 and 3
        for key in double:
            np.testing.assert_array_equal(double[key][i], a[2 + i][key])


def test_other_synthetic_sources_give_triples_of_the_clip():
    cfg = DataConfig(dataset="synthetic_shapes", resolution=8, num_frames=3, num_videos=4,
                     video_length=6)
    clip = _take(pipeline.make_dataset(cfg, 2, seed=0), 1)[0]
    triple = _take(pipeline.make_triples_dataset(cfg, 2, seed=0), 1)[0]
    np.testing.assert_array_equal(triple["source_video"], clip["video"])
    np.testing.assert_array_equal(triple["target_video"], clip["video"])
    for video, image in zip(clip["video"], triple["target_image"]):
        assert any(np.array_equal(frame, image) for frame in video)


def _write_records(path, identities, length=6, size=8, labels=None):
    """Raw (lossless) records with random frames, one per identity entry (label labels[k],
    default 0); returns the videos."""
    rng = np.random.default_rng(1)
    videos = [rng.integers(0, 256, (length, size, size, 3), dtype=np.uint8) for _ in identities]
    labels = labels or [0] * len(identities)
    writer = records.ShardWriter(str(path), "train", len(identities))
    for k, (frames, identity) in enumerate(zip(videos, identities)):
        writer.write(records.serialize_video(frames, labels[k], identity, f"v{k}", "raw"))
    records.write_manifest(str(path), {"splits": {"train": writer.close()}, "resolution": size})
    return [v.astype(np.float32) / 127.5 - 1.0 for v in videos]


def _owner(videos, frame):
    """Index of the video holding `frame` (frames are random, so unique)."""
    owners = [i for i, v in enumerate(videos) if any(np.array_equal(f, frame) for f in v)]
    assert len(owners) == 1
    return owners[0]


def test_records_with_identities_take_target_image_and_video_from_another_clip_of_the_identity(
        tmp_path):
    """V_y (target_video) is the partner clip the target image comes from, with its label: a
    second real video, so the model's Eq. 5 mismatch terms act; V itself only without one."""
    identities, labels = [0, 0, 1, 1, 2, -1], [0, 1, 2, 0, 1, 2]
    videos = _write_records(tmp_path, identities, labels=labels)
    cfg = DataConfig(dataset="records", data_dir=str(tmp_path), resolution=8, num_frames=3,
                     shuffle_buffer=6)
    made = _take(pipeline.make_triples_dataset(cfg, 3, seed=5), 4)
    seen = set()
    for batch in made:
        for video, image, target_video, label, target_label in zip(
                batch["source_video"], batch["target_image"], batch["target_video"],
                batch["label"], batch["target_label"]):
            source = _owner(videos, video[0])
            target = _owner(videos, image)
            seen.add(source)
            assert label == labels[source]
            # The target image is a frame of the target video, and both come from one record.
            assert any(np.array_equal(f, image) for f in target_video)
            assert all(_owner(videos, f) == target for f in target_video)
            assert target_label == labels[target]
            if identities[source] in (0, 1):             # another clip of the same identity
                assert target != source and identities[target] == identities[source]
            else:                                        # alone or unknown: its own clip
                assert target == source
                np.testing.assert_array_equal(target_video, video)
    assert seen == set(range(6))
    resumed = _take(pipeline.make_triples_dataset(cfg, 3, seed=5, start_step=3), 1)[0]
    for key in resumed:                                  # resume: the same step 3
        np.testing.assert_array_equal(resumed[key], made[3][key])


@pytest.mark.parametrize("real_batches", [1, 2])
def test_records_give_self_supervised_triples_of_the_clip(tmp_path, real_batches):
    rng = np.random.default_rng(0)
    writer = records.ShardWriter(str(tmp_path), "train", 4)
    for k in range(4):
        frames = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
        writer.write(records.serialize_video(frames, k % 2, k, f"v{k}", "raw"))
    records.write_manifest(str(tmp_path), {"splits": {"train": writer.close()}, "resolution": 8})
    cfg = DataConfig(dataset="records", data_dir=str(tmp_path), resolution=8, num_frames=3,
                     shuffle_buffer=4)
    clips = _take(pipeline.make_dataset(cfg, 2, seed=3, real_batches=real_batches), 2)
    made = _take(pipeline.make_triples_dataset(cfg, 2, seed=3, real_batches=real_batches), 2)
    picked = set()
    for clip, triple in zip(clips, made):
        # The clip make_dataset would yield is both videos; the image is one of its frames.
        np.testing.assert_array_equal(triple["source_video"], clip["video"])
        np.testing.assert_array_equal(triple["target_video"], clip["video"])
        np.testing.assert_array_equal(triple["target_label"], clip["label"])
        np.testing.assert_array_equal(triple["seed"], clip["seed"])
        assert triple["target_image"].shape == clip["video"].shape[:-4] + (8, 8, 3)
        videos = clip["video"].reshape(-1, 3, 8, 8, 3)
        for video, image in zip(videos, triple["target_image"].reshape(-1, 8, 8, 3)):
            match = [t for t in range(3) if np.array_equal(video[t], image)]
            assert match
            picked.add(match[0])
    assert len(picked) > 1                               # not always the same frame
