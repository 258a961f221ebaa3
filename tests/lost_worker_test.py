"""A lost worker under --strategy=multi_worker: which task a collective's error names. The
end-to-end path (a SIGKILLed worker; the survivor exits within a bounded time with one line
naming the lost task, exit 3; both started again resume from the last checkpoint, to the weights
of an uninterrupted run) is one step of tests/preemption_test.py's two-worker sequence."""

import tensorflow as tf

from tfvidgen import lost_worker


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
