#!/usr/bin/env bash
# Flake check: the suite must pass whatever the numeric backend, the test distribution and the
# test order. Runs it twice, from the repo root, with the project's venv (or $PYTHON):
#   1. oneDNN on (TF_ENABLE_ONEDNN_OPTS=1), pytest's configured distribution (--dist loadfile);
#   2. oneDNN off (=0, TensorFlow's Eigen kernels: what an AVX2-only CPU ran before tfvidgen set
#      the default), --dist load (tests of one file spread over workers), order shuffled.
# Usage: bash tools/check_suite.sh [SHUFFLE_SEED] [extra pytest args...]
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
seed=${1:-$RANDOM}
shift || true
grep -m1 'model name' /proc/cpuinfo 2>/dev/null || uname -m
failed=0
run() {
  local label=$1; shift
  local start=$SECONDS
  echo "== $label"
  "$@"
  local status=$?
  echo "== $label: exit $status in $((SECONDS - start)) s"
  # Exit 5 is pytest's "no tests collected": a failure too, never a pass.
  [ "$status" -eq 5 ] && echo "== $label: pytest collected no tests" >&2
  [ "$status" -eq 0 ] || failed=1
}
run "oneDNN on, --dist loadfile" env TF_ENABLE_ONEDNN_OPTS=1 "$python" -m pytest -q "$@"
run "oneDNN off, --dist load, --shuffle-seed=$seed" env TF_ENABLE_ONEDNN_OPTS=0 \
  "$python" -m pytest -q --dist load --shuffle-seed="$seed" "$@"
exit "$failed"
