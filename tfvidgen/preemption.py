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
already running). Under --strategy=multi_worker the handler is not installed: one worker saving
alone would leave the others waiting in the next step's all-reduce (see README, "What survives
what").
"""

from __future__ import annotations

import signal
import threading

__all__ = ["PREEMPTED_EXIT_CODE", "Preempted", "SigtermWatch"]

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
