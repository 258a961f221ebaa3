"""tools/reference_gan.py: the vanilla 3D DCGAN's shapes, and a tiny run's curve and result."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, subprocess_env
from tools import reference_gan


@pytest.mark.parametrize("resolution,frames", [(16, 4), (16, 32), (32, 8)])
def test_generator_and_discriminator_shapes(resolution, frames):
    generator = reference_gan.make_generator(resolution, frames, 8)
    videos = generator(tf.random.stateless_normal([2, reference_gan.Z_DIM], [1, 2]))
    assert videos.shape == (2, frames, resolution, resolution, 3)
    assert float(tf.reduce_max(tf.abs(videos))) <= 1.0
    discriminator = reference_gan.make_discriminator(resolution, frames, 8)
    assert discriminator(videos).shape == (2, 1)


def _run(tmp_path, *flags):
    return subprocess.run([sys.executable, "tools/reference_gan.py", f"--out={tmp_path / 'out'}",
                           *flags], cwd=REPO, env=subprocess_env(), capture_output=True,
                          text=True, timeout=600)


def test_a_tiny_run_writes_its_curve_result_and_samples(tmp_path):
    result = _run(tmp_path, "--dataset=synthetic_shapes", "--resolution=16", "--num_frames=4",
                  "--steps=4", "--eval_every=2", "--eval_samples=8", "--num_samples=8",
                  "--batch_size=4", "--width=8", "--eval_classifier_steps=5")
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    curve = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert [point["step"] for point in curve] == [2, 4]
    assert all(np.isfinite(point["fd"]) and point["fd"] > 0 and point["is"] >= 1.0
               for point in curve)
    final = json.loads((out / "result.json").read_text())
    assert len(final["fd"]["values"]) == 2 and final["fd"]["mean"] > final["real_fd"] > 0
    assert final["config"]["steps"] == 4 and (out / "samples.png").stat().st_size > 0
    assert "reference_gan: FD" in result.stdout


def test_a_bad_flag_is_one_error_line(tmp_path):
    result = _run(tmp_path, "--resolution=24")
    assert result.returncode == 2
    assert "reference_gan: error: --resolution=24: expected a power of two >= 16" in result.stderr
    assert not (tmp_path / "out").exists()
