"""SIGTERM (preemption): the run saves a checkpoint at the current step, says so in one line,
exits 143, and the same command resumes to the weights of an uninterrupted run. The
single-process run is tested by tests/tools/chaos_test.py (SIGTERM and SIGKILL, restarted, weights
compared); here the signal watch itself and the two-worker cluster."""

import signal
import threading

import numpy as np
import tensorflow as tf

from tests.helpers import local_workers
from tfvidgen import preemption

_FLAGS = ("--train_steps=16", "--checkpoint_every=1000", "--sample_every=1000", "--log_every=1",
          "--ema_decay=0.9")


def _final_weights(workdir) -> dict:
    path = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
    assert path and path.endswith("ckpt-16"), path
    return {name: tf.train.load_variable(path, name) for name, _ in tf.train.list_variables(path)
            # save_counter counts saves (one more in the interrupted run), not training state
            if not name.startswith(("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"))}


def test_the_watch_records_sigterm_instead_of_dying_and_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with preemption.SigtermWatch() as watch:
        assert not watch.requested
        signal.raise_signal(signal.SIGTERM)
        assert watch.requested
    assert signal.getsignal(signal.SIGTERM) is before
    with preemption.SigtermWatch(enabled=False) as off:
        assert signal.getsignal(signal.SIGTERM) is before and not off.requested


def _two_workers(workdir):
    return local_workers(workdir, *_FLAGS)


def test_sigterm_to_one_of_two_workers_saves_all_at_one_step_and_resumes_exactly(tmp_path):
    """TensorFlow's PreemptionCheckpointHandler: the signalled worker tells the other, both
    save at the same step and exit 143; both restarted end as an uninterrupted 2-worker run."""
    whole = tmp_path / "whole"
    procs = _two_workers(whole)
    for p in procs:
        out, err = p.communicate(timeout=400)
        assert p.returncode == 0, err[-3000:]

    cut = tmp_path / "cut"
    chief, other = _two_workers(cut)
    errs = {}
    readers = [threading.Thread(target=lambda p=p, k=k: errs.__setitem__(k, p.stderr.read()),
                                daemon=True) for k, p in (("chief", chief), ("other", other))]
    for r in readers:
        r.start()
    threading.Thread(target=lambda: other.stdout.read(), daemon=True).start()
    for line in chief.stdout:
        if line.startswith("step 6/"):
            other.send_signal(signal.SIGTERM)
            break
    chief.stdout.read()
    for p in (chief, other):
        p.wait(timeout=300)
    for r in readers:
        r.join(timeout=30)
    steps = []
    for name, p in (("chief", chief), ("other", other)):
        assert p.returncode == 143, (name, errs[name][-3000:])
        lines = [ln for ln in errs[name].splitlines() if ln.startswith("train:")]
        assert len(lines) == 1 and "preempted (SIGTERM) at step" in lines[0], errs[name][-2000:]
        steps.append(int(lines[0].split("at step ")[1].split(":")[0]))
    assert steps[0] == steps[1] and 6 <= steps[0] < 16, steps
    assert tf.train.latest_checkpoint(str(cut / "checkpoints")).endswith(f"ckpt-{steps[0]}")

    procs = _two_workers(cut)
    outputs = [p.communicate(timeout=400) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert f"at step {steps[0]}" in outputs[0][0] and "done: step 16" in outputs[0][0]
    expected, got = _final_weights(whole), _final_weights(cut)
    assert set(expected) == set(got)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
