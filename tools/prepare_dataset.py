"""Converts a folder of videos into sharded TFRecords plus manifest.json for `--dataset=records`.

Layouts:
  class_folders  <input_dir>/<class>/<video file>            (UCF101 style; `_gNN_` in a file name
                                                               is taken as the identity/group)
  weizmann       <input_dir>/<actor>_<action>[N].<ext>        (e.g. daria_walk.avi, lena_walk1.avi)
  frame_folders  <input_dir>/<class>/<video folder>/<frames>  (JPEG/PNG frames, sorted by name)

Videos are decoded with PyAV (mp4, avi, mov, mkv, webm, ...) or imageio (gif), centre-cropped to a
square, resized to --resolution and stored JPEG-encoded (or raw with --encoding=raw). A file that
cannot be decoded is skipped with a warning and listed in the manifest with the reason; an empty
input or a layout that does not match is one clear error.

The dataset is built in a hidden staging folder next to --output_dir (`.<name>.partial-<pid>`) and
swapped in only when complete (one atomic rename-exchange on Linux), so --output_dir always holds
either the complete old dataset or the complete new one: a killed run or a full disk changes
nothing, and the next run removes the leftovers. An existing --output_dir that is not a prepared
dataset (non-empty, no manifest.json) is refused rather than replaced.

  python tools/prepare_dataset.py --input_dir=~/weizmann --layout=weizmann \
      --output_dir=data/weizmann64 --resolution=64
"""

from __future__ import annotations

import collections
import ctypes
import errno
import hashlib
import os
import re
import shutil
import sys
import time

import tfvidgen  # noqa: F401  (oneDNN default before TensorFlow loads)

import numpy as np
from absl import app, flags, logging

from tfvidgen.data.frames import center_crop_resize  # re-exported: part of this tool's API

__all__ = ["LAYOUTS", "LayoutError", "OutputDirError", "discover", "decode_video",
           "center_crop_resize", "prepare"]

LAYOUTS = ("class_folders", "weizmann", "frame_folders")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v", ".gif")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")

_WEIZMANN = re.compile(r"^(?P<actor>[A-Za-z0-9]+)_(?P<action>[A-Za-z]+?)\d*$")
_UCF_GROUP = re.compile(r"_g(\d+)_")


class LayoutError(ValueError):
    """The input folder does not match the requested layout (or is empty)."""


class OutputDirError(ValueError):
    """--output_dir exists but is not a prepared dataset: replacing it could delete user files."""


# ----------------------------------------------------------------------------------------------
# Discovery: layout -> list of (path, class name, identity name or None)

def discover(input_dir: str, layout: str) -> list[tuple[str, str, str | None]]:
    if not os.path.isdir(input_dir):
        raise LayoutError(f"--input_dir={input_dir!r} is not a directory")
    if layout not in LAYOUTS:
        raise LayoutError(f"--layout={layout!r}: expected one of {', '.join(LAYOUTS)}")
    entries = sorted(os.listdir(input_dir))
    if not entries:
        raise LayoutError(f"--input_dir={input_dir!r} is empty")
    items = []
    if layout == "weizmann":
        files = [e for e in entries if e.lower().endswith(VIDEO_EXTENSIONS)]
        bad = [e for e in files if not _WEIZMANN.match(os.path.splitext(e)[0])]
        if not files or bad:
            example = (bad or entries)[:3]
            raise LayoutError(f"--layout=weizmann expects <actor>_<action>.<ext> video files in "
                              f"{input_dir!r}; these do not match: {example}")
        for e in files:
            m = _WEIZMANN.match(os.path.splitext(e)[0])
            items.append((os.path.join(input_dir, e), m["action"], m["actor"]))
        return items
    classes = [e for e in entries if os.path.isdir(os.path.join(input_dir, e))]
    if not classes:
        raise LayoutError(f"--layout={layout} expects one sub-folder per class in {input_dir!r}, "
                          f"found only files: {entries[:3]}")
    for cls in classes:
        cls_dir = os.path.join(input_dir, cls)
        for e in sorted(os.listdir(cls_dir)):
            path = os.path.join(cls_dir, e)
            if layout == "class_folders" and os.path.isfile(path) and \
                    e.lower().endswith(VIDEO_EXTENSIONS):
                group = _UCF_GROUP.search(e)
                items.append((path, cls, group.group(1) if group else None))
            elif layout == "frame_folders" and os.path.isdir(path):
                items.append((path, cls, None))
    if not items:
        wanted = "video files" if layout == "class_folders" else "folders of frames"
        raise LayoutError(f"--layout={layout}: no {wanted} inside the class folders of "
                          f"{input_dir!r}")
    return items


# ----------------------------------------------------------------------------------------------
# Decoding: path -> uint8 [T, H, W, 3]

def decode_video(path: str, max_frames: int = 0) -> np.ndarray:
    """Decodes all frames (or the first max_frames); raises ValueError on unreadable input."""
    try:
        if os.path.isdir(path):
            frames = _decode_frame_folder(path, max_frames)
        elif path.lower().endswith(".gif"):
            import imageio.v3 as iio
            frames = [f[..., :3] if f.ndim == 3 else np.stack([f] * 3, -1)
                      for f in iio.imread(path, index=None)]
        else:
            frames = _decode_pyav(path, max_frames)
    except Exception as e:   # noqa: BLE001 - any decoder failure means "skip this file"
        raise ValueError(f"{type(e).__name__}: {e}") from e
    if max_frames:
        frames = frames[:max_frames]
    if len(frames) == 0:
        raise ValueError("no frames could be decoded")
    return np.stack(frames).astype(np.uint8)


def _decode_pyav(path: str, max_frames: int) -> list[np.ndarray]:
    import av
    frames = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames and len(frames) >= max_frames:
                break
    return frames


def _decode_frame_folder(path: str, max_frames: int) -> list[np.ndarray]:
    import imageio.v3 as iio
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(FRAME_EXTENSIONS))
    if max_frames:
        names = names[:max_frames]
    frames = []
    for n in names:
        f = iio.imread(os.path.join(path, n))
        frames.append(np.stack([f] * 3, -1) if f.ndim == 2 else f[..., :3])
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"frames have different sizes: {sorted(shapes)[:2]}")
    return frames


# ----------------------------------------------------------------------------------------------

def prepare(input_dir: str, layout: str, output_dir: str, resolution: int = 64,
            encoding: str = "jpeg", jpeg_quality: int = 95, videos_per_shard: int = 256,
            max_frames: int = 0, min_frames: int = 2, test_fraction: float = 0.0,
            progress_every: int = 25) -> dict:
    """Converts input_dir into shards plus manifest.json, replacing output_dir only when complete.

    Returns:
      The manifest dict (also written to output_dir/manifest.json).

    Raises:
      LayoutError: the input is empty, does not match `layout`, or holds no decodable video.
      OutputDirError: output_dir exists and is not a prepared dataset.
      OSError: writing failed (e.g. disk full); output_dir is then unchanged.
    """
    items = discover(input_dir, layout)
    target = _check_output_dir(output_dir)
    staging = _staging_path(target, "partial")
    os.mkdir(staging)
    try:
        manifest = _convert(items, input_dir, layout, staging, resolution=resolution,
                            encoding=encoding, jpeg_quality=jpeg_quality,
                            videos_per_shard=videos_per_shard, max_frames=max_frames,
                            min_frames=min_frames, test_fraction=test_fraction,
                            progress_every=progress_every)
        _swap_into_place(staging, target)
    except BaseException:
        # Also on KeyboardInterrupt; only SIGKILL leaves the staging folder, for the next run.
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _convert(items, input_dir, layout, out_dir, *, resolution, encoding, jpeg_quality,
             videos_per_shard, max_frames, min_frames, test_fraction, progress_every) -> dict:
    """Decodes every item into shards in out_dir and writes the manifest there last."""
    from tfvidgen.data import records   # imports TensorFlow: only once the input looks right
    class_names = sorted({c for _, c, _ in items})
    identity_names = sorted({i for _, _, i in items if i is not None})
    writers = {"train": records.ShardWriter(out_dir, "train", videos_per_shard),
               "test": records.ShardWriter(out_dir, "test", videos_per_shard)}
    counts = collections.Counter()
    lengths, skipped = [], []
    start = time.time()
    for k, (path, cls, identity) in enumerate(items, 1):
        rel = os.path.relpath(path, input_dir)
        try:
            frames = decode_video(path, max_frames)
            if len(frames) < min_frames:
                raise ValueError(f"only {len(frames)} frame(s), need at least {min_frames}")
            frames = center_crop_resize(frames, resolution)
        except ValueError as e:
            logging.warning("skipping %s: %s", rel, e)
            skipped.append({"file": rel, "reason": str(e)})
            continue
        split = "test" if _in_test_split(rel, test_fraction) else "train"
        writers[split].write(records.serialize_video(
            frames, class_names.index(cls),
            identity_names.index(identity) if identity is not None else -1, rel, encoding,
            jpeg_quality))
        counts[(split, cls)] += 1
        lengths.append(len(frames))
        if k % progress_every == 0 or k == len(items):
            rate = k / max(time.time() - start, 1e-6)
            print(f"[prepare_dataset] {k}/{len(items)} videos ({rate:.1f}/s, "
                  f"ETA {(len(items) - k) / rate:.0f}s, {len(skipped)} skipped)", flush=True)
    splits = {name: w.close() for name, w in writers.items()}
    if not lengths:
        raise LayoutError(f"no video in {input_dir!r} could be decoded "
                          f"({len(skipped)} skipped; first: {skipped[0]['reason']})")
    manifest = {
        "layout": layout, "source_dir": os.path.abspath(input_dir), "resolution": resolution,
        "encoding": encoding, "class_names": class_names, "identity_names": identity_names,
        "num_videos": len(lengths),
        "num_frames": {"min": int(min(lengths)), "max": int(max(lengths)),
                       "mean": float(np.mean(lengths))},
        "counts": {split: {c: counts[(split, c)] for c in class_names if counts[(split, c)]}
                   for split in splits},
        "splits": {split: shards for split, shards in splits.items() if shards},
        "skipped": skipped,
    }
    records.write_manifest(out_dir, manifest)
    return manifest


# ----------------------------------------------------------------------------------------------
# Replacing output_dir: staging folder, then one swap

def _check_output_dir(output_dir: str) -> str:
    """Real path of output_dir after removing dead runs' leftovers; refuses a non-dataset folder."""
    # realpath: a symlinked output_dir keeps its link, and the staging folder lands on the same
    # file system as the target (rename cannot cross file systems).
    target = os.path.realpath(os.path.expanduser(output_dir))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    _clean_leftovers(target)
    if os.path.lexists(target):
        if not os.path.isdir(target):
            raise OutputDirError(f"--output_dir={output_dir!r} exists and is not a folder")
        if os.listdir(target) and not os.path.isfile(os.path.join(target, "manifest.json")):
            raise OutputDirError(f"--output_dir={output_dir!r} is not empty and holds no "
                                 f"manifest.json: refusing to replace it (choose a new folder)")
        if os.path.ismount(target):
            raise OutputDirError(f"--output_dir={output_dir!r} is a mount point and cannot be "
                                 f"swapped: use a sub-folder")
    return target


def _staging_path(target: str, kind: str) -> str:
    """Hidden sibling of target: .<name>.<kind>-<pid>, kind "partial" (new) or "old" (set aside)."""
    head, name = os.path.split(target)
    return os.path.join(head, f".{name}.{kind}-{os.getpid()}")


def _clean_leftovers(target: str) -> None:
    """Removes staging folders of runs that are no longer alive; restores an interrupted swap."""
    head, name = os.path.split(target)
    pattern = re.compile(rf"^\.{re.escape(name)}\.(partial|old)-(\d+)$")
    for entry in sorted(os.listdir(head)):
        found = pattern.match(entry)
        if not found or _alive(int(found.group(2))):
            continue
        path = os.path.join(head, entry)
        if found.group(1) == "old" and not os.path.lexists(target):
            # Killed between the two renames of _swap_into_place's fallback: the set-aside old
            # dataset is complete, so roll back to it.
            os.rename(path, target)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether another process has this pid (a reused pid only delays the clean-up)."""
    if pid == os.getpid():
        return False      # a leftover of an earlier run that had our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True       # exists, owned by someone else
    return True


def _swap_into_place(staging: str, target: str) -> None:
    """Makes the complete staging folder `target`; target is never a mix of old and new files."""
    if not os.path.lexists(target) or not os.listdir(target):
        os.replace(staging, target)    # POSIX rename may replace an empty folder atomically
        return
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)   # now holds the old dataset
        return
    # No atomic exchange (not Linux, or the file system lacks it): for the instant between the
    # two renames target is absent; a run killed there is rolled back by _clean_leftovers.
    aside = _staging_path(target, "old")
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: str, b: str) -> bool:
    """Atomically swaps two paths with Linux renameat2(RENAME_EXCHANGE); False if unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), b)


def _in_test_split(rel_path: str, fraction: float) -> bool:
    """Stable assignment by file name, so re-running never moves a video between splits."""
    if fraction <= 0:
        return False
    digest = int(hashlib.sha1(rel_path.encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < fraction


def _main(argv):
    del argv
    f = flags.FLAGS
    try:
        manifest = prepare(os.path.expanduser(f.input_dir), f.layout, f.output_dir, f.resolution,
                           f.encoding, f.jpeg_quality, f.videos_per_shard, f.max_frames,
                           f.min_frames, f.test_fraction)
    except (LayoutError, OutputDirError) as e:
        print(f"prepare_dataset: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {manifest['num_videos']} videos in "
          f"{sum(len(s) for s in manifest['splits'].values())} shard(s) to {f.output_dir} "
          f"({len(manifest['class_names'])} classes, {len(manifest['skipped'])} skipped)")
    return 0


if __name__ == "__main__":
    flags.DEFINE_string("input_dir", None, "Folder of videos to convert.", required=True)
    flags.DEFINE_enum("layout", None, list(LAYOUTS), "How classes/identities are encoded in the "
                      "folder structure.", required=True)
    flags.DEFINE_string("output_dir", None, "Where shards and manifest.json go.", required=True)
    flags.DEFINE_integer("resolution", 64, "Output frame size (square).", lower_bound=8)
    flags.DEFINE_enum("encoding", "jpeg", ["jpeg", "raw"], "How frames are stored.")
    flags.DEFINE_integer("jpeg_quality", 95, "JPEG quality.", lower_bound=1, upper_bound=100)
    flags.DEFINE_integer("videos_per_shard", 256, "Videos per TFRecord shard.", lower_bound=1)
    flags.DEFINE_integer("max_frames", 0, "Keep at most this many frames per video (0 = all).",
                         lower_bound=0)
    flags.DEFINE_integer("min_frames", 2, "Skip videos shorter than this.", lower_bound=1)
    flags.DEFINE_float("test_fraction", 0.0, "Share of videos (by file-name hash) written to the "
                       "test split.", lower_bound=0.0, upper_bound=1.0)
    app.run(_main)
