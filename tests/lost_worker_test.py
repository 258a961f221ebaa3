"""A lost worker under --strategy=multi_worker: the survivor exits within a bounded time with one
line naming the lost task (exit 3), and starting both workers again resumes from the last
checkpoint."""

import signal
import threading
import time

import tensorflow as tf

from tests.helpers import local_workers
from tfvidgen import lost_worker


def _start_workers(workdir, steps):
    return local_workers(workdir, f"--train_steps={steps}", "--checkpoint_every=4",
                         "--sample_every=100000", "--log_every=1")


def test_a_killed_worker_ends_the_survivor_with_one_line_and_a_restart_resumes(tmp_path):
    workdir = tmp_path / "w"
    chief, other = _start_workers(workdir, 100000)
    err = []
    threading.Thread(target=lambda: err.append(chief.stderr.read()), daemon=True).start()
    threading.Thread(target=lambda: other.communicate(), daemon=True).start()
    for line in chief.stdout:
        if line.startswith("step 9/"):
            break
    other.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    chief.wait(timeout=120)            # never a hang: the heartbeat timeout is ~10 s
    waited = time.monotonic() - killed
    time.sleep(0.5)
    assert chief.returncode == lost_worker.LOST_WORKER_EXIT_CODE == 3, err[-1][-3000:]
    lines = [ln for ln in err[0].splitlines() if ln.startswith("train:")]
    assert len(lines) == 1, err[0][-3000:]
    assert "lost /job:worker/replica:0/task:1" in lines[0] and "last checkpoint: step" in lines[0]
    last = int(lines[0].split("last checkpoint: step ")[1].split(".")[0])
    assert last >= 8
    print(f"survivor exited {waited:.1f} s after the SIGKILL (last checkpoint {last})")

    procs = _start_workers(workdir, last + 2)
    outputs = [p.communicate(timeout=400) for p in procs]
    for p, (out, errs) in zip(procs, outputs):
        assert p.returncode == 0, errs[-3000:]
    assert f"at step {last}" in outputs[0][0] and f"done: step {last + 2}" in outputs[0][0]
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith(f"ckpt-{last + 2}")


def test_describe_names_the_lost_task_and_ignores_other_errors():
    heartbeats = tf.errors.UnavailableError(None, None, (
        "Collective ops is aborted by: Error reported from /job:worker/task:1: The following "
        "tasks are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe "
        "tasks have crashed."))
    assert lost_worker.describe(heartbeats) == "/job:worker/replica:0/task:1"
    reset = tf.errors.UnavailableError(None, None, (
        "Graph execution error:\nAdditional GRPC error information from remote target "
        "/job:worker/replica:0/task:0 while calling /tensorflow.WorkerService/CompleteInstance:"
        "\n:UNKNOWN:Error received from peer {grpc_message:\"recvmsg:Connection reset by peer\"}"))
    assert lost_worker.describe(reset) == "/job:worker/replica:0/task:0"
    assert lost_worker.describe(tf.errors.InvalidArgumentError(None, None, "bad shape")) is None
    assert lost_worker.describe(ValueError("unhealthy")) is None
