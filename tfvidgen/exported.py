"""A generator to sample from: a workdir's latest checkpoint or an exported SavedModel.

`sample` and `evaluate` work the same on a workdir and on an export (`python -m tfvidgen.export`):
load_generator returns either the restored VideoGAN or an ExportedGenerator, which offers
`sample_inputs(n, seed, labels)` (the SavedModel's `latents` signature: exactly the latents the
checkpoint draws for those seeds), `generate(latents)` (serving_default), `input_roles()` and
`cfg.conditional` / `cfg.num_classes`, and reads the training config and the declared inputs'
roles from assets.extra/tfvidgen.json.

An export refuses batches larger than its max serving batch (an in-graph check guarding the
server); ExportedGenerator splits larger requests into batches of at most that size, so callers
may ask for any number of videos.
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf

from tfvidgen import pixels
from tfvidgen.config import Config
from tfvidgen.export import ASSET_FILE

__all__ = ["ExportedGenerator", "ExportedConfig", "load_generator"]


@dataclasses.dataclass(frozen=True)
class ExportedConfig:
    """What callers read from a model's `cfg` when sampling."""

    conditional: bool
    num_classes: int


class ExportedGenerator:
    """Raises FileNotFoundError (not a SavedModel / no tfvidgen metadata) or ValueError (exported
    without the `latents` signature) naming the directory."""

    def __init__(self, path: str):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise FileNotFoundError(f"--saved_model={path!r} is not a SavedModel directory")
        asset = os.path.join(path, ASSET_FILE)
        if not os.path.isfile(asset):
            raise FileNotFoundError(f"--saved_model={path!r} has no {ASSET_FILE}: not written "
                                    f"by tfvidgen.export")
        with open(asset) as f:
            self.metadata = json.load(f)
        self._loaded = tf.saved_model.load(path)     # owns the variables the signatures use
        self._signatures = self._loaded.signatures
        if "latents" not in self._signatures:
            raise ValueError(f"--saved_model={path!r} has no `latents` signature (exported by an "
                             f"older tfvidgen): export the workdir again")
        raw = dict(self.metadata["config"])
        info = raw.pop("dataset_info", {})
        raw.pop("git_revision", None)
        self.config = Config.from_json(json.dumps(raw))
        self.step = int(self.metadata.get("step", 0))
        conditional = "label" in self._signatures["sample"].structured_input_signature[1]
        self.cfg = ExportedConfig(conditional, int(info.get("num_classes", 1)))
        self.max_batch = _max_serving_batch(self.metadata)

    def input_roles(self) -> dict:
        """{input name: role}, as VideoGAN.input_roles (what --fix/--interpolate act on)."""
        latents = self.metadata.get("latents", {})
        if latents and all("role" in v for v in latents.values()):
            return {name: v["role"] for name, v in latents.items()}
        # Exported before inputs had roles: the model's own declaration, built from the config.
        from tfvidgen import models
        return models.build_model(self.config, self.cfg.num_classes).input_roles()

    def sample_inputs(self, batch_size: int, seed: int, labels=None) -> dict:
        """The latents of samples seed, ..., seed + batch_size - 1 (as VideoGAN.sample_inputs)."""
        inputs = {"seed": tf.range(batch_size, dtype=tf.int64) + tf.cast(seed, tf.int64)}
        if self.cfg.conditional:
            if labels is None:
                raise ValueError("this conditional model needs labels")
            inputs["label"] = tf.cast(labels, tf.int32)
        return self._batched(self._signatures["latents"], inputs)

    def generate(self, latents: dict, training: bool = False):
        """Video [B, T, H, W, 3] float32 in [-1, 1], from the uint8 the SavedModel serves."""
        del training
        inputs = {k: tf.convert_to_tensor(v) for k, v in latents.items()}
        video = self._batched(self._signatures["serving_default"], inputs)["video"]
        return pixels.from_uint8(video)

    def _batched(self, signature, inputs: dict) -> dict:
        """signature(**inputs) in slices of at most max_batch along axis 0, concatenated."""
        n = next(iter(inputs.values())).shape[0]      # static: also inside a tf.function
        if n is None or n <= self.max_batch:
            return signature(**inputs)
        parts = [signature(**{k: v[i:i + self.max_batch] for k, v in inputs.items()})
                 for i in range(0, n, self.max_batch)]
        return {k: tf.concat([p[k] for p in parts], axis=0) for k in parts[0]}


def _max_serving_batch(metadata: dict) -> int:
    """The export's batch limit: from its metadata when export.py recorded it, else the limit
    VideoGAN exports carry (models.base.VideoGAN.max_serving_batch)."""
    if "max_serving_batch" in metadata:
        return int(metadata["max_serving_batch"])
    from tfvidgen.models.base import VideoGAN
    return int(VideoGAN.max_serving_batch)


def load_generator(workdir: str | None, saved_model: str | None):
    """(generator, config, step) from exactly one of a workdir or an export. Both give the same
    videos for the same seeds (up to the export's uint8 output)."""
    if bool(workdir) == bool(saved_model):
        raise ValueError("give exactly one of --workdir or --saved_model")
    if saved_model:
        generator = ExportedGenerator(saved_model)
        return generator, generator.config, generator.step
    from tfvidgen import workdir as workdir_lib
    return workdir_lib.load_for_inference(workdir)
