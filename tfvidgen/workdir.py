"""A training workdir: its stored configuration and the model restored from its checkpoints.

load_for_inference is what sample, export, evaluate and the benchmark restore a workdir with;
train_lib writes workdirs and keeps `build_for_inference` as an alias of it.
"""

from __future__ import annotations

import json
import os

import keras
from absl import logging

from tfvidgen import checkpoints, models
from tfvidgen.config import Config

__all__ = ["CHECKPOINT_DIR", "read_stored_config", "load_for_inference"]

CHECKPOINT_DIR = "checkpoints"


def read_stored_config(workdir: str) -> tuple[Config, dict | None]:
    """(config, dataset_info) stored in a workdir's config.json."""
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--workdir={workdir!r} has no config.json: not a training workdir")
    with open(path) as f:
        text = f.read()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    raw.pop("git_revision", None)
    info = raw.pop("dataset_info", None)
    return Config.from_json(json.dumps(raw), source=path), info


def load_for_inference(workdir: str):
    """(model, config, step) restored from a workdir's latest checkpoint, for sampling/export."""
    from tfvidgen.data import pipeline
    config, info = read_stored_config(workdir)
    keras.mixed_precision.set_global_policy("float32")
    info = info or pipeline.dataset_info(config.data)
    model = models.build(config, info["num_classes"], training=False)

    checkpoint = model.checkpoint(training=False)

    def restore(prefix):
        # Every variable of the inference model (generator, EMA copy, discriminators, encoders)
        # must come from the checkpoint; only the optimizers' values are left unused.
        checkpoint.restore(prefix).assert_existing_objects_matched().expect_partial()

    latest = checkpoints.restore_newest(restore, os.path.join(workdir, CHECKPOINT_DIR),
                                        warn=lambda line: print(line, flush=True))
    if latest is None:
        raise FileNotFoundError(f"--workdir={workdir!r} has no checkpoint yet")
    step = int(model.step.numpy())
    logging.info("restored %s (step %d)", latest, step)
    return model, config, step
