"""Checkpoint fault injection: truncated, bit-flipped and unindexed checkpoints fall back to the
newest readable one; a refused resume writes nothing; inference verifies what it restored."""

import errno
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_config
from tfvidgen import callbacks, checkpoints, train_lib


def _train(workdir, steps, **changes):
    config = tiny_config(workdir=str(workdir)).replace(
        train={"train_steps": steps, **changes.pop("train", {})},
        runtime={"checkpoint_every": 2, "log_every": 100, "sample_every": 100,
                 **changes.pop("runtime", {})}, **changes)
    return train_lib.run(config), config


@pytest.fixture(scope="module")
def trained_four_steps(tmp_path_factory):
    """A tiny run with checkpoints at steps 2 and 4 (copied per test before damaging it)."""
    workdir = tmp_path_factory.mktemp("ckpt") / "w"
    _train(workdir, 4)
    return workdir


def _copy(src, tmp_path):
    import shutil
    dst = tmp_path / "w"
    shutil.copytree(src, dst)
    return dst


def _truncate(prefix):
    data = prefix + ".data-00000-of-00001"
    size = os.path.getsize(data)
    with open(data, "r+b") as f:
        f.truncate(size // 2)


def _flip_bytes(prefix):
    # One byte in every 256: every tensor's CRC fails, whichever ones a reader needs.
    data = prefix + ".data-00000-of-00001"
    content = bytearray(open(data, "rb").read())
    content[::256] = bytes(b ^ 0xFF for b in content[::256])
    open(data, "wb").write(bytes(content))


@pytest.mark.parametrize("damage", [_truncate, _flip_bytes])
def test_damaged_latest_checkpoint_falls_back_with_one_warning(damage, trained_four_steps,
                                                               tmp_path, capsys):
    workdir = _copy(trained_four_steps, tmp_path)
    ckpt_dir = str(workdir / "checkpoints")
    damage(os.path.join(ckpt_dir, "ckpt-4"))
    # Inference (sample/export) restores ckpt-2 instead of failing.
    model, _, step = train_lib.build_for_inference(str(workdir))
    assert step == 2
    out = capsys.readouterr().out
    assert out.count("warning: checkpoint") == 1 and "ckpt-4" in out
    # Training resumes from step 2, sets ckpt-4 aside, and writes a good ckpt-4 and ckpt-6.
    result, _ = _train(workdir, 6)
    assert result["resumed_from"] == 2 and result["step"] == 6
    assert os.path.exists(os.path.join(ckpt_dir, "unreadable", "ckpt-4.index"))
    assert [s for s, _ in checkpoints.available(ckpt_dir)] == [6, 4, 2]
    assert tf.train.latest_checkpoint(ckpt_dir).endswith("ckpt-6")


def test_missing_index_file_resumes_from_the_newest_checkpoint_not_from_zero(trained_four_steps,
                                                                             tmp_path):
    workdir = _copy(trained_four_steps, tmp_path)
    ckpt_dir = str(workdir / "checkpoints")
    os.remove(os.path.join(ckpt_dir, "checkpoint"))
    reader = tf.train.load_checkpoint(os.path.join(ckpt_dir, "ckpt-4"))
    saved = {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(
        os.path.join(ckpt_dir, "ckpt-4")) if n.startswith("generator/")}
    _, _, step = train_lib.build_for_inference(str(workdir))
    assert step == 4
    result, _ = _train(workdir, 5)
    assert result["resumed_from"] == 4 and result["step"] == 5
    # ckpt-4 was not overwritten by a run restarted from 0.
    reader = tf.train.load_checkpoint(os.path.join(ckpt_dir, "ckpt-4"))
    for name, value in saved.items():
        np.testing.assert_array_equal(reader.get_tensor(name), value)


def test_no_readable_checkpoint_refuses_to_start_over(trained_four_steps, tmp_path):
    workdir = _copy(trained_four_steps, tmp_path)
    ckpt_dir = str(workdir / "checkpoints")
    for _, prefix in checkpoints.available(ckpt_dir):
        _truncate(prefix)
    before = sorted(os.listdir(ckpt_dir))
    with pytest.raises(checkpoints.UnreadableCheckpoints, match=r"To start over, delete .*checkp"):
        _train(workdir, 6)
    assert sorted(os.listdir(ckpt_dir)) == before           # nothing overwritten or moved


def test_refused_resume_names_each_flag_and_writes_nothing(trained_four_steps, tmp_path):
    workdir = _copy(trained_four_steps, tmp_path)
    (workdir / "flags.cfg").write_text("--resolution=16\n")
    files = {name: (workdir / name).read_bytes() for name in ("config.json", "flags.cfg")}
    for changes, flag in (({"data": {"resolution": 32}}, "--resolution 16 -> 32"),
                          ({"data": {"num_frames": 8}}, "--num_frames 4 -> 8"),
                          ({"train": {"ema_decay": 0.9}}, "--ema_decay 0.0 -> 0.9"),
                          ({"model_params": {"base_channels": 8, "d_channels": 4,
                                             "z_appearance": 8, "z_motion": 4}},
                           "--model_param base_channels 4 -> 8")):
        with pytest.raises(ValueError, match="cannot resume") as info:
            _train(workdir, 6, **changes)
        assert flag in str(info.value) and "\n" not in str(info.value)
        for name, content in files.items():
            assert (workdir / name).read_bytes() == content, name
    _, _, step = train_lib.build_for_inference(str(workdir))     # still samples and exports
    assert step == 4


def test_resume_applies_a_changed_learning_rate_and_records_it(trained_four_steps, tmp_path,
                                                               capsys):
    workdir = _copy(trained_four_steps, tmp_path)
    _train(workdir, 5, train={"g_lr": 1e-3})
    assert "resume: --g_lr 0.0002 -> 0.001" in capsys.readouterr().out
    assert json.loads((workdir / "config.json").read_text())["train"]["g_lr"] == 1e-3
    ckpt = os.path.join(str(workdir / "checkpoints"), "ckpt-5")
    rates = [tf.train.load_variable(ckpt, n) for n, _ in tf.train.list_variables(ckpt)
             if n.startswith("g_optimizer/") and "learning_rate" in n]
    assert rates and all(np.isclose(r, 1e-3) for r in rates)


def test_inference_refuses_a_checkpoint_without_the_configured_ema(trained_four_steps, tmp_path):
    workdir = _copy(trained_four_steps, tmp_path)
    config = json.loads((workdir / "config.json").read_text())
    config["train"]["ema_decay"] = 0.9                # as a damaged resume once left it
    (workdir / "config.json").write_text(json.dumps(config))
    with pytest.raises(checkpoints.UnreadableCheckpoints, match="ckpt-4"):
        train_lib.build_for_inference(str(workdir))


def test_a_failed_save_removes_its_partial_files_and_keeps_the_last_checkpoint(tmp_path):
    ckpt_dir = str(tmp_path / "checkpoints")
    step = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(step=step), ckpt_dir, 3)
    saver = callbacks.Checkpointer(manager, 1, [tf.Variable(1.0)])
    saver.save(1)

    def full_disk(checkpoint_number):
        os.makedirs(os.path.join(ckpt_dir, f"ckpt-{checkpoint_number}_temp", "part"))
        open(os.path.join(ckpt_dir, f"ckpt-{checkpoint_number}.data-00000-of-00001"),
             "w").close()
        raise tf.errors.ResourceExhaustedError(None, None, "write failed: No space left on device")

    manager.save = full_disk
    with pytest.raises(callbacks.CheckpointSaveError, match=r"step 1\) is kept") as info:
        saver.save(2)
    assert info.value.errno == errno.ENOSPC
    assert sorted(os.listdir(ckpt_dir)) == ["checkpoint", "ckpt-1.data-00000-of-00001",
                                            "ckpt-1.index"]
