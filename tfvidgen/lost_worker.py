"""A lost worker under --strategy=multi_worker: one line naming it, and a bounded exit.

When a worker dies (SIGKILL, a crash, a machine gone), TensorFlow's coordination service stops
receiving its heartbeats and aborts the collectives of every other worker, which then fail their
step with UnavailableError or AbortedError naming the unhealthy task; a worker whose peer's
connection is reset fails at once the same way. Measured on 2 local workers (2-core AMD EPYC,
other jobs running): the survivor left 7.5-28 s after a SIGKILL of either the chief or the other
worker, up to 55 s with other jobs saturating both cores. TensorFlow's heartbeat timeout (10 s by
default) plus the step in flight bound it; nothing waits forever.

train then prints one line naming the lost task and the last checkpoint, and exits
LOST_WORKER_EXIT_CODE. Starting every worker again with the same command resumes from that
checkpoint (each worker restores it; the step is the RNG state and the data position).
"""

from __future__ import annotations

import re

__all__ = ["LOST_WORKER_EXIT_CODE", "describe"]

LOST_WORKER_EXIT_CODE = 3
_TASK = re.compile(r"/job:[\w-]+/replica:\d+/task:\d+")
_CLUES = ("unhealthy", "stopped sending heartbeats", "remote target", "connection reset",
          "socket closed", "failed to connect")


def describe(error: Exception) -> str | None:
    """The lost task named by a collective's error ("/job:worker/replica:0/task:1"), or None
    when the error is not about a lost peer."""
    import tensorflow as tf
    if not isinstance(error, (tf.errors.UnavailableError, tf.errors.AbortedError,
                              tf.errors.CancelledError)):
        return None
    message = str(getattr(error, "message", error))
    lowered = message.lower()
    if not any(clue in lowered for clue in _CLUES):
        return None
    for clue in ("unhealthy", "remote target"):       # the dead task follows these words
        at = lowered.find(clue)
        if at >= 0:
            found = _TASK.search(message, at)
            if found:
                return found.group(0)
    found = _TASK.search(message)
    return found.group(0) if found else "a worker (not named by TensorFlow)"
