"""Metrics while training: the pinned evaluation protocol's FD and IS every `--eval_every` steps.

Each evaluation samples `--eval_samples` videos from the generator that sampling, evaluation and
export use (the EMA copy when the run keeps one), classifies them with the dataset's evaluation
classifier and computes FD and IS (and label_accuracy for conditional models) with
`protocol.evaluate_model`: the code, classifier and real test statistics of
`python -m tfvidgen.evaluate`, on one smaller sample set. So the curve is the evaluation's own
numbers at a smaller sample (noisier, FD biased up at small N); the final word on a checkpoint
is still `evaluate`.

Where things go (in <workdir>):
  eval_curve.jsonl   one JSON line per evaluation: {"step", "fd", "is"[, "label_accuracy"],
                     "fd_real", "is_real" (the same metrics of real test videos: the experimental
                     bound), "wall_time" (Unix time), "eval_seconds"}
  best/              the lowest-FD checkpoint so far, as a workdir of its own (config.json and
                     checkpoints/ckpt-<step>, weights only), so `sample`, `evaluate` and `export`
                     take `--workdir=<workdir>/best`; best/best.json = {"step", "fd", "is", ...,
                     "classifier_dir", "protocol_key"}. The training checkpoints' rotation
                     (--keep_checkpoints) never removes it.
  tensorboard/       scalars eval/fd, eval/is (eval/label_accuracy)
and one progress line per evaluation.

The classifier is trained once per dataset configuration (classifier.protocol_for: dataset,
size, clip length and stride, --eval_classifier_steps) and cached: in <workdir>/eval/classifier
by default (where evaluate looks), or in <eval_cache_dir>/classifier-<protocol key> when runs
share a cache (tools/study.py). It is prepared before the model is built, and training's seeds
are set after it, so a run gives the same weights with or without --eval_every: evaluation
only reads the weights, and every draw of the training is keyed by (seed, step).

Generated videos use sample seeds from SAMPLE_SEED on, disjoint from the seeds `evaluate` uses,
so a checkpoint chosen here by FD is not scored again on the very videos that chose it.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
import time

import keras
import tensorflow as tf

from tfvidgen import errors
from tfvidgen.eval import classifier as classifier_lib
from tfvidgen.eval import protocol

__all__ = ["EvalSetup", "prepare", "MetricsDuringTraining", "read_curve", "read_best",
           "SAMPLE_SEED", "CURVE_FILE", "BEST_DIR", "BEST_FILE"]

#: first sample seed of the generated videos (evaluate uses seeds below 1e7 + its --seed)
SAMPLE_SEED = 10 ** 12
CURVE_FILE = "eval_curve.jsonl"
BEST_DIR = "best"
BEST_FILE = "best.json"
_METRICS = ("fd", "is", "label_accuracy")


@dataclasses.dataclass
class EvalSetup:
    """What every evaluation of a run shares: the classifier, the protocol, real statistics."""

    classifier: classifier_lib.VideoClassifier
    protocol: protocol.EvalProtocol
    real: dict
    classifier_dir: str


def _locations(config, workdir: str, clf_protocol) -> tuple[str, str]:
    """(classifier dir, real statistics cache) of a run."""
    if not config.runtime.eval_cache_dir:
        return os.path.join(workdir, "eval", "classifier"), os.path.join(workdir, "eval", "cache")
    root = config.runtime.eval_cache_dir
    return classifier_lib.shared_dir(root, clf_protocol), os.path.join(root, "cache")


def prepare(config, info: dict, workdir: str, log=print) -> EvalSetup:
    """Loads (or trains, once per dataset configuration) the evaluation classifier and the real
    test statistics of `config`'s data. Builds the classifier in float32 whatever the training
    precision (evaluate does the same: its numbers define the protocol). Leaves the global dtype
    policy at float32 and the global seeds changed: set both afterwards."""
    from tfvidgen.evaluate import min_samples
    rt = config.runtime
    clf_protocol = classifier_lib.protocol_for(config.data, info, rt.eval_classifier_steps)
    clf_dir, cache_dir = _locations(config, workdir, clf_protocol)
    keras.mixed_precision.set_global_policy("float32")
    try:
        clf, meta = classifier_lib.load_or_train(clf_protocol, clf_dir, log=log)
    except (StopIteration, tf.errors.OutOfRangeError) as e:     # its datasets repeat
        raise ValueError(f"--eval_every: the evaluation classifier of {config.data.dataset}: "
                         f"the data yielded no videos (an empty split?)") from e
    if classifier_lib.real_split(clf_protocol) == "train":
        log(f"warning: --data_dir={config.data.data_dir} has no test split: the evaluation's real "
            f"statistics come from training videos (optimistic)")
    if rt.eval_samples < min_samples(info["num_classes"]):
        log(f"warning: --eval_samples={rt.eval_samples} is below "
            f"{min_samples(info['num_classes'])} (8 per class, at least 32): the curve's IS and "
            f"FD are mostly sampling noise")
    p = protocol.EvalProtocol(rt.eval_samples, 1, SAMPLE_SEED, clf_protocol,
                              meta["weights_sha256"])
    real = protocol.real_statistics(p, clf, cache_dir)
    return EvalSetup(clf, p, real, clf_dir)


def read_curve(workdir: str) -> list[dict]:
    """The evaluations of <workdir>/eval_curve.jsonl in step order ([] without the file)."""
    path = os.path.join(workdir, CURVE_FILE)
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return sorted(rows, key=lambda row: row["step"])


def read_best(workdir: str) -> dict | None:
    """<workdir>/best/best.json, or None."""
    path = os.path.join(workdir, BEST_DIR, BEST_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


class MetricsDuringTraining:
    """Hook of the training loop (chief only): evaluates at every multiple of `every` and at
    `total_steps`, then writes the curve line, the scalars, a progress line and, on a new lowest
    FD, the best checkpoint. `log` takes one line; `progress` (a ProgressAndScalars) leaves
    the evaluation's time out of the step time and adds it to the ETA.

    Resuming at `start_step` drops the curve's lines after it (those steps run again) and keeps
    the best checkpoint (a rerun of a step gives the same weights)."""

    def __init__(self, setup: EvalSetup, model, workdir: str, writer, every: int,
                 total_steps: int, start_step: int, progress=None, log=print):
        self.setup, self.model, self.workdir, self.writer = setup, model, workdir, writer
        self.every, self.total, self.progress, self.log = every, total_steps, progress, log
        self.curve_path = os.path.join(workdir, CURVE_FILE)
        curve = read_curve(workdir)
        kept = [row for row in curve if row["step"] <= start_step]
        if len(kept) != len(curve):
            errors.write_text_atomically(self.curve_path,
                                         "".join(json.dumps(row) + "\n" for row in kept))
        self._done = {row["step"] for row in kept}
        self.best = read_best(workdir)

    def on_step_end(self, step: int, logs: dict) -> None:
        if (step % self.every and step != self.total) or step in self._done:
            return
        start = time.perf_counter()
        values = self.measure()
        seconds = time.perf_counter() - start
        self.record(step, values, seconds)
        if self.progress is not None:
            self.progress.exclude(time.perf_counter() - start, self.every)

    def measure(self) -> dict:
        """{"fd", "is"[, "label_accuracy"], "fd_real", "is_real"} of the model's current weights."""
        s = self.setup
        results = protocol.evaluate_model(self.model, s.classifier, s.protocol, s.real,
                                          wanted=_METRICS, log=lambda *_: None)
        values = {name: r["mean"] for name, r in results.items()}
        values.update({f"{name}_real": results[name]["experimental_bound"]
                       for name in ("fd", "is")})
        return values

    def record(self, step: int, values: dict, seconds: float) -> None:
        """Writes one evaluation: curve line, scalars, best checkpoint, progress line."""
        row = {"step": step, **values, "wall_time": time.time(), "eval_seconds": seconds}
        with open(self.curve_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        self._done.add(step)
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for name in _METRICS:
                    if name in values:
                        tf.summary.scalar(f"eval/{name}", values[name])
        if self.best is None or values["fd"] < self.best["fd"]:
            self._save_best(step, values)
        shown = " ".join(f"{k}={values[k]:.3f}" for k in _METRICS if k in values)
        self.log(f"eval step {step} | {shown} (real: fd={values['fd_real']:.3f} "
                 f"is={values['is_real']:.3f}) | best fd={self.best['fd']:.3f} at step "
                 f"{self.best['step']} | {seconds:.1f}s")

    def _save_best(self, step: int, values: dict) -> None:
        """Weights at `step` into best/ as a workdir of their own; then the older best goes."""
        best_dir = os.path.join(self.workdir, BEST_DIR)
        ckpt_dir = os.path.join(best_dir, "checkpoints")
        os.makedirs(ckpt_dir, exist_ok=True)
        # The inference checkpoint's layout (workdir.load_for_inference restores it, and
        # expects a save_counter as CheckpointManager's checkpoints have: write() adds none).
        checkpoint = tf.train.Checkpoint(step=self.model.step, **self.model.checkpoint_items())
        checkpoint.save_counter.assign(1)
        checkpoint.write(os.path.join(ckpt_dir, f"ckpt-{step}"))
        shutil.copyfile(os.path.join(self.workdir, "config.json"),
                        os.path.join(best_dir, "config.json"))
        self.best = {"step": step, **{k: values[k] for k in _METRICS if k in values},
                     "eval_samples": self.setup.protocol.num_samples,
                     "classifier_dir": os.path.abspath(self.setup.classifier_dir),
                     "protocol_key": self.setup.protocol.key()}
        errors.write_text_atomically(os.path.join(best_dir, BEST_FILE),
                                     json.dumps(self.best, indent=2))
        for path in glob.glob(os.path.join(ckpt_dir, "ckpt-*")):
            if not os.path.basename(path).startswith(f"ckpt-{step}."):
                os.remove(path)
