"""Runs a declared study: every (arm, seed) trained with metrics during training, evaluated with
one pinned protocol and classifier, then tabulated beside the real-data bound and a trivial
baseline (the study file format and the outputs: tfvidgen/study.py).

  python tools/study.py --study=configs/studies/quickstart_width.json --out=runs/width
  python tools/study.py --study=... --out=... --arms=base --dry_run    # what would run

Launch from the repository root (flagfiles resolve from there). A rerun skips finished runs and
resumes unfinished ones; results.json and results.md cover every arm finished so far. Exit 0, 1
when a run failed (the others still run; its log is named), 2 with one `study: error:` line for
a bad study file or flag.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")     # the baseline loads TensorFlow here

import tfvidgen  # noqa: E402,F401  (oneDNN default before TensorFlow loads)

from absl import flags  # noqa: E402

from tfvidgen import errors, study  # noqa: E402

__all__ = ["main"]

_STUDY = flags.DEFINE_string("study", None, "Study file (JSON): arms, seeds, step budget, "
                             "evaluation settings (format: tfvidgen/study.py).")
_OUT = flags.DEFINE_string("out", None, "Output directory: runs/<arm>/seed<seed>/ workdirs, "
                           "eval_cache/, samples/<arm>.png, results.json, results.md.")
_ARMS = flags.DEFINE_list("arms", None, "Run only these arms (comma-separated names); the "
                          "results still list every arm finished so far.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List each run's state (done / evaluate / train "
                             "or resume from step N) and its command; run nothing.")


@errors.main_guard("study")
def main(argv):
    del argv
    if not _STUDY.value or not _OUT.value:
        raise ValueError("give --study=<file> and --out=<directory>")
    parsed = study.load_study(_STUDY.value)
    errors.check_output_dir("--out", _OUT.value)
    return study.run_study(parsed, _OUT.value, arms=_ARMS.value, dry_run=_DRY_RUN.value,
                           log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    errors.run_app(main, "study")
