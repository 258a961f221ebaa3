"""`python -m tfvidgen.train --flagfile=configs/<model>_<dataset>.cfg [--workdir=...]`.

Trains (or resumes, when the workdir has a checkpoint) and exits 0; a bad flag value, or a
--workdir that cannot be written (a file, a read-only file system, a full disk), exits 2 with one
line naming the flag or path (tfvidgen.errors); a non-finite loss exits 1 with the message (the
last good checkpoint is kept); SIGTERM saves a checkpoint at the current step and exits 143
(tfvidgen.preemption; the same command resumes); under --strategy=multi_worker a lost worker
ends the others within ~10 s with one line naming it, exit 3 (tfvidgen.lost_worker; starting
every worker again resumes from the last checkpoint).
"""

import sys

from tfvidgen import cli, errors


@errors.main_guard("train")
def main(argv):
    del argv
    config = cli.config_from_flags()
    if cli.flag_values().dry_run:
        print(config.to_json())
        return 0
    errors.check_output_dir("--workdir", config.runtime.workdir)
    from tfvidgen import callbacks, lost_worker, preemption, train_lib
    try:
        result = train_lib.run(config, flags_writer=cli.write_flagfile)
    except callbacks.NonFiniteError as e:
        print(f"train: stopped: {e}", file=sys.stderr)
        return 1
    except preemption.Preempted as e:
        print(f"train: {e}", file=sys.stderr, flush=True)
        return preemption.PREEMPTED_EXIT_CODE
    except Exception as e:         # noqa: BLE001  only a lost peer is handled; the rest re-raise
        lost = lost_worker.describe(e) if config.runtime.strategy == "multi_worker" else None
        if lost is None:
            raise
        last = train_lib.last_checkpoint_step(config.runtime.workdir)
        print(f"train: error: lost {lost} (it stopped answering: killed, crashed or "
              f"preempted); {'no checkpoint yet' if last is None else f'last checkpoint: step {last}'}"
              f". Start every worker again with the same command to resume",
              file=sys.stderr, flush=True)
        return lost_worker.LOST_WORKER_EXIT_CODE
    print(f"done: step {result['step']} in {config.runtime.workdir}")
    return 0


if __name__ == "__main__":
    cli.define_flags()
    errors.run_app(main, "train")
