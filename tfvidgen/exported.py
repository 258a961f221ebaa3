"""Reading a tfvidgen export: an exported SavedModel as a generator to sample from.

ExportedGenerator answers what sampling and evaluation ask of a restored VideoGAN:
`sample_inputs(n, seed, labels, images)` (the `latents` signature: exactly the latents the
checkpoint draws for those seeds; an image-to-video model's images are given), `generate(inputs)`
(serving_default), `input_roles()`, `cfg` (conditional, num_classes, resolution, num_frames),
`CAPABILITIES` (as a model class declares them), plus `sample_frames` (other lengths, from
seeds) and `transfer` (motion transfer) where the export's capabilities have them. It reads the
training config, the declared inputs' roles and the capabilities from assets.extra/tfvidgen.json
(tfvidgen.export_lib writes it), never from tfvidgen's model classes; an export written before
capabilities were recorded gets them from its signatures.

An export refuses batches larger than its max serving batch (an in-graph check guarding the
server); ExportedGenerator splits larger requests into batches of at most that size, so callers
may ask for any number of videos.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types

import tensorflow as tf

from tfvidgen import pixels
from tfvidgen.config import Config
from tfvidgen.export_lib import ASSET_FILE

__all__ = ["ExportedGenerator", "ExportedConfig", "capabilities_of"]

#: the capabilities an export records (tfvidgen.models.Capabilities' fields)
CAPABILITY_NAMES = ("variable_length", "image_input", "transfer", "steer")
# a batch-size limit export_lib records; exports older than that record carry this one
_DEFAULT_MAX_BATCH = 256


@dataclasses.dataclass(frozen=True)
class ExportedConfig:
    """What callers read from a model's `cfg` when sampling."""

    conditional: bool
    num_classes: int
    resolution: int = 0
    num_frames: int = 0


def capabilities_of(metadata: dict, signatures) -> types.SimpleNamespace:
    """The export's capabilities: as recorded in its metadata, else (an older export) what its
    signatures offer: `sample_frames` (or the older `num_frames` / `animate`), `transfer`,
    `steer`, and an input of role image."""
    recorded = metadata.get("capabilities")
    if recorded is not None:
        return types.SimpleNamespace(**{name: bool(recorded.get(name, False))
                                        for name in CAPABILITY_NAMES})
    names = set(signatures)
    roles = {v.get("role") for v in metadata.get("latents", {}).values()}
    return types.SimpleNamespace(
        variable_length=bool(names & {"sample_frames", "num_frames", "animate"}),
        image_input="image" in roles, transfer="transfer" in names, steer="steer" in names)


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
        self.path = path
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
        self.cfg = ExportedConfig(conditional, int(info.get("num_classes", 1)),
                                  self.config.data.resolution, self.config.data.num_frames)
        self.max_batch = int(self.metadata.get("max_serving_batch", _DEFAULT_MAX_BATCH))
        self.CAPABILITIES = capabilities_of(self.metadata, self._signatures)

    def input_roles(self) -> dict:
        """{input name: role}, as VideoGAN.input_roles (what --fix/--interpolate act on)."""
        latents = self.metadata.get("latents", {})
        if latents and all("role" in v for v in latents.values()):
            return {name: v["role"] for name, v in latents.items()}
        # Exported before inputs had roles: the model's own declaration, built from the config.
        from tfvidgen import models
        return models.build_model(self.config, self.cfg.num_classes).input_roles()

    def _image_inputs(self) -> list:
        return [name for name, role in self.input_roles().items() if role == "image"]

    def _seeded(self, batch_size: int, seed: int, labels) -> dict:
        inputs = {"seed": tf.range(batch_size, dtype=tf.int64) + tf.cast(seed, tf.int64)}
        if self.cfg.conditional:
            if labels is None:
                raise ValueError("this conditional model needs labels")
            inputs["label"] = tf.cast(labels, tf.int32)
        return inputs

    def sample_inputs(self, batch_size: int, seed: int, labels=None, images=None,
                      num_frames=None) -> dict:
        """The inputs of samples seed, ..., seed + batch_size - 1 (as VideoGAN.sample_inputs):
        the latents drawn from the seeds, and `images` (float [B, R, R, 3] in [-1, 1]) for an
        image-to-video model, which needs them. The latents are the trained length's: other
        lengths come from sample_frames."""
        if num_frames is not None:
            raise ValueError("an export draws latents of its trained length; other lengths: "
                             "sample_frames")
        inputs = self._batched(self._signatures["latents"],
                               self._seeded(batch_size, seed, labels))
        image_inputs = self._image_inputs()
        if image_inputs and images is None:
            raise ValueError(f"{self.config.model} animates a given image: sample_inputs needs "
                             f"images")
        for name in image_inputs:
            inputs[name] = tf.convert_to_tensor(images, tf.float32)
        return inputs

    def generate(self, latents: dict, training: bool = False, num_frames=None):
        """Video [B, T, H, W, 3] float32 in [-1, 1], from the uint8 the SavedModel serves."""
        del training
        if num_frames is not None:
            raise ValueError("an export generates other lengths from seeds: sample_frames")
        inputs = {k: tf.convert_to_tensor(v) for k, v in latents.items()}
        video = self._batched(self._signatures["serving_default"], inputs)["video"]
        return pixels.from_uint8(video)

    def sample_frames(self, batch_size: int, seed: int, num_frames: int, labels=None,
                      images=None):
        """Videos of num_frames frames of samples seed .. seed+batch_size-1 (the `sample_frames`
        signature), float32 in [-1, 1]; `images` as in sample_inputs."""
        if not self.CAPABILITIES.variable_length or "sample_frames" not in self._signatures:
            raise ValueError(f"--saved_model={self.path!r} has no `sample_frames` signature: "
                             f"its model generates {self.cfg.num_frames} frames")
        inputs = self._seeded(batch_size, seed, labels)
        for name in self._image_inputs():
            inputs[name] = pixels.to_uint8(images)
        length = tf.constant(num_frames, tf.int32)
        video = self._batched(self._signatures["sample_frames"], inputs,
                              num_frames=length)["video"]
        return pixels.from_uint8(video)

    def transfer(self, image, video, labels=None):
        """The `transfer` signature (image [B, R, R, 3] and video [B, T, R, R, 3] in [-1, 1])
        -> float32 [B, T, R, R, 3] in [-1, 1], as VideoGAN.transfer."""
        if not self.CAPABILITIES.transfer:
            raise ValueError(f"--saved_model={self.path!r} does no motion transfer")
        inputs = {"image": pixels.to_uint8(image),
                  "video": pixels.to_uint8(video)}
        if self.cfg.conditional:
            inputs["label"] = tf.cast(tf.zeros([len(image)]) if labels is None else labels,
                                      tf.int32)
        return pixels.from_uint8(self._batched(self._signatures["transfer"], inputs)["video"])

    def _batched(self, signature, inputs: dict, **per_request) -> dict:
        """signature(**inputs, **per_request) in slices of at most max_batch along axis 0 of
        `inputs`, concatenated."""
        n = next(iter(inputs.values())).shape[0]      # static: also inside a tf.function
        if n is None or n <= self.max_batch:
            return signature(**inputs, **per_request)
        parts = [signature(**{k: v[i:i + self.max_batch] for k, v in inputs.items()},
                           **per_request)
                 for i in range(0, n, self.max_batch)]
        return {k: tf.concat([p[k] for p in parts], axis=0) for k in parts[0]}
