"""Flags of the six entry points, and the only module that reads absl's FLAGS.

Training: every field of config.DataConfig / TrainConfig / RuntimeConfig has exactly one flag of
the same name (FLAG_FIELDS); defaults come from the dataclasses. `config_from_flags()` builds and
validates the Config, so a bad value fails at start-up with one line naming the flag.

Shared by the entry points (train, sample, evaluate, transfer, explain, export), so each names
things one way: the source (--workdir, and --saved_model where an export can serve:
define_source_flags, checked by tfvidgen.sources.source_from), --seed (define_seed_flag; one
range, [0, 2**62], checked by check_seed), the written video (--output and --fps, default 8:
define_output_flags, checked by check_output). An entry point's main reads the parsed values once
with `flag_values()` and passes plain values down.
"""

from __future__ import annotations

import dataclasses
import types

from absl import flags

from tfvidgen import config as config_lib
from tfvidgen import errors, viz

__all__ = ["define_flags", "config_from_flags", "FLAG_FIELDS", "write_flagfile", "DEFAULT_FPS",
           "define_source_flags", "define_seed_flag", "define_output_flags",
           "flag_values", "check_seed", "check_output"]

FLAGS = flags.FLAGS

_HELP = {
    "dataset": "Data source: synthetic_actions (default), synthetic_shapes, or records.",
    "data_dir": "Directory of TFRecord shards + manifest.json (tools/prepare_dataset.py).",
    "resolution": "Frame height = width of the clips the model sees (>= 16; each model states the sizes it builds: a power of two, or e.g. 96 for MVT-TSA).",
    "num_frames": "Clip length in frames.",
    "max_stride": "Temporal stride of each clip is drawn from [1, max_stride].",
    "random_flip": "Random horizontal flips.",
    "random_crop": "Random crop of up to this fraction of each side, resized back (0 = off).",
    "num_videos": "Number of videos of a synthetic dataset.",
    "video_length": "Frames per synthetic source video.",
    "shuffle_buffer": "Records are shuffled in windows of this many videos.",
    "verify_data": "Start-up check of record shards: auto (every CRC up to 256 MiB per split, "
                   "record headers above) or full (every CRC; ~1 s per GiB from page cache).",
    "batch_size": "GLOBAL batch size, summed over all replicas and workers.",
    "train_steps": "Total training iterations (a rerun resumes and stops here).",
    "g_lr": "Generator Adam learning rate.",
    "d_lr": "Discriminator Adam learning rate.",
    "beta1": "Adam beta1.",
    "beta2": "Adam beta2.",
    "ema_decay": "EMA decay of generator weights for sampling/eval/export; 0 = off.",
    "init_from": "Checkpoint (prefix or directory) whose network weights a new run starts from "
                 "(warm start; ignored when resuming).",
    "workdir": "Output directory: checkpoints, TensorBoard events, config.json, flags.cfg.",
    "strategy": "tf.distribute strategy: default, mirrored or multi_worker (TF_CONFIG).",
    "num_cpu_replicas": "Split the CPU into N logical devices (MirroredStrategy without GPUs).",
    "mixed_precision": "Keras dtype policy: auto (bfloat16 only where the hardware computes it "
                       "natively, else float32), float32 or mixed_bfloat16.",
    "jit_compile": "XLA-compile the per-replica training step (slow for conv models on CPU).",
    "seed": "Seed of initialisation, data order, augmentation and latents.",
    "checkpoint_every": "Steps between checkpoints.",
    "sample_every": "Steps between TensorBoard sample videos (fixed latents).",
    "log_every": "Steps between scalar summaries and progress lines.",
    "keep_checkpoints": "Number of checkpoints to keep.",
    "num_sample_videos": "Videos per TensorBoard sample grid.",
    "profile_steps": "START,END: trace these steps with the TF profiler (TensorBoard Profile tab).",
    "eval_every": "Every N steps (and at the last step) measure the evaluation protocol's FD and "
                  "IS on --eval_samples videos (EMA generator if any): TensorBoard eval/*, a "
                  "progress line, <workdir>/eval_curve.jsonl and the best-FD checkpoint in "
                  "<workdir>/best/. 0 = off.",
    "eval_samples": "Generated (and real test) videos per evaluation during training.",
    "eval_cache_dir": "Cache of the evaluation classifier (<dir>/classifier-<protocol key>, "
                      "trained once per dataset configuration) and real statistics; share it "
                      "between runs. Default: <workdir>/eval, with the classifier in "
                      "<workdir>/eval/classifier where evaluate looks by default.",
    "eval_classifier_steps": "Training steps of a new evaluation classifier (the same value as "
                             "evaluate's --classifier_steps shares the classifier).",
}

#: flag name -> (config group, field)
FLAG_FIELDS = {f.name: (group, f.name)
               for group, cls in (("data", config_lib.DataConfig), ("train", config_lib.TrainConfig),
                                  ("runtime", config_lib.RuntimeConfig))
               for f in dataclasses.fields(cls)}

_ENUMS = {"dataset": config_lib.DATASETS, "strategy": config_lib.STRATEGIES,
          "mixed_precision": config_lib.PRECISIONS, "verify_data": config_lib.VERIFY_MODES}


def define_flags() -> None:
    """Defines --model, --model_param, --dry_run and one flag per config field."""
    flags.DEFINE_enum("model", "g3an", list(config_lib.MODEL_KEYS), "Model key.")
    flags.DEFINE_multi_string("model_param", [], "NAME=VALUE override of the model's own config "
                              "(repeatable; values add up across flagfiles).")
    flags.DEFINE_bool("dry_run", False, "Print the resolved config and exit.")
    defaults = {"data": config_lib.DataConfig(), "train": config_lib.TrainConfig(),
                "runtime": config_lib.RuntimeConfig()}
    for name, (group, field) in FLAG_FIELDS.items():
        default = getattr(defaults[group], field)
        help_text = _HELP[name]
        if name in _ENUMS:
            flags.DEFINE_enum(name, default, list(_ENUMS[name]), help_text)
        elif name == "profile_steps":
            flags.DEFINE_string(name, "", help_text)
        elif isinstance(default, bool):
            flags.DEFINE_bool(name, default, help_text)
        elif isinstance(default, int):
            flags.DEFINE_integer(name, default, help_text)
        elif isinstance(default, float):
            flags.DEFINE_float(name, default, help_text)
        else:
            flags.DEFINE_string(name, default, help_text)


def _profile_steps(text: str) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        start, end = (int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--profile_steps={text!r} is invalid: expected START,END") from None
    return (start, end)


def config_from_flags() -> config_lib.Config:
    """Builds and validates the Config from parsed flags (raises ValueError naming the flag)."""
    from tfvidgen import models     # deferred: imports TensorFlow
    from tfvidgen.data import pipeline

    groups = {"data": {}, "train": {}, "runtime": {}}
    for name, (group, field) in FLAG_FIELDS.items():
        value = FLAGS[name].value
        groups[group][field] = _profile_steps(value) if name == "profile_steps" else value
    params = models.parse_model_params(FLAGS.model, FLAGS.model_param)
    config = config_lib.Config(
        model=FLAGS.model, model_params=params, data=config_lib.DataConfig(**groups["data"]),
        train=config_lib.TrainConfig(**groups["train"]),
        runtime=config_lib.RuntimeConfig(**groups["runtime"])).validate()
    # The model's own checks (sizes it supports, label needs) also run before any work starts.
    models.model_config(config, pipeline.dataset_info(config.data)["num_classes"])
    return config


def write_flagfile(path: str) -> None:
    """Writes the current flag values, so `--flagfile=<path>` reruns the same experiment."""
    FLAGS.append_flags_into_file(path)


# ---- flags shared by the entry points ---------------------------------------------------------
#: frames per second of every GIF/MP4 an entry point writes, unless --fps says otherwise
DEFAULT_FPS = 8


def define_source_flags(exports: bool = True) -> None:
    """--workdir, and --saved_model when the entry point can also read an export."""
    flags.DEFINE_string("workdir", None, "Training workdir: its latest checkpoint (the EMA "
                        "generator when training kept one).")
    if exports:
        flags.DEFINE_string("saved_model", None, "Exported SavedModel directory "
                            "(export/<model>/<version>, from tfvidgen.export) instead of "
                            "--workdir.")


def define_seed_flag(what: str) -> None:
    flags.DEFINE_integer("seed", 0, f"{what} (same seed, same result; in [0, 2**62]).")


def define_output_flags(default: str) -> None:
    """--output (a .gif, .mp4 or .png file) and --fps."""
    flags.DEFINE_string("output", default, "Output .gif, .mp4 or .png.")
    flags.DEFINE_integer("fps", DEFAULT_FPS, "Frames per second of GIF/MP4.", lower_bound=1)


def flag_values() -> types.SimpleNamespace:
    """Every parsed flag as a plain value (flag_values().seed), for an entry point's main."""
    return types.SimpleNamespace(**FLAGS.flag_values_dict())


def check_seed(seed: int) -> int:
    """--seed, or ValueError `--seed=S is outside [0, 2**62]` (the same for every entry point)."""
    return config_lib.check_seed(seed)


def check_output(path: str) -> str:
    """--output, or ValueError naming it: not a .gif/.mp4/.png name, a directory, or a file
    whose folder cannot be made or written. Checked before any model is loaded."""
    errors.check_output_file("--output", path, viz.VIDEO_SUFFIXES)
    return path
