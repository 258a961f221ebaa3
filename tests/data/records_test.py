"""tfvidgen.data.records: shards checked against the manifest (counts, sizes, CRCs)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfvidgen.data import records

RERUN = "re-run tools/prepare_dataset.py"


def _write_dataset(out, seed, videos=5, per_shard=2):
    """Random raw-encoded videos in shards of `per_shard` (5 -> 2, 2, 1) plus a manifest."""
    rng = np.random.default_rng(seed)
    writer = records.ShardWriter(str(out), "train", per_shard)
    for k in range(videos):
        frames = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
        writer.write(records.serialize_video(frames, k % 2, -1, f"v{k}", "raw"))
    manifest = {"splits": {"train": writer.close()}}
    records.write_manifest(str(out), manifest)
    return records.read_manifest(str(out))


def _damage(path, how):
    data = open(path, "rb").read()
    if how == "one_record_fewer":
        kept = list(tf.data.TFRecordDataset(path).as_numpy_iterator())[:-1]
        with tf.io.TFRecordWriter(path) as writer:
            for blob in kept:
                writer.write(blob)
        return
    if how == "cut_mid_record":
        data = data[:-7]
    elif how == "bytes_appended":
        data = data + b"\0" * 20
    elif how == "length_bit_flipped":
        data = data[:2] + bytes([data[2] ^ 1]) + data[3:]        # inside record 0's length
    elif how == "payload_bit_flipped":
        data = data[:40] + bytes([data[40] ^ 1]) + data[41:]     # inside record 0's payload
    with open(path, "wb") as f:
        f.write(data)


def test_intact_shards_pass_and_manifest_stores_count_and_size(tmp_path):
    manifest = _write_dataset(tmp_path, seed=0)
    shards = manifest["splits"]["train"]
    assert [s["count"] for s in shards] == [2, 2, 1]
    paths = records.shard_paths(str(tmp_path), manifest)
    assert [os.path.getsize(p) for p in paths] == [s["bytes"] for s in shards]
    for path, shard in zip(paths, shards):
        for full in (False, True):
            records.check_shard(path, shard["count"], shard["bytes"], full)


@pytest.mark.parametrize("how, message", [
    ("one_record_fewer", "holds 1 records but manifest.json lists 2"),
    ("cut_mid_record", "is corrupt (truncated record at"),
    ("bytes_appended", "is corrupt ("),
    ("length_bit_flipped", "is corrupt ("),
    ("payload_bit_flipped", "is corrupt (corrupted record at"),
])
def test_damaged_shard_is_one_line_naming_it(tmp_path, how, message):
    manifest = _write_dataset(tmp_path, seed=1)
    shard = os.path.join(str(tmp_path), "train-00001.tfrecord")
    _damage(shard, how)
    with pytest.raises(ValueError) as error:
        records.shard_paths(str(tmp_path), manifest)      # a small split: the full check
    text = str(error.value)
    assert text.startswith(f"{shard} {message}") and text.endswith(RERUN) and "\n" not in text
    # No DataLossError traceback chained to the one line.
    assert error.value.__context__ is None or error.value.__suppress_context__


@pytest.mark.parametrize("how", ["one_record_fewer", "cut_mid_record", "bytes_appended",
                                 "length_bit_flipped"])
def test_large_split_header_walk_catches_all_but_payload_flips(tmp_path, monkeypatch, how):
    manifest = _write_dataset(tmp_path, seed=2)
    monkeypatch.setattr(records, "FULL_CHECK_BYTES", 0)     # as if the split were large

    def no_full_read(path):
        raise AssertionError("a large split must not be read in full")

    monkeypatch.setattr(records, "_count_records", no_full_read)
    records.shard_paths(str(tmp_path), manifest)            # intact: passes without reading it
    shard = os.path.join(str(tmp_path), "train-00000.tfrecord")
    _damage(shard, how)
    with pytest.raises(ValueError, match=f"^{shard} (holds 1 records|is corrupt)"):
        records.shard_paths(str(tmp_path), manifest)


def test_old_manifest_without_sizes_still_checks_counts(tmp_path):
    manifest = _write_dataset(tmp_path, seed=3)
    for shard in manifest["splits"]["train"]:
        del shard["bytes"]
    records.shard_paths(str(tmp_path), manifest)
    _damage(os.path.join(str(tmp_path), "train-00002.tfrecord"), "one_record_fewer")
    with pytest.raises(ValueError, match="train-00002.tfrecord holds 0 records but manifest"):
        records.shard_paths(str(tmp_path), manifest)


def test_missing_shard_is_named(tmp_path):
    manifest = _write_dataset(tmp_path, seed=4)
    os.remove(os.path.join(str(tmp_path), "train-00001.tfrecord"))
    with pytest.raises(FileNotFoundError, match="train-00001.tfrecord"):
        records.shard_paths(str(tmp_path), manifest)


def test_a_large_split_gets_the_full_check_when_asked(tmp_path, monkeypatch):
    """--verify_data=full: a payload bit flip that the header walk of a large split passes."""
    manifest = _write_dataset(tmp_path, seed=5)
    monkeypatch.setattr(records, "FULL_CHECK_BYTES", 0)     # as if the split were large
    shard = os.path.join(str(tmp_path), "train-00000.tfrecord")
    _damage(shard, "payload_bit_flipped")
    records.shard_paths(str(tmp_path), manifest)            # headers only: not seen
    with pytest.raises(ValueError, match=f"^{shard} is corrupt"):
        records.shard_paths(str(tmp_path), manifest, full=True)


def test_an_empty_split_is_one_line_at_start_up(tmp_path):
    """A split whose shards hold no video ended training in StopIteration; now it is refused
    before training, naming the split."""
    with tf.io.TFRecordWriter(str(tmp_path / "train-00000.tfrecord")):
        pass                                                 # a shard with no record
    records.write_manifest(str(tmp_path), {"splits": {"train": [
        {"file": "train-00000.tfrecord", "count": 0, "bytes": 0}]}})
    manifest = records.read_manifest(str(tmp_path))
    with pytest.raises(ValueError) as error:
        records.shard_paths(str(tmp_path), manifest)
    text = str(error.value)
    assert "'train' split has no videos" in text and RERUN in text and "\n" not in text
