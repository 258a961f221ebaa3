"""`python -m tfvidgen.transfer`: any image size centre-cropped and resized as the data pipeline
does, a video's first frames, the transfer written as a video; a non-image file is one error."""

import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from tests.helpers import REPO, subprocess_env, tiny_config
from tfvidgen import media, train_lib, transfer, viz


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny Dual-MTGAN trained 1 step on synthetic_actions triples."""
    path = tmp_path_factory.mktemp("dual") / "w"
    config = tiny_config("dual_mtgan", workdir=str(path)).replace(
        data={"dataset": "synthetic_actions"}, train={"train_steps": 1})
    train_lib.run(config)
    return str(path)


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    image = np.zeros((30, 50, 3), np.uint8)
    image[:, 10:40] = 200                     # the centre 30x30 square is uniformly 200
    image_path = tmp_path / "wide.png"
    iio.imwrite(image_path, image)
    video_path = tmp_path / "motion.mp4"
    viz.write_mp4(str(video_path), rng.integers(0, 256, (3, 24, 20, 3), dtype=np.uint8))
    return str(image_path), str(video_path)


def test_images_of_any_size_are_centre_cropped_and_resized(files, tmp_path):
    image_path, video_path = files
    image = media.load_image(image_path, 16)
    assert image.shape == (16, 16, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image, 200 / 127.5 - 1.0, atol=1e-6)   # the borders are cut off
    gray = tmp_path / "gray.png"
    iio.imwrite(gray, np.full((20, 20), 255, np.uint8))
    np.testing.assert_allclose(media.load_image(str(gray), 8), 1.0)
    video = media.load_video(video_path, 16, 5)                    # 3 frames: last repeated
    assert video.shape == (5, 16, 16, 3) and np.abs(video).max() <= 1.0
    np.testing.assert_array_equal(video[3], video[2])
    np.testing.assert_array_equal(video[4], video[2])


def test_a_file_that_is_not_an_image_is_a_value_error_naming_the_flag(tmp_path):
    text = tmp_path / "a.png"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"--image='.*a.png' is not an image file"):
        media.load_image(str(text), 16)
    video = tmp_path / "clip.mp4"
    viz.write_mp4(str(video), np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="is not an image file"):     # a video is not an image
        media.load_image(str(video), 16)
    with pytest.raises(ValueError, match="no such file"):
        media.load_image(str(tmp_path / "missing.png"), 16)


def _run(*args):
    return subprocess.run([sys.executable, "-m", "tfvidgen.transfer", *args], cwd=REPO,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)


def test_the_command_writes_source_target_and_result_and_refuses_a_non_image(workdir, files,
                                                                             tmp_path):
    image_path, video_path = files
    output = tmp_path / "out.png"            # a frame grid: one row per video, one column a frame
    result = _run(f"--workdir={workdir}", f"--image={image_path}", f"--video={video_path}",
                  f"--output={output}", "--compare")
    assert result.returncode == 0, result.stderr[-2000:]
    grid = iio.imread(output)
    assert grid.shape == (3 * 17 - 1, 4 * 17 - 1, 3)      # source, image, result x 4 frames
    np.testing.assert_allclose(grid[17:33, :16], 200, atol=1)      # the still target image
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    result = _run(f"--workdir={workdir}", f"--image={text}", f"--video={video_path}",
                  f"--output={tmp_path / 'bad.gif'}")
    lines = [line for line in result.stderr.splitlines() if line.startswith("transfer: error:")]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert f"--image='{text}' is not an image file" in lines[0]
    assert not (tmp_path / "bad.gif").exists()


def test_in_process_transfer_of_files_from_a_workdir_and_its_export(workdir, files, tmp_path):
    import json

    from tfvidgen import export, sources
    loaded = sources.load(sources.source_from(workdir, None))
    model = loaded.generator
    source, image, result = transfer.transfer_files(model, *files)
    assert source.shape == result.shape == (1, 4, 16, 16, 3) and image.shape == (1, 16, 16, 3)
    np.testing.assert_allclose(result, model.transfer(image, source).numpy(), atol=1e-6)
    metadata = {"config": json.loads(open(f"{workdir}/config.json").read())}
    path = export.export_model(model, metadata, str(tmp_path / "exp"))
    served = sources.load(sources.source_from(None, path))
    assert served.capabilities.transfer
    _, _, from_export = transfer.transfer_files(served.generator, *files)
    # the export serves uint8: one level apart at most
    assert np.abs(viz.to_uint8(from_export).astype(int) - viz.to_uint8(result)).max() <= 1


def test_a_model_without_transfer_is_one_error(trained_workdir, files, tmp_path):
    workdir, _ = trained_workdir
    result = _run(f"--workdir={workdir}", f"--image={files[0]}", f"--video={files[1]}",
                  f"--output={tmp_path / 'out.gif'}")
    lines = [line for line in result.stderr.splitlines() if line.startswith("transfer: error:")]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert "holds a g3an model, which does no motion transfer" in lines[0]
