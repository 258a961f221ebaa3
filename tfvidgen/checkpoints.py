"""Finding and restoring checkpoints so that a damaged one never costs more than itself.

Checkpoints are found by their files (`ckpt-<step>.index`), not only through CheckpointManager's
`checkpoint` index file: a missing index file once made training restart from step 0 and overwrite
older checkpoints. Restoring tries the newest first and falls back, with one warning line each, to
the next readable one (a truncated or bit-flipped file fails its CRC check on read). Training never
starts from 0 while any checkpoint exists: it refuses, naming what to delete to start over.
"""

from __future__ import annotations

import glob
import os
import re
import shutil

import tensorflow as tf

__all__ = ["available", "restore_newest", "rewrite_index", "set_aside", "remove_partial_save",
           "UnreadableCheckpoints"]

_CKPT = re.compile(r"^ckpt-(\d+)\.index$")
# What a damaged checkpoint raises on restore (CRC mismatch, truncation, missing shard, garbage
# in the index) and what a checkpoint from another configuration raises (shape or object-graph
# mismatch: AssertionError from assert_consumed, ValueError on shapes).
# IndexError: TF's reader on a data file cut short ("Read less bytes than requested").
_RESTORE_ERRORS = (tf.errors.OpError, ValueError, AssertionError, OSError, IndexError)


class UnreadableCheckpoints(ValueError):
    """Checkpoints exist but none of them could be restored."""


def available(ckpt_dir: str) -> list[tuple[int, str]]:
    """[(step, prefix)] of every checkpoint whose index file exists, newest first."""
    found = []
    for path in glob.glob(os.path.join(ckpt_dir, "ckpt-*.index")):
        match = _CKPT.match(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path[:-len(".index")]))
    return sorted(found, reverse=True)


def _first_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0][:300]


def restore_newest(restore, ckpt_dir: str, warn) -> str | None:
    """Restores the newest readable checkpoint of ckpt_dir.

    Args:
      restore: called with a checkpoint prefix; restores it and raises if the restore is
        incomplete (e.g. `lambda p: checkpoint.restore(p).assert_consumed()` for training).
      warn: receives one line per checkpoint skipped.
    Returns:
      the restored prefix, or None when ckpt_dir holds no checkpoint.
    Raises:
      UnreadableCheckpoints: there are checkpoints, but none could be restored.
    """
    candidates = available(ckpt_dir)
    failures = []
    for step, prefix in candidates:
        try:
            restore(prefix)
        except _RESTORE_ERRORS as e:
            failures.append(f"{os.path.basename(prefix)}: {_first_line(e)}")
            warn(f"warning: checkpoint {prefix} cannot be restored ({_first_line(e)}); "
                 f"trying the previous one")
            continue
        return prefix
    if candidates:
        raise UnreadableCheckpoints(
            f"none of the {len(candidates)} checkpoint(s) in {ckpt_dir} can be restored ("
            f"{'; '.join(failures)}). To start over, delete {ckpt_dir} (or use a new --workdir)")
    return None


def set_aside(ckpt_dir: str, restored: str) -> list[str]:
    """Moves the files of checkpoints newer than `restored` into <ckpt_dir>/unreadable/, so
    the resumed run neither trusts nor deletes them. Returns the moved prefixes."""
    restored_step = int(restored.rsplit("-", 1)[1])
    moved = []
    for step, prefix in available(ckpt_dir):
        if step <= restored_step:
            continue
        target = os.path.join(ckpt_dir, "unreadable")
        os.makedirs(target, exist_ok=True)
        for path in glob.glob(prefix + ".*"):
            shutil.move(path, os.path.join(target, os.path.basename(path)))
        moved.append(prefix)
    return moved


def rewrite_index(ckpt_dir: str, restored: str) -> None:
    """Points CheckpointManager's index file at `restored` (and the older checkpoints), so the
    resumed run keeps rotating them even when the index file was missing or stale."""
    restored_step = int(restored.rsplit("-", 1)[1])
    older = [p for s, p in reversed(available(ckpt_dir)) if s <= restored_step]
    tf.compat.v1.train.update_checkpoint_state(ckpt_dir, restored,
                                               all_model_checkpoint_paths=older)


def remove_partial_save(ckpt_dir: str, step: int) -> None:
    """Removes what an interrupted save of ckpt-<step> left (its `_temp` directory, a data file
    without an index), so a full disk leaves no half-written checkpoint behind."""
    prefix = os.path.join(ckpt_dir, f"ckpt-{step}")
    for path in glob.glob(prefix + "_temp*"):
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
    if not os.path.exists(prefix + ".index"):
        for path in glob.glob(prefix + ".data-*"):
            os.remove(path)
