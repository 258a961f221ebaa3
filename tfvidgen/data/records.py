"""TFRecord storage of videos: one tf.train.Example per video, shards plus a JSON manifest.

Example features:
  frames     bytes list: one JPEG per frame (encoding "jpeg") or one raw uint8 buffer ("raw")
  num_frames, height, width, label, identity   int64
  source, encoding                               bytes

Shards are written under a `.partial` name and renamed when closed, and the manifest (written last,
also atomically) lists the shards that belong to the dataset; readers use only what it lists, so a
killed writer never leaves a shard that looks complete.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

__all__ = ["MANIFEST", "FORMAT", "serialize_video", "parse_example", "decode_frames", "ShardWriter",
           "write_manifest", "read_manifest", "shard_paths"]

MANIFEST = "manifest.json"
FORMAT = "tfvidgen-records-v1"

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
    """Writes examples into shards of at most `per_shard` videos, each renamed into place when full."""

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
        os.replace(self._tmp, os.path.join(self._dir, self._name))
        self.shards.append({"file": self._name, "count": self._count})
        self._writer, self._count = None, 0

    def close(self) -> list[dict]:
        if self._writer is not None:
            self._close_shard()
        return self.shards


def write_manifest(output_dir: str, manifest: dict) -> str:
    path = os.path.join(output_dir, MANIFEST)
    tmp = path + ".partial"
    with open(tmp, "w") as f:
        json.dump({"format": FORMAT, **manifest}, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
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


def shard_paths(data_dir: str, manifest: dict, split: str = "train") -> list[str]:
    """Absolute paths of a split's shards, checking that each exists."""
    shards = manifest.get("splits", {}).get(split, [])
    if not shards:
        raise ValueError(f"--data_dir={data_dir!r}: manifest lists no shards for split {split!r}")
    paths = [os.path.join(data_dir, s["file"]) for s in shards]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"--data_dir={data_dir!r}: shard(s) listed in the manifest are "
                                f"missing: {', '.join(missing[:3])}")
    return paths
