"""tools/prepare_dataset.py: real video files in, shards out, read back through the pipeline."""

import errno
import json
import os
import pathlib
import signal
import subprocess
import sys

import av
import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf

from tfvidgen import viz
from tfvidgen.config import DataConfig
from tfvidgen.data import pipeline, records, synthetic
from tools import prepare_dataset as prep

RES, LENGTH = 32, 8
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _clip(index, actor=None):
    f = synthetic.sample_factors("synthetic_actions", 5, index)
    if actor is not None:
        f = synthetic.ActionFactors(**{**f.__dict__, "actor": actor})
    return synthetic.render_actions(f, range(LENGTH), RES)


def _write_avi(path, frames):
    with av.open(path, mode="w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = RES, RES, "yuv420p"
        stream.options = {"qscale": "1"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _read_all(data_dir, count, num_frames=LENGTH):
    """All videos of a prepared dir in source order, keyed by label/identity, via the pipeline."""
    cfg = DataConfig(dataset="records", data_dir=data_dir, resolution=RES, num_frames=num_frames,
                     max_stride=1, shuffle_buffer=1)
    batch = next(iter(pipeline.make_dataset(cfg, count, seed=0)))
    return {k: v.numpy() for k, v in batch.items()}


@pytest.fixture
def class_folders(tmp_path):
    root = tmp_path / "videos"
    sources = {}
    for cls, writer, ext in (("jump", viz.write_mp4, ".mp4"), ("run", _write_avi, ".avi"),
                             ("wave", viz.write_gif, ".gif")):
        (root / cls).mkdir(parents=True)
        for k in range(2):
            frames = _clip(len(sources))
            writer(str(root / cls / f"v_{cls}_g0{k + 1}_c01{ext}"), frames)
            sources[f"{cls}/v_{cls}_g0{k + 1}_c01{ext}"] = frames
    good = (root / "jump" / "v_jump_g01_c01.mp4").read_bytes()
    (root / "jump" / "v_jump_g09_c01.mp4").write_bytes(good[: len(good) // 3])   # truncated
    (root / "run" / "v_run_g09_c02.avi").write_bytes(b"not a video at all")
    return root, sources


def test_class_folders_round_trip(class_folders, tmp_path):
    root, sources = class_folders
    out = str(tmp_path / "records")
    manifest = prep.prepare(str(root), "class_folders", out, resolution=RES,
                            videos_per_shard=4)
    assert manifest["class_names"] == ["jump", "run", "wave"]
    assert manifest["num_videos"] == 6 and len(manifest["splits"]["train"]) == 2
    # The corrupt avi and the mp4 cut to a third (not one frame decodes) are skipped, with why.
    assert {s["file"] for s in manifest["skipped"]} == {"run/v_run_g09_c02.avi",
                                                         "jump/v_jump_g09_c01.mp4"}
    assert all(s["reason"] for s in manifest["skipped"])
    assert not [f for f in os.listdir(out) if f.endswith(".partial")]
    # The manifest on disk is the one returned (stamped with the records format), and each shard
    # holds the records it declares.
    on_disk = json.load(open(os.path.join(out, "manifest.json")))
    assert on_disk == {"format": records.FORMAT, **manifest}
    for shard in manifest["splits"]["train"]:
        path = os.path.join(out, shard["file"])
        assert os.path.getsize(path) == shard["bytes"], shard
        assert sum(1 for _ in tf.data.TFRecordDataset(path)) == shard["count"], shard
    assert sum(shard["count"] for shard in manifest["splits"]["train"]) == 6

    batch = _read_all(out, 6)
    by_source = {}
    names = sorted(sources)
    for video, label, identity in zip(batch["video"], batch["label"], batch["identity"]):
        errors = [np.abs(viz.to_uint8(video).astype(int) - sources[n]).mean() for n in names]
        best = names[int(np.argmin(errors))]
        by_source[best] = (min(errors), label, identity)
    assert set(by_source) == set(names)                # every source video came back once
    for name, (error, label, identity) in by_source.items():
        # 4:2:0 chroma subsampling of H.264/MPEG-4 on thin coloured limbs at 32x32, then JPEG q95.
        assert error < 6.0, (name, error)
        assert label == manifest["class_names"].index(name.split("/")[0])
        group = name.split("_g")[1][:2]                # UCF101-style group is the identity
        assert manifest["identity_names"][identity] == group


def test_weizmann_and_frame_folders_layouts(tmp_path):
    weiz = tmp_path / "weizmann"
    weiz.mkdir()
    for actor, action in (("daria", "walk"), ("lena", "walk1"), ("lena", "bend")):
        viz.write_gif(str(weiz / f"{actor}_{action}.gif"), _clip(len(os.listdir(weiz))))
    manifest = prep.prepare(str(weiz), "weizmann", str(tmp_path / "w_out"), resolution=RES)
    assert manifest["class_names"] == ["bend", "walk"]
    assert manifest["identity_names"] == ["daria", "lena"]
    assert manifest["counts"]["train"] == {"bend": 1, "walk": 2}

    frames_root = tmp_path / "frames"
    expected = {}
    for cls in ("a", "b"):
        folder = frames_root / cls / f"clip_{cls}"
        folder.mkdir(parents=True)
        frames = _clip(ord(cls))
        expected[cls] = frames
        for i, frame in enumerate(frames):
            iio.imwrite(folder / f"{i:04d}.png", frame)
    out = str(tmp_path / "f_out")
    prep.prepare(str(frames_root), "frame_folders", out, resolution=RES, encoding="raw")
    batch = _read_all(out, 2)
    for video, label in zip(batch["video"], batch["label"]):
        np.testing.assert_array_equal(viz.to_uint8(video), expected["ab"[label]])   # raw: exact


def test_resizes_and_crops_non_square_input(tmp_path):
    root = tmp_path / "wide" / "cls"
    root.mkdir(parents=True)
    frames = np.zeros((LENGTH, 48, 96, 3), np.uint8)
    frames[:, :, 24:72] = 200                     # the centre square is bright, the sides black
    viz.write_mp4(str(root / "wide.mp4"), frames)
    out = str(tmp_path / "out")
    prep.prepare(str(tmp_path / "wide"), "class_folders", out, resolution=16)
    cfg = DataConfig(dataset="records", data_dir=out, resolution=16, num_frames=4, max_stride=1)
    video = viz.to_uint8(next(iter(pipeline.make_dataset(cfg, 1, seed=0)))["video"].numpy())
    assert video.shape == (1, 4, 16, 16, 3) and video.mean() > 180


def test_layout_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(prep.LayoutError, match="is empty"):
        prep.prepare(str(tmp_path / "empty"), "class_folders", str(tmp_path / "o"))
    flat = tmp_path / "flat"
    flat.mkdir()
    viz.write_gif(str(flat / "daria_walk.gif"), _clip(0))
    with pytest.raises(prep.LayoutError, match="one sub-folder per class"):
        prep.prepare(str(flat), "class_folders", str(tmp_path / "o"))
    (flat / "no-underscore.gif").write_bytes(b"x")
    with pytest.raises(prep.LayoutError, match="no-underscore.gif"):
        prep.prepare(str(flat), "weizmann", str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()              # nothing written on a bad layout


def test_only_corrupt_files_is_one_error(tmp_path):
    (tmp_path / "in" / "c").mkdir(parents=True)
    (tmp_path / "in" / "c" / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(prep.LayoutError, match="could be decoded"):
        prep.prepare(str(tmp_path / "in"), "class_folders", str(tmp_path / "o"))


def _cli_error(*args):
    """stderr of `tools/prepare_dataset.py ARGS`, asserting exit 2 ending in one error line."""
    result = subprocess.run([sys.executable, "tools/prepare_dataset.py", *args],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("prepare_dataset: error: ")
    return result.stderr


def test_cli_reports_layout_error_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    stderr = _cli_error(f"--input_dir={tmp_path / 'empty'}", "--layout=weizmann",
                        f"--output_dir={tmp_path / 'o'}")
    assert "is empty" in stderr


# ----------------------------------------------------------------------------------------------
# Replacing an existing dataset: kills, full disks and damaged shards

def _snapshot(out):
    """Every file of a prepared dir, byte for byte."""
    return {n: (pathlib.Path(out) / n).read_bytes() for n in sorted(os.listdir(out))}


def _leftovers(out):
    """Hidden staging folders next to out (.<name>.partial-<pid> / .<name>.old-<pid>)."""
    head, name = os.path.split(out)
    return sorted(e for e in os.listdir(head) if e.startswith(f".{name}."))


def _weizmann_input(tmp_path):
    root = tmp_path / "weizmann"
    root.mkdir()
    for k, (actor, action) in enumerate((("daria", "walk"), ("lena", "walk1"), ("lena", "bend"))):
        viz.write_gif(str(root / f"{actor}_{action}.gif"), _clip(10 + k))
    return root


@pytest.mark.parametrize("atomic_exchange", [True, False])
def test_rerun_replaces_existing_dataset_completely(class_folders, tmp_path, monkeypatch,
                                                    atomic_exchange):
    root, _ = class_folders
    out = str(tmp_path / "records")
    old = prep.prepare(str(root), "class_folders", out, resolution=RES, videos_per_shard=2)
    assert len(old["splits"]["train"]) == 3
    if not atomic_exchange:     # the two-rename fallback used where renameat2 is missing
        monkeypatch.setattr(prep, "_exchange", lambda a, b: False)
    new = prep.prepare(str(_weizmann_input(tmp_path)), "weizmann", out, resolution=RES,
                       videos_per_shard=4)
    assert sorted(os.listdir(out)) == ["manifest.json", "train-00000.tfrecord"]   # no stray shard
    assert records.read_manifest(out) == {"format": records.FORMAT, **new}
    paths = records.shard_paths(out, new)
    sources = sorted(records.parse_example(b)["source"].numpy().decode()
                     for b in tf.data.TFRecordDataset(paths))
    assert sources == ["daria_walk.gif", "lena_bend.gif", "lena_walk1.gif"]
    assert sorted(_read_all(out, 3)["label"]) == [0, 1, 1]            # bend, walk, walk
    assert _leftovers(out) == []


def test_disk_full_mid_way_leaves_old_dataset_byte_identical(class_folders, tmp_path,
                                                             monkeypatch):
    root, _ = class_folders
    out = str(tmp_path / "records")
    prep.prepare(str(root), "class_folders", out, resolution=RES, videos_per_shard=2)
    before, videos = _snapshot(out), _read_all(out, 6)["video"]
    close = records.ShardWriter._close_shard

    def close_until_disk_full(self):
        if len(self.shards) == 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        close(self)

    monkeypatch.setattr(records.ShardWriter, "_close_shard", close_until_disk_full)
    with pytest.raises(OSError, match="No space left"):
        prep.prepare(str(root), "class_folders", out, resolution=16, videos_per_shard=1)
    assert _snapshot(out) == before
    np.testing.assert_array_equal(_read_all(out, 6)["video"], videos)
    assert _leftovers(out) == []


# Runs prepare() in a child that SIGKILLs itself at a chosen point, so no Python cleanup runs.
_KILL_SCRIPT = """
import os, signal, sys
from tfvidgen.data import records
from tools import prepare_dataset as prep
point, src, out = sys.argv[1:]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if point == "second_shard":
    close = records.ShardWriter._close_shard
    def close_then_die(self):
        close(self)
        if len(self.shards) == 2:
            die()
    records.ShardWriter._close_shard = close_then_die
else:  # between the two renames of the fallback swap (old dataset set aside, new not yet in)
    prep._exchange = lambda a, b: False
    rename = os.rename
    def rename_then_die(a, b):
        rename(a, b)
        die()
    os.rename = rename_then_die
prep.prepare(src, "class_folders", out, resolution=16, videos_per_shard=1)
"""


def _run_killed(point, src, out):
    result = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, point, src, out], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]


@pytest.mark.parametrize("point", ["second_shard", "fallback_swap"])
def test_sigkill_leaves_old_dataset_intact(class_folders, tmp_path, point):
    root, _ = class_folders
    out = str(tmp_path / "records")
    prep.prepare(str(root), "class_folders", out, resolution=RES, videos_per_shard=2)
    before, videos = _snapshot(out), _read_all(out, 6)["video"]
    _run_killed(point, str(root), out)
    if point == "second_shard":
        staging = _leftovers(out)
        assert len(staging) == 1 and staging[0].startswith(".records.partial-")
        assert sorted(os.listdir(tmp_path / staging[0])) == ["train-00000.tfrecord",
                                                            "train-00001.tfrecord"]
    else:
        # Without renameat2 the old dataset is briefly set aside; the next run rolls it back.
        assert not os.path.exists(out) and len(_leftovers(out)) == 2
    prep._check_output_dir(out)               # what the next run does first
    assert _leftovers(out) == []
    assert _snapshot(out) == before
    np.testing.assert_array_equal(_read_all(out, 6)["video"], videos)


def test_sigkill_without_old_dataset_leaves_no_manifest(class_folders, tmp_path):
    root, _ = class_folders
    out = str(tmp_path / "records")
    _run_killed("second_shard", str(root), out)
    assert not os.path.exists(out)
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        pipeline.make_dataset(DataConfig(dataset="records", data_dir=out), 2, seed=0)
    manifest = prep.prepare(str(root), "class_folders", out, resolution=RES)  # cleans up, works
    assert manifest["num_videos"] == 6 and _leftovers(out) == []


def test_refuses_output_dir_that_is_not_a_dataset(class_folders, tmp_path):
    root, _ = class_folders
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "notes.txt").write_text("keep me")
    with pytest.raises(prep.OutputDirError, match="holds no manifest.json: refusing"):
        prep.prepare(str(root), "class_folders", str(user_dir), resolution=RES)
    assert os.listdir(user_dir) == ["notes.txt"] and _leftovers(str(user_dir)) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(prep.OutputDirError, match="not a folder"):
        prep.prepare(str(root), "class_folders", str(tmp_path / "file"), resolution=RES)
    stderr = _cli_error(f"--input_dir={root}", "--layout=class_folders",
                        f"--output_dir={user_dir}")
    assert "refusing to replace" in stderr and "Traceback" not in stderr


def test_shard_truncated_at_record_boundary_fails_construction(class_folders, tmp_path):
    root, _ = class_folders
    out = str(tmp_path / "records")
    prep.prepare(str(root), "class_folders", out, resolution=RES, videos_per_shard=2)
    assert _read_all(out, 6)["video"].shape[0] == 6                  # intact: reads
    shard = os.path.join(out, "train-00001.tfrecord")
    kept = list(tf.data.TFRecordDataset(shard).as_numpy_iterator())[:-1]
    with tf.io.TFRecordWriter(shard) as writer:                      # one record fewer
        for blob in kept:
            writer.write(blob)
    with pytest.raises(ValueError) as error:
        _read_all(out, 6)
    assert str(error.value) == (f"{shard} holds 1 records but manifest.json lists 2: "
                                f"re-run tools/prepare_dataset.py")
