"""Test-wide setup: tfvidgen's defaults (oneDNN, TensorFlow's quiet C++ log) and two logical CPU
devices before TensorFlow initialises (so any test can run a real 2-replica MirroredStrategy), the
repo root on sys.path for tools/, per-test seeding, and the fixtures shared by several test
files."""

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import tfvidgen  # noqa: E402,F401  (before TensorFlow: oneDNN and log-level defaults)
import keras  # noqa: E402
import pytest  # noqa: E402

from tfvidgen import distribute  # noqa: E402

distribute.split_cpu(2)


def pytest_addoption(parser):
    parser.addoption("--shuffle-seed", type=int, default=None,
                     help="Run the tests in an order shuffled with this seed (tools/check_suite.sh "
                          "uses it to show that no test depends on what ran before it).")


def pytest_collection_modifyitems(config, items):
    seed = config.getoption("--shuffle-seed")
    if seed is not None:        # the same seed in every xdist worker: the same collected order
        import random
        random.Random(seed).shuffle(items)


@pytest.fixture(autouse=True)
def _seed_from_test_id(request):
    """Each test draws the same numbers whatever ran before it, in whichever worker: Python,
    NumPy, TensorFlow and Keras are seeded from the test's node id. Tests that need a particular
    seed still set it themselves."""
    keras.utils.set_random_seed(zlib.crc32(request.node.nodeid.encode()) % (2 ** 31))


@contextlib.contextmanager
def _shared_dir(tmp_path_factory, name):
    """A directory shared by all xdist workers of this run, held under an exclusive file lock:
    the first worker builds what is in it, the others wait and reuse it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent                         # the run's base, common to every worker
    path = root / f"shared_{name}"
    path.mkdir(exist_ok=True)
    with open(root / f"shared_{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield str(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A 3-step tiny run with a profiler window, trained once per worker. Read only: tests that
    write into a workdir (evaluate writes eval/, explain tensorboard/) would change it for the
    tests after them, so a test that may write takes `trained_workdir`, its own copy."""
    workdir = tmp_path_factory.mktemp("run") / "w"
    from tests.helpers import REPO, subprocess_env, train_cmd
    result = subprocess.run(train_cmd(workdir, "--train_steps=3", "--checkpoint_every=3",
                                      "--sample_every=3", "--profile_steps=1,2",
                                      "--num_sample_videos=2"),
                            cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result


@pytest.fixture
def trained_workdir(trained_run, tmp_path_factory):
    """(this test's own copy of the trained run's workdir, the training command's result); not
    in tmp_path, which some tests check is left empty."""
    workdir, result = trained_run
    copy = tmp_path_factory.mktemp("trained") / "w"
    shutil.copytree(workdir, copy)
    return copy, result


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """The evaluation classifier of tests.helpers.CLASSIFIER_PROTOCOL, trained once per run (the
    first worker to need it trains it; the others load it from the shared cache)."""
    from tests.helpers import CLASSIFIER_PROTOCOL
    from tfvidgen.eval import classifier
    with _shared_dir(tmp_path_factory, "classifier") as out:
        model, meta = classifier.load_or_train(CLASSIFIER_PROTOCOL, out, log=lambda *_: None)
    return out, model, meta


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, export path, export base) of a tiny G3AN trained one step, per test module."""
    import json

    from tests.helpers import tiny_config, tiny_model
    from tfvidgen import export
    from tfvidgen.data import pipeline
    base = tmp_path_factory.mktemp("export") / "g3an"
    config = tiny_config()
    model = tiny_model(config)
    model.train_step(next(iter(pipeline.make_dataset(config.data, 4, 0))))
    path = export.export_model(model, {"config": json.loads(config.to_json())}, str(base))
    return model, path, base
