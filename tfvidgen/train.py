"""`python -m tfvidgen.train --flagfile=configs/<model>_<dataset>.cfg [--workdir=...]`.

Trains (or resumes, when the workdir has a checkpoint) and exits 0; a bad flag value, or a
--workdir that cannot be written (a file, a read-only file system, a full disk), exits 2 with one
line naming the flag or path (tfvidgen.errors); a non-finite loss exits 1 with the message (the
last good checkpoint is kept); SIGTERM saves a checkpoint at the current step and exits 143
(tfvidgen.preemption; the same command resumes).
"""

import sys

from tfvidgen import cli, errors


@errors.main_guard("train")
def main(argv):
    del argv
    config = cli.config_from_flags()
    if cli.FLAGS.dry_run:
        print(config.to_json())
        return 0
    errors.check_output_dir("--workdir", config.runtime.workdir)
    from tfvidgen import callbacks, preemption, train_lib
    try:
        result = train_lib.run(config, flags_writer=cli.write_flagfile)
    except callbacks.NonFiniteError as e:
        print(f"train: stopped: {e}", file=sys.stderr)
        return 1
    except preemption.Preempted as e:
        print(f"train: {e}", file=sys.stderr, flush=True)
        return preemption.PREEMPTED_EXIT_CODE
    print(f"done: step {result['step']} in {config.runtime.workdir}")
    return 0


if __name__ == "__main__":
    cli.define_flags()
    errors.run_app(main, "train")
