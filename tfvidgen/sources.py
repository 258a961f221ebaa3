"""What an entry point reads a model from: a training workdir or an exported SavedModel.

source_from(workdir, saved_model) checks the request before anything is loaded (the same error
text in every entry point); load(source) restores it: a workdir's latest checkpoint
(tfvidgen.workdir, a VideoGAN) or an export (tfvidgen.exported.ExportedGenerator), with the
capabilities of its model (tfvidgen.models.Capabilities: from the model registry for a workdir,
from the export's metadata for an export). Both generators answer the same calls:
`sample_inputs(n, seed, labels=None, images=None)`, `generate(inputs)`, `input_roles()`, `cfg`,
`CAPABILITIES`; seeded_inputs() supplies an image-to-video model's images, seeded_videos() adds
--num_frames on either.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Source", "Loaded", "source_from", "load", "seeded_inputs", "seeded_videos",
           "check_num_frames", "first_frames", "labels_for"]

#: the one error of a request naming no source or two (entry points that also read exports)
NEED_ONE_SOURCE = "give exactly one of --workdir or --saved_model"


@dataclasses.dataclass(frozen=True)
class Source:
    """Exactly one of a training workdir or an export directory (source_from checks it)."""

    workdir: str | None = None
    saved_model: str | None = None

    @property
    def path(self) -> str:
        return self.saved_model or self.workdir


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A restored source: what sampling, evaluation and transfer work with."""

    source: Source
    generator: object          # VideoGAN, or ExportedGenerator for an export
    config: object             # tfvidgen.config.Config the model was trained with
    step: int
    capabilities: object       # tfvidgen.models.Capabilities (or the export's equivalent)

    def __iter__(self):        # (generator, config, step), as the loaders return
        return iter((self.generator, self.config, self.step))


def source_from(workdir: str | None, saved_model: str | None = None,
                exports: bool = True) -> Source:
    """The Source of --workdir / --saved_model; ValueError unless exactly one is given (only
    --workdir for an entry point that reads no exports: exports=False)."""
    if not exports:
        if not workdir:
            raise ValueError("--workdir is required")
        return Source(workdir=workdir)
    if bool(workdir) == bool(saved_model):
        raise ValueError(NEED_ONE_SOURCE)
    return Source(workdir or None, saved_model or None)


def load(source: Source) -> Loaded:
    """Restores the source's generator (the EMA copy when training kept one)."""
    if source.saved_model:
        from tfvidgen.exported import ExportedGenerator
        generator = ExportedGenerator(source.saved_model)
        return Loaded(source, generator, generator.config, generator.step,
                      generator.CAPABILITIES)
    from tfvidgen import models
    from tfvidgen import workdir as workdir_lib
    model, config, step = workdir_lib.load_for_inference(source.workdir)
    return Loaded(source, model, config, step, models.capabilities(config.model))


def first_frames(seed: int, n: int, resolution: int) -> np.ndarray:
    """Images for an image-to-video model when none is given: the first frames of
    synthetic_actions videos seed .. seed+n-1, float32 [n, R, R, 3] in [-1, 1]."""
    from tfvidgen.data import synthetic
    return np.asarray(synthetic.first_frames(range(seed, seed + n), resolution), np.float32)


def seeded_inputs(generator, n: int, seed: int, labels=None, images=None,
                  num_frames: int | None = None) -> dict:
    """The generator inputs of samples seed .. seed+n-1 (latents for videos of num_frames frames
    when given); an image-to-video model (capability image_input) animates `images` (float
    [n, R, R, 3] in [-1, 1]), by default first_frames of the same seeds. `generator`: a VideoGAN
    or an ExportedGenerator (both declare CAPABILITIES)."""
    import tensorflow as tf
    labels = None if labels is None else tf.constant(labels, tf.int32)
    extra = {} if num_frames is None else {"num_frames": num_frames}
    if not generator.CAPABILITIES.image_input:
        return generator.sample_inputs(n, seed, labels, **extra)
    if images is None:
        images = first_frames(seed, n, generator.cfg.resolution)
    return generator.sample_inputs(n, seed, labels, images=images, **extra)


def check_num_frames(loaded: Loaded, num_frames: int | None) -> None:
    """ValueError naming --num_frames when it is given for a model of fixed length."""
    if num_frames is not None and not loaded.capabilities.variable_length:
        raise ValueError(f"--num_frames={num_frames}: {loaded.config.model} generates a fixed "
                         f"number of frames ({loaded.config.data.num_frames}); omit --num_frames")


def seeded_videos(loaded: Loaded, n: int, seed: int, labels=None, images=None,
                  num_frames: int | None = None):
    """Videos [n, T, H, W, 3] in [-1, 1] of samples seed .. seed+n-1: T = num_frames on a model
    with variable_length (an export through its `sample_frames` signature), else the trained
    length. ValueError naming --num_frames for a model of fixed length."""
    check_num_frames(loaded, num_frames)
    if images is None and loaded.capabilities.image_input:
        images = first_frames(seed, n, loaded.generator.cfg.resolution)
    if num_frames is not None and loaded.source.saved_model:
        # An export draws other lengths from seeds only (its latents are the trained length's).
        import tensorflow as tf
        labels = None if labels is None else tf.constant(labels, tf.int32)
        return loaded.generator.sample_frames(n, seed, num_frames, labels, images)
    inputs = seeded_inputs(loaded.generator, n, seed, labels, images, num_frames)
    return loaded.generator.generate(inputs, num_frames=num_frames)


def labels_for(cfg, label: int | None, n: int):
    """int [n] labels for a conditional model (--label, or cycling through the classes), None for
    an unconditional one; raises ValueError for a --label the model cannot use."""
    if not cfg.conditional:
        if label is not None:
            raise ValueError(f"--label={label}: this model is unconditional (trained without "
                             f"labels); omit --label")
        return None
    if label is not None and not 0 <= label < cfg.num_classes:
        raise ValueError(f"--label={label} outside [0, {cfg.num_classes})")
    return np.full(n, label) if label is not None else np.arange(n) % cfg.num_classes
