"""SIGTERM (preemption): the run saves a checkpoint at the current step, says so in one line,
exits 143, and the same command resumes to the weights of an uninterrupted run."""

import signal
import subprocess
import threading
import time

import numpy as np
import tensorflow as tf

from tests.helpers import REPO, local_workers, subprocess_env, train_cmd
from tfvidgen import preemption

_FLAGS = ("--train_steps=24", "--checkpoint_every=1000", "--sample_every=1000", "--log_every=1",
          "--ema_decay=0.9")


def _final_weights(workdir) -> dict:
    path = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
    assert path and path.endswith("ckpt-24"), path
    return {name: tf.train.load_variable(path, name) for name, _ in tf.train.list_variables(path)
            # save_counter counts saves (one more in the interrupted run), not training state
            if not name.startswith(("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"))}


def _run_until_step_then_sigterm(workdir, step: int):
    """Starts training, sends SIGTERM once it logged `step`; returns (result code, stdout,
    stderr, seconds from the signal to the exit)."""
    proc = subprocess.Popen(train_cmd(workdir, *_FLAGS), cwd=REPO, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr = []
    reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)
    reader.start()
    lines, sent = [], None
    for line in proc.stdout:
        lines.append(line)
        if sent is None and line.startswith(f"step {step}/"):
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
    proc.wait(timeout=300)
    reader.join(timeout=30)
    assert sent is not None, "".join(lines)[-2000:]
    return proc.returncode, "".join(lines), "".join(stderr), time.monotonic() - sent


def test_sigterm_saves_the_current_step_and_the_rerun_ends_as_an_uninterrupted_run(tmp_path):
    whole = tmp_path / "whole"
    result = subprocess.run(train_cmd(whole, *_FLAGS), cwd=REPO, env=subprocess_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]

    cut = tmp_path / "cut"
    code, out, err, latency = _run_until_step_then_sigterm(cut, 8)
    assert code == preemption.PREEMPTED_EXIT_CODE == 143, err[-2000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("train:")]
    assert len(lines) == 1 and "preempted (SIGTERM) at step" in lines[0], err[-2000:]
    saved = int(lines[0].split("at step ")[1].split(":")[0])
    assert 8 <= saved < 24
    assert tf.train.latest_checkpoint(str(cut / "checkpoints")).endswith(f"ckpt-{saved}")
    assert "done:" not in out
    print(f"SIGTERM to exit: {latency:.2f} s (saved step {saved})")

    resumed = subprocess.run(train_cmd(cut, *_FLAGS), cwd=REPO, env=subprocess_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at step {saved}" in resumed.stdout and "done: step 24" in resumed.stdout
    expected, got = _final_weights(whole), _final_weights(cut)
    assert set(expected) == set(got) and any("ema" in n for n in got)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


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
        if line.startswith("step 8/"):
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
    assert steps[0] == steps[1] and 8 <= steps[0] < 24, steps
    assert tf.train.latest_checkpoint(str(cut / "checkpoints")).endswith(f"ckpt-{steps[0]}")

    procs = _two_workers(cut)
    outputs = [p.communicate(timeout=400) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert f"at step {steps[0]}" in outputs[0][0] and "done: step 24" in outputs[0][0]
    expected, got = _final_weights(whole), _final_weights(cut)
    assert set(expected) == set(got)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
