"""Typed, frozen configuration for every tfvidgen entry point.

One path for settings: dataclass defaults, then the flagfile, then the command line (cli.py maps each
flag to exactly one field here). This module imports neither absl nor TensorFlow, so it is cheap to
import from tools and tests. `Config.validate()` raises ValueError naming the *flag* to fix.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping

__all__ = ["DataConfig", "TrainConfig", "RuntimeConfig", "Config", "DATASETS", "STRATEGIES",
           "PRECISIONS", "MODEL_KEYS", "RESUMABLE", "MAX_SEED", "check_seed"]

DATASETS = ("synthetic_actions", "synthetic_shapes", "records")
STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
VERIFY_MODES = ("auto", "full")
#: Largest --seed of every entry point: seeds are offset by video counts, repeats and fixed
#: offsets below 2**62 (evaluate's protocol), which then all stay inside int64.
MAX_SEED = 2 ** 62


def check_seed(seed: int, flag: str = "--seed") -> int:
    """Returns seed, or raises the one ValueError every entry point gives for a seed outside
    [0, MAX_SEED]."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{flag}={seed} is outside [0, 2**62]")
    return seed


def _model_keys() -> tuple[str, ...]:
    # The model registry's keys, read when asked for: the registry imports TensorFlow and this
    # module (a cycle at import time), and most users of this module need neither.
    from tfvidgen import models
    return tuple(models.MODELS)


def __getattr__(name: str):
    """MODEL_KEYS: the keys of tfvidgen.models.MODELS (imports the models on first use)."""
    if name == "MODEL_KEYS":
        return _model_keys()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where videos come from and how clips are cut.

    Attributes:
      dataset: one of DATASETS. `records` reads TFRecord shards written by tools/prepare_dataset.py.
      data_dir: directory holding the shards and manifest.json (records only).
      resolution: square frame size H = W of the clips the model sees.
      num_frames: clip length T.
      max_stride: temporal stride is drawn uniformly from [1, max_stride] per clip (clamped to what the
        source video's length allows).
      random_flip: horizontal flip with probability 1/2.
      random_crop: crop a random box of (1 - random_crop) of each side and resize back; 0 disables.
      num_videos: size of a synthetic dataset (videos are rendered on the fly from their index).
      video_length: length in frames of each synthetic source video.
      shuffle_buffer: record datasets are shuffled in windows of this many videos.
      verify_data: how record shards are checked at start-up: "auto" reads every data CRC of a
        split up to records.FULL_CHECK_BYTES (256 MiB) and only the record headers of a larger
        one; "full" reads every CRC whatever the size (one sequential read of the split: about
        1 s per GiB from the page cache, the disk's read time from a cold one).
    """

    dataset: str = "synthetic_actions"
    data_dir: str = ""
    resolution: int = 64
    num_frames: int = 16
    max_stride: int = 4
    random_flip: bool = False
    random_crop: float = 0.0
    num_videos: int = 10000
    video_length: int = 32
    shuffle_buffer: int = 512
    verify_data: str = "auto"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by all models (paper values of a model come from its own config).

    Attributes:
      batch_size: GLOBAL batch size, summed over all replicas and workers.
      train_steps: total number of training iterations (one iteration = all D and G updates).
      g_lr, d_lr: Adam learning rates of generator and discriminator(s).
      beta1, beta2: Adam betas.
      ema_decay: decay of the exponential moving average of generator weights; 0 disables EMA.
        Sampling, evaluation and export use the EMA generator when it is enabled.
      init_from: checkpoint (prefix or directory) whose network weights a NEW run starts from
        (tfvidgen.warm_start); ignored when the workdir resumes from its own checkpoint.
    """

    batch_size: int = 16
    train_steps: int = 10000
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.0
    init_from: str = ""


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """How and where a run executes.

    Attributes:
      workdir: output directory (checkpoints, TensorBoard events, config.json, samples).
      strategy: tf.distribute strategy: default (one device), mirrored, multi_worker (TF_CONFIG).
      num_cpu_replicas: split the CPU into N logical devices (mirrored on a machine without GPUs).
      mixed_precision: Keras dtype policy: auto (mixed_bfloat16 where the hardware computes
        bfloat16 natively, else float32: hardware.resolve_precision), float32 or mixed_bfloat16.
      jit_compile: XLA-compile the training step (slow for conv models on CPU; see README).
      seed: seed of data order, augmentation, latents and initialisation.
      checkpoint_every: steps between checkpoints (a final one is always written).
      sample_every: steps between sample videos written to TensorBoard.
      log_every: steps between scalar summaries and progress lines.
      keep_checkpoints: how many checkpoints CheckpointManager keeps.
      num_sample_videos: videos in each TensorBoard sample grid (fixed latents).
      profile_steps: (start, end) step window to trace with the TF profiler; () disables.
      eval_every: steps between evaluations of the pinned protocol's FD and IS during training
        (tfvidgen.eval.during_training; also at the last step); 0 disables.
      eval_samples: generated (and real test) videos per evaluation during training.
      eval_cache_dir: where the evaluation classifier and the real statistics are cached; ""
        = <workdir>/eval (where `python -m tfvidgen.evaluate` looks by default). Runs sharing
        a cache directory share one classifier per dataset configuration.
      eval_classifier_steps: training steps of a new evaluation classifier (evaluate's
        --classifier_steps: the same value shares the classifier).
    """

    workdir: str = "runs/default"
    strategy: str = "default"
    num_cpu_replicas: int = 0
    mixed_precision: str = "auto"
    jit_compile: bool = False
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 500
    log_every: int = 50
    keep_checkpoints: int = 3
    num_sample_videos: int = 8
    profile_steps: tuple[int, ...] = ()
    eval_every: int = 0
    eval_samples: int = 128
    eval_cache_dir: str = ""
    eval_classifier_steps: int = 400


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one run needs; serialised to <workdir>/config.json."""

    model: str = "g3an"
    model_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    def validate(self) -> "Config":
        """Returns self, or raises ValueError naming the offending flag."""
        d, t, r = self.data, self.train, self.runtime
        model_keys = _model_keys()
        _check(self.model in model_keys, "model", self.model, f"one of {', '.join(model_keys)}")
        _check(d.dataset in DATASETS, "dataset", d.dataset, f"one of {', '.join(DATASETS)}")
        _check(d.dataset != "records" or bool(d.data_dir), "data_dir", d.data_dir,
               "a directory of TFRecord shards when --dataset=records")
        _check(d.resolution >= 16, "resolution", d.resolution,
               ">= 16 (each model then checks its own sizes: most need a power of two)")
        _check(d.num_frames >= 2, "num_frames", d.num_frames, ">= 2")
        _check(d.max_stride >= 1, "max_stride", d.max_stride, ">= 1")
        _check(0.0 <= d.random_crop < 0.5, "random_crop", d.random_crop, "in [0, 0.5)")
        _check(d.num_videos >= 1, "num_videos", d.num_videos, ">= 1")
        _check(d.video_length >= d.num_frames, "video_length", d.video_length,
               f">= --num_frames ({d.num_frames})")
        _check(d.shuffle_buffer >= 1, "shuffle_buffer", d.shuffle_buffer, ">= 1")
        _check(d.verify_data in VERIFY_MODES, "verify_data", d.verify_data,
               f"one of {', '.join(VERIFY_MODES)}")
        _check(t.batch_size >= 1, "batch_size", t.batch_size, ">= 1")
        _check(t.train_steps >= 0, "train_steps", t.train_steps, ">= 0")
        for name in ("g_lr", "d_lr"):
            value = getattr(t, name)
            _check(math.isfinite(value) and value > 0, name, value, "a finite number > 0")
        for name in ("beta1", "beta2", "ema_decay"):
            _check(0.0 <= getattr(t, name) < 1.0, name, getattr(t, name), "in [0, 1)")
        _check(r.strategy in STRATEGIES, "strategy", r.strategy, f"one of {', '.join(STRATEGIES)}")
        _check(r.num_cpu_replicas >= 0, "num_cpu_replicas", r.num_cpu_replicas, ">= 0")
        _check(r.mixed_precision in PRECISIONS, "mixed_precision", r.mixed_precision,
               f"one of {', '.join(PRECISIONS)}")
        for name in ("checkpoint_every", "sample_every", "log_every", "keep_checkpoints",
                     "num_sample_videos"):
            _check(getattr(r, name) >= 1, name, getattr(r, name), ">= 1")
        _check(not r.profile_steps or (len(r.profile_steps) == 2
                                       and 0 <= r.profile_steps[0] < r.profile_steps[1]),
               "profile_steps", r.profile_steps, "START,END with 0 <= START < END")
        _check(bool(r.workdir), "workdir", r.workdir, "a directory")
        check_seed(r.seed)
        _check(r.eval_every >= 0, "eval_every", r.eval_every, ">= 0 (0 = off)")
        _check(r.eval_samples >= 2, "eval_samples", r.eval_samples, ">= 2")
        _check(r.eval_classifier_steps >= 1, "eval_classifier_steps", r.eval_classifier_steps,
               ">= 1")
        return self

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "config.json") -> "Config":
        """Parses to_json()'s output; raises ValueError naming `source` and any unknown key."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source} is not valid JSON ({e})") from None
        groups = {"data": DataConfig, "train": TrainConfig, "runtime": RuntimeConfig}
        unknown = sorted(set(raw) - {"model", "model_params", *groups})
        for group, cls_ in groups.items():
            names = {f.name for f in dataclasses.fields(cls_)}
            unknown += [f"{group}.{k}" for k in sorted(set(raw.get(group, {})) - names)]
        if unknown:
            raise ValueError(f"{source} has unknown key(s) {', '.join(unknown)}: it was written "
                             f"by another tfvidgen version or edited by hand")
        if "model" not in raw:
            raise ValueError(f"{source} has no 'model' key")
        runtime = dict(raw.get("runtime", {}))
        runtime["profile_steps"] = tuple(runtime.get("profile_steps", ()))
        return cls(model=raw["model"], model_params=dict(raw.get("model_params", {})),
                   data=DataConfig(**raw.get("data", {})), train=TrainConfig(**raw.get("train", {})),
                   runtime=RuntimeConfig(**runtime))

    def resume_changes(self, stored: "Config") -> tuple[list[str], list[str]]:
        """How this configuration differs from the one a workdir was trained with.

        Returns (refused, allowed): "--flag OLD -> NEW" strings. Refused are changes of shapes or
        semantics (model, model parameters, data, batch size, seed, EMA on/off or decay); allowed
        are RESUMABLE fields: how long and how it runs, and learning rates / betas, which apply
        from the resumed step on.
        """
        refused, allowed = [], []
        if self.model != stored.model:
            refused.append(f"--model {stored.model} -> {self.model}")
        for key in sorted(set(self.model_params) | set(stored.model_params)):
            old, new = stored.model_params.get(key), self.model_params.get(key)
            if old != new:
                refused.append(f"--model_param {key} {old} -> {new}")
        for group in ("data", "train", "runtime"):
            old_group, new_group = getattr(stored, group), getattr(self, group)
            for f in dataclasses.fields(new_group):
                old, new = getattr(old_group, f.name), getattr(new_group, f.name)
                if old != new:
                    (allowed if f.name in RESUMABLE else refused).append(f"--{f.name} {old} -> {new}")
        return refused, allowed

    def replace(self, **groups) -> "Config":
        """Returns a copy with fields of groups replaced: replace(train={"batch_size": 4})."""
        changes = {}
        for group, fields in groups.items():
            current = getattr(self, group)
            changes[group] = (dataclasses.replace(current, **fields)
                              if dataclasses.is_dataclass(current) else fields)
        return dataclasses.replace(self, **changes)


#: Fields that may change when a run resumes (see Config.resume_changes).
RESUMABLE = frozenset({
    "train_steps", "g_lr", "d_lr", "beta1", "beta2", "workdir", "strategy", "num_cpu_replicas",
    "mixed_precision", "jit_compile", "checkpoint_every", "sample_every", "log_every",
    "keep_checkpoints", "num_sample_videos", "profile_steps", "init_from", "eval_every",
    "eval_samples", "eval_cache_dir", "eval_classifier_steps", "verify_data"})


def _check(ok: bool, flag: str, value: Any, expected: str) -> None:
    if not ok:
        raise ValueError(f"--{flag}={value!r} is invalid: expected {expected}")
