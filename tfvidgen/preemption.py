"""Preemption: a SIGTERM (what cloud schedulers and job managers send before they stop a machine)
ends training with a checkpoint at the current step instead of losing the work since the last
`--checkpoint_every`.

On SIGTERM the handler only records the request; the training loop finishes the step it is in
(and any sample or evaluation that step triggered), saves a checkpoint at that step, prints one
line and exits with PREEMPTED_EXIT_CODE. Running the same command again resumes from that step;
because the step is the RNG state and the data position (tfvidgen.train_lib), the resumed run
ends with the weights an uninterrupted run ends with.

The preemption checkpoint does not re-estimate the EMA generator's BN statistics (the scheduled
checkpoints do): re-estimation continues from the statistics it finds, so doing it at a step an
uninterrupted run does not would make the two runs' EMA statistics differ afterwards.

Latency: at most one training step plus the save (plus a sample or evaluation that step was
already running).

Under --strategy=multi_worker one worker saving alone would leave the others waiting in the next
step's all-reduce, so the cluster uses TensorFlow's own mechanism for custom loops,
tf.distribute.experimental.PreemptionCheckpointHandler (`ClusterPreemption`): the worker that
got SIGTERM tells the others through the coordination service, they agree on a step, every
worker saves its checkpoint at that step (with train_lib's Checkpointer, so the files are the
usual ckpt-<step>) and raises Preempted: the same line and exit code on every worker.
"""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["PREEMPTED_EXIT_CODE", "Preempted", "SigtermWatch", "ClusterPreemption"]

#: the exit status after a preemption save: 128 + SIGTERM, what a shell reports for a process
#: SIGTERM ended, so a job manager treats it as the termination it asked for
PREEMPTED_EXIT_CODE = 128 + signal.SIGTERM


class Preempted(Exception):
    """Training stopped on SIGTERM after saving a checkpoint at `step`."""

    def __init__(self, step: int, checkpoint_dir: str):
        self.step, self.checkpoint_dir = step, checkpoint_dir
        super().__init__(f"preempted (SIGTERM) at step {step}: saved a checkpoint in "
                         f"{checkpoint_dir}; run the same command again to resume")


class SigtermWatch:
    """Context manager: while inside, SIGTERM sets `requested` instead of killing the process.
    The previous handler comes back on exit. Outside the main thread (where Python cannot take
    signals) it watches nothing."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        del signum, frame
        self.requested = True

    def __enter__(self) -> "SigtermWatch":
        if self.enabled:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            signal.signal(signal.SIGTERM, self._previous)


class ClusterPreemption:
    """PreemptionCheckpointHandler around the training loop of a multi-worker run.

    `after_step(step)` after every step on every worker: when a worker got SIGTERM, all of them
    save at the agreed step with `save(step)` and raise Preempted."""

    def __init__(self, strategy, save, checkpoint_dir: str):
        import tensorflow as tf
        self._step = None

        def save_fn():
            save(self._step)

        def exit_fn():
            raise Preempted(self._step, checkpoint_dir)

        # The handler gets an empty Checkpoint of its own: it attaches its run counter to the
        # checkpoint it is given, which would add an item to the model's checkpoints (then
        # unreadable by runs without it). save_fn does the saving; the handler's directory
        # only ever holds nothing, so its restore at creation restores nothing.
        self._handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            strategy.cluster_resolver, tf.train.Checkpoint(),
            checkpoint_dir=os.path.join(checkpoint_dir, "preemption_handler"),
            termination_config=tf.distribute.experimental.TerminationConfig(
                exit_fn=exit_fn, save_fn=save_fn, grace_period=0))

    def after_step(self, step: int) -> None:
        self._step = step
        self._handler.save_checkpoint_if_preempted()
