"""tools/prepare_dataset.py: real video files in, shards out, read back through the pipeline."""

import json
import os
import subprocess
import sys

import av
import imageio.v3 as iio
import numpy as np
import pytest

from tfvidgen import viz
from tfvidgen.config import DataConfig
from tfvidgen.data import pipeline, synthetic
from tools import prepare_dataset as prep

RES, LENGTH = 32, 8


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
    skipped = {s["file"] for s in manifest["skipped"]}
    assert "run/v_run_g09_c02.avi" in skipped
    # The truncated mp4 is either skipped or keeps only the frames that decoded.
    assert "jump/v_jump_g09_c01.mp4" in skipped or manifest["num_videos"] == 6
    assert not [f for f in os.listdir(out) if f.endswith(".partial")]
    assert json.load(open(os.path.join(out, "manifest.json")))["num_videos"] == 6

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


def test_cli_reports_layout_error_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "tools/prepare_dataset.py", f"--input_dir={tmp_path / 'empty'}",
         "--layout=weizmann", f"--output_dir={tmp_path / 'o'}"],
        capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.abspath(__file__)))), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("prepare_dataset: error: ")
    assert "is empty" in result.stderr
