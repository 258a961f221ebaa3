"""TFRecord storage of videos: one tf.train.Example per video, shards plus a JSON manifest.

Example features:
  frames     bytes list: one JPEG per frame (encoding "jpeg") or one raw uint8 buffer ("raw")
  num_frames, height, width, label, identity   int64
  source, encoding                               bytes

Shards are written under a `.partial` name and renamed when closed, and the manifest (written last,
also atomically) lists each shard with its record count and byte size. tools/prepare_dataset.py
builds the whole dataset in a staging directory and swaps it in, and readers (`shard_paths`) check
every listed shard against the manifest, so a killed writer, a truncated copy or a corrupt shard is
one error naming the shard rather than silently fewer (or other) videos.
"""

from __future__ import annotations

import json
import os
import re
import struct

import numpy as np
import tensorflow as tf

from tfvidgen import errors

__all__ = ["MANIFEST", "FORMAT", "serialize_video", "parse_example", "decode_frames", "ShardWriter",
           "write_manifest", "read_manifest", "shard_paths", "check_shard", "FULL_CHECK_BYTES"]

MANIFEST = "manifest.json"
FORMAT = "tfvidgen-records-v1"
# Splits up to this size get the full check (every data CRC, one sequential read: 0.27 s for 256 MiB
# from page cache on a 2-core VM, seconds from a cold disk); larger ones only the header walk (about
# 11 ms per thousand records there, whatever the videos weigh).
FULL_CHECK_BYTES = 256 << 20

_RERUN = "re-run tools/prepare_dataset.py"

_FEATURES = {
    "frames": tf.io.VarLenFeature(tf.string),
    "num_frames": tf.io.FixedLenFeature([], tf.int64),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "label": tf.io.FixedLenFeature([], tf.int64, default_value=0),
    "identity": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "source": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "encoding": tf.io.FixedLenFeature([], tf.string, default_value="jpeg"),
}


def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def serialize_video(frames: np.ndarray, label: int, identity: int, source: str,
                    encoding: str = "jpeg", jpeg_quality: int = 95) -> bytes:
    """uint8 frames [T, H, W, 3] -> serialized tf.train.Example."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if encoding == "jpeg":
        payload = [tf.io.encode_jpeg(f, quality=jpeg_quality).numpy() for f in frames]
    elif encoding == "raw":
        payload = [frames.tobytes()]
    else:
        raise ValueError(f"encoding must be 'jpeg' or 'raw', got {encoding!r}")
    t, h, w, _ = frames.shape
    example = tf.train.Example(features=tf.train.Features(feature={
        "frames": _bytes(payload), "num_frames": _int(t), "height": _int(h), "width": _int(w),
        "label": _int(label), "identity": _int(identity),
        "source": _bytes([source.encode()]), "encoding": _bytes([encoding.encode()])}))
    return example.SerializeToString()


def parse_example(serialized: tf.Tensor) -> dict:
    """Scalar string -> dict with `frames` (dense string [N]) and int32/int64 metadata."""
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    parsed["frames"] = tf.sparse.to_dense(parsed["frames"])
    return parsed


def decode_frames(parsed: dict, indices: tf.Tensor) -> tf.Tensor:
    """Decodes only the frames at `indices` -> uint8 [len(indices), H, W, 3]."""
    h = tf.cast(parsed["height"], tf.int32)
    w = tf.cast(parsed["width"], tf.int32)

    def from_jpeg():
        chosen = tf.gather(parsed["frames"], indices)
        return tf.map_fn(lambda b: tf.io.decode_jpeg(b, channels=3), chosen,
                         fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))

    def from_raw():
        all_frames = tf.reshape(tf.io.decode_raw(parsed["frames"][0], tf.uint8),
                                [tf.cast(parsed["num_frames"], tf.int32), h, w, 3])
        return tf.gather(all_frames, indices)

    frames = tf.cond(tf.equal(parsed["encoding"], "raw"), from_raw, from_jpeg)
    return tf.reshape(frames, [tf.shape(indices)[0], h, w, 3])


class ShardWriter:
    """Writes examples into shards of at most `per_shard` videos, each renamed into place when full.

    `shards` (also returned by `close`) lists {"file", "count", "bytes"} of the completed shards:
    the entries the manifest stores and `check_shard` verifies.
    """

    def __init__(self, output_dir: str, prefix: str, per_shard: int):
        self._dir, self._prefix, self._per_shard = output_dir, prefix, per_shard
        self._writer = None
        self._count = 0
        self.shards: list[dict] = []   # {"file": name, "count": n} of completed shards

    def write(self, serialized: bytes) -> None:
        if self._writer is None:
            name = f"{self._prefix}-{len(self.shards):05d}.tfrecord"
            self._tmp = os.path.join(self._dir, name + ".partial")
            self._name = name
            self._writer = tf.io.TFRecordWriter(self._tmp)
        self._writer.write(serialized)
        self._count += 1
        if self._count == self._per_shard:
            self._close_shard()

    def _close_shard(self) -> None:
        self._writer.close()
        size = os.path.getsize(self._tmp)
        os.replace(self._tmp, os.path.join(self._dir, self._name))
        self.shards.append({"file": self._name, "count": self._count, "bytes": size})
        self._writer, self._count = None, 0

    def close(self) -> list[dict]:
        if self._writer is not None:
            self._close_shard()
        return self.shards


def write_manifest(output_dir: str, manifest: dict) -> str:
    path = os.path.join(output_dir, MANIFEST)
    with errors.atomic_output(path) as tmp:
        with open(tmp, "w") as f:
            json.dump({"format": FORMAT, **manifest}, f, indent=2, sort_keys=True)
    return path


def read_manifest(data_dir: str) -> dict:
    """Reads <data_dir>/manifest.json, or raises FileNotFoundError/ValueError saying what is wrong."""
    path = os.path.join(data_dir, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--data_dir={data_dir!r} has no {MANIFEST}: prepare it with tools/prepare_dataset.py")
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def shard_paths(data_dir: str, manifest: dict, split: str = "train",
                verify: bool = True, full: bool | None = None) -> list[str]:
    """Paths of a split's shards, each checked against its manifest entry.

    Args:
      data_dir: the prepared directory, as given on the command line (error messages use it).
      manifest: its manifest (`read_manifest`).
      split: "train" or "test".
      verify: check each shard with `check_shard`, fully (every data CRC) when the split holds at
        most FULL_CHECK_BYTES, else by its record headers only.
      full: True: the full check whatever the size (--verify_data=full); None: by size.

    Returns:
      The shard paths, in manifest order.

    Raises:
      FileNotFoundError: a listed shard is missing.
      ValueError: the split has no shards or no videos, or a shard is corrupt or disagrees with
        the manifest.
    """
    shards = manifest.get("splits", {}).get(split, [])
    if not shards:
        raise ValueError(f"--data_dir={data_dir!r}: manifest lists no shards for split {split!r}")
    if all(s.get("count") == 0 for s in shards):       # would end training in StopIteration
        raise ValueError(f"--data_dir={data_dir!r}: the {split!r} split has no videos (its "
                         f"{len(shards)} shard(s) are empty); {_RERUN} with videos in it")
    paths = [os.path.join(data_dir, s["file"]) for s in shards]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"--data_dir={data_dir!r}: shard(s) listed in the manifest are "
                                f"missing: {', '.join(missing[:3])}")
    if verify:
        if full is None:
            full = sum(os.path.getsize(p) for p in paths) <= FULL_CHECK_BYTES
        for path, shard in zip(paths, shards):
            check_shard(path, shard.get("count"), shard.get("bytes"), full)
    return paths


def check_shard(path: str, count: int | None = None, size: int | None = None,
                full: bool = False) -> None:
    """Checks that a shard is intact and holds `count` records of `size` bytes in total.

    By default only each record's 12-byte header (length and its CRC) is read and the payload is
    skipped: one small read per record whatever the videos weigh. That catches any truncation (at
    a record boundary or not), appended bytes and a corrupt length, but not a flipped bit inside a
    payload; `full` also reads every payload through TFRecordDataset, which checks its CRC (one
    sequential read of the file).

    Args:
      path: the shard file.
      count: records the manifest lists (None: old manifests without counts skip this check).
      size: bytes the manifest lists (None: manifests written before sizes were stored).
      full: also verify every payload's CRC.

    Raises:
      ValueError: one line naming the shard and what is wrong with it.
    """
    try:
        found = int(_count_records(path).numpy()) if full else _walk_headers(path)
    except (_CorruptShard, tf.errors.DataLossError) as e:
        detail = str(e) if isinstance(e, _CorruptShard) else _loss_detail(e.message)
        # `from None`: TF's chained DataLossError would bury the one line that names the shard.
        raise ValueError(f"{path} is corrupt ({detail}): {_RERUN}") from None
    if count is not None and found != count:
        raise ValueError(f"{path} holds {found} records but {MANIFEST} lists {count}: {_RERUN}")
    actual = os.path.getsize(path)
    if size is not None and actual != size:
        raise ValueError(f"{path} is {actual} bytes but {MANIFEST} lists {size}: {_RERUN}")


class _CorruptShard(Exception):
    """A record header that is cut short, fails its CRC or points past the end of the file."""


def _walk_headers(path: str) -> int:
    """Number of records, from TFRecord framing: u64 length, u32 masked CRC, payload, u32 CRC."""
    end = os.path.getsize(path)
    count = offset = 0
    with open(path, "rb", buffering=0) as f:   # unbuffered: read 12 bytes, not a whole block
        while offset < end:
            header = f.read(12)
            if len(header) < 12:
                raise _CorruptShard(f"truncated record header at byte {offset}")
            length, crc = struct.unpack("<QI", header)
            if _masked_crc32c(header[:8]) != crc:
                raise _CorruptShard(f"corrupt record header at byte {offset}")
            record_end = offset + 12 + length + 4
            if record_end > end:
                raise _CorruptShard(f"truncated record at {offset}: it needs {record_end} bytes, "
                                    f"the file has {end}")
            offset = f.seek(record_end)
            count += 1
    return count


def _crc32c_table() -> list[int]:
    """Byte table of CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C; pure Python, so only for the 8-byte length fields."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# One trace for every shard (a fixed signature), rather than a new reduce function per file.
@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _count_records(path):
    """Record count of a shard, reading every record (TFRecordDataset checks each data CRC)."""
    return tf.data.TFRecordDataset(path).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)


def _loss_detail(message: str) -> str:
    """The useful part of a DataLossError ("corrupted record at 129"), without TF's op names."""
    found = re.search(r"(corrupted|truncated) record at \d+", message)
    return found.group(0) if found else message.strip().splitlines()[0]
