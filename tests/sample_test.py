"""Sampling: latent arrangements for disentanglement, and the CLI end to end on a trained workdir."""

import os
import subprocess
import sys

import av
import imageio.v3 as iio
import numpy as np
import pytest

from tfvidgen import sample

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _latents(n, offset):
    rng = np.random.default_rng(offset)
    return {"z_appearance": rng.normal(size=(n, 3)).astype(np.float32),
            "z_motion": rng.normal(size=(n, 2)).astype(np.float32)}


def test_fix_appearance_and_motion():
    base, other = _latents(4, 0), _latents(4, 1)
    fixed, _ = sample.arrange_latents(base, other, "appearance", "none", 4)
    assert np.all(fixed["z_appearance"] == base["z_appearance"][0])
    np.testing.assert_array_equal(fixed["z_motion"], base["z_motion"])
    fixed, _ = sample.arrange_latents(base, other, "motion", "none", 4)
    assert np.all(fixed["z_motion"] == base["z_motion"][0])


def test_grid_rows_share_appearance_columns_share_motion():
    base = _latents(9, 0)
    grid, columns = sample.arrange_latents(base, base, "grid", "none", 9)
    assert columns == 3
    za, zm = grid["z_appearance"].reshape(3, 3, -1), grid["z_motion"].reshape(3, 3, -1)
    assert np.all(za == za[:, :1]) and np.all(zm == zm[:1])
    assert not np.allclose(za[0, 0], za[1, 0]) and not np.allclose(zm[0, 0], zm[0, 1])


def test_interpolation_endpoints():
    base, other = _latents(5, 0), _latents(5, 1)
    out, _ = sample.arrange_latents(base, other, "none", "motion", 5)
    np.testing.assert_allclose(out["z_motion"][0], base["z_motion"][0])
    np.testing.assert_allclose(out["z_motion"][-1], other["z_motion"][0])
    assert np.all(out["z_appearance"] == base["z_appearance"][0])


def test_train_cli_writes_profile_flags_and_progress(trained_workdir):
    workdir, result = trained_workdir
    assert "step 3/3" in result.stdout and "videos/s" in result.stdout
    profiles = [f for root, _, files in os.walk(workdir / "tensorboard" / "plugins" / "profile")
                for f in files if f.endswith(".xplane.pb")]
    assert profiles
    assert "--batch_size=4" in (workdir / "flags.cfg").read_text()


@pytest.mark.parametrize("suffix", [".gif", ".mp4", ".png"])
def test_sample_cli_writes_a_readable_file(trained_workdir, tmp_path, suffix):
    workdir, _ = trained_workdir
    out = tmp_path / f"s{suffix}"
    result = subprocess.run([sys.executable, "-m", "tfvidgen.sample", f"--workdir={workdir}",
                             "--num_videos=4", "--seed=3", f"--output={out}"], cwd=REPO,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    if suffix == ".gif":
        frames = iio.imread(out, index=None)
        assert frames.shape[0] == 4 and frames.shape[1:3] == (33, 33)  # 2x2 grid of 16 px + 1 px gap
        again = tmp_path / "again.gif"
        subprocess.run([sys.executable, "-m", "tfvidgen.sample", f"--workdir={workdir}",
                        "--num_videos=4", "--seed=3", f"--output={again}"], cwd=REPO, timeout=300,
                       capture_output=True)
        assert again.read_bytes() == out.read_bytes()            # --seed is reproducible
    elif suffix == ".mp4":
        with av.open(str(out)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 4
    else:
        grid = iio.imread(out)
        assert grid.shape[:2] == (4 * 17 - 1, 4 * 17 - 1)        # 4 videos x 4 frames


def test_sample_cli_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tfvidgen.sample", f"--workdir={tmp_path}"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "sample: error: --workdir=" in result.stderr and "config.json" in result.stderr
