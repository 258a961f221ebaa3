"""Test-wide setup: two logical CPU devices before TensorFlow initialises (so any test can run a
real 2-replica MirroredStrategy), quiet logs, and the repo root on sys.path for tools/."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import tensorflow as tf  # noqa: E402

from tfvidgen import distribute  # noqa: E402

distribute.split_cpu(2)


import subprocess  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory):
    """A 2-step tiny run with a profiler window, shared by the CLI tests below."""
    workdir = tmp_path_factory.mktemp("run") / "w"
    from tests.train_lib_test import REPO, _env, _train_cmd
    result = subprocess.run(_train_cmd(workdir, "--train_steps=3", "--checkpoint_every=3",
                                       "--sample_every=3", "--profile_steps=1,2",
                                       "--num_sample_videos=2"),
                            cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """The evaluation classifier of tests.helpers.CLASSIFIER_PROTOCOL, trained once."""
    from tests.helpers import CLASSIFIER_PROTOCOL
    from tfvidgen.eval import classifier
    out = str(tmp_path_factory.mktemp("classifier"))
    model, meta = classifier.load_or_train(CLASSIFIER_PROTOCOL, out, log=lambda *_: None)
    return out, model, meta
