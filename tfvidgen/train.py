"""`python -m tfvidgen.train --flagfile=configs/<model>_<dataset>.cfg [--workdir=...]`.

Trains (or resumes, when the workdir has a checkpoint) and exits 0; a bad flag value exits 2 with one
line naming the flag; a non-finite loss exits 1 with the message (the last good checkpoint is kept).
"""

import sys

from absl import app

from tfvidgen import cli


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = cli.config_from_flags()
    except (ValueError, FileNotFoundError) as e:
        print(f"train: error: {e}", file=sys.stderr)
        return 2
    if cli.FLAGS.dry_run:
        print(config.to_json())
        return 0
    from tfvidgen import callbacks, train_lib
    try:
        result = train_lib.run(config, flags_writer=cli.write_flagfile)
    except callbacks.NonFiniteError as e:
        print(f"train: stopped: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"train: error: {e}", file=sys.stderr)
        return 2
    print(f"done: step {result['step']} in {config.runtime.workdir}")
    return 0


if __name__ == "__main__":
    cli.define_flags()
    app.run(main)
