"""`--init_from=CKPT`: start a NEW run from the network weights of a user-provided checkpoint.

Why: the official MVT-TSA training starts G and D_Image from ImageNet BigGAN weights, which cannot be
downloaded here; a user who has such weights (converted to this model's layout) or any earlier
tfvidgen checkpoint can warm-start from them. Only at step 0: a run that resumes from its own
checkpoint ignores the flag (its checkpoint already holds everything).

What is loaded: every network variable (weights, BN statistics, spectral-norm vectors) of the
checkpoint items the model declares (models/base.py checkpoint_items: "generator",
"discriminators", ...), matched by item and position, when the stored shape equals the model's.
Variables whose shape differs (e.g. class embeddings of another number of classes) keep their
initial values and are listed in the returned report. Not loaded: the step and the optimizers
(a warm start is a new run: Adam slots and step start at 0). An EMA copy the checkpoint lacks
starts equal to its (loaded) source.
"""

from __future__ import annotations

import os

import tensorflow as tf

__all__ = ["warm_start", "resolve_checkpoint"]


def resolve_checkpoint(path: str) -> str:
    """A checkpoint prefix from `path` (a prefix, or a directory holding checkpoints)."""
    if os.path.isdir(path):
        newest = tf.train.latest_checkpoint(path)
        if newest is None:
            raise ValueError(f"--init_from={path}: the directory holds no checkpoint")
        return newest
    if not tf.io.gfile.glob(path + ".index"):
        raise ValueError(f"--init_from={path}: no such checkpoint (expected a prefix with a "
                         f".index file, or a directory of checkpoints)")
    return path


def _key(item: str, index: int) -> str:
    return f"{item}/{index}/.ATTRIBUTES/VARIABLE_VALUE"


def warm_start(model, path: str, log=print) -> dict:
    """Loads the matching network variables of checkpoint `path` into `model` (built).

    Returns {"loaded": n, "skipped": [variable paths whose shape differed or were absent]}.
    Raises ValueError naming --init_from when the checkpoint is unreadable or nothing matches.
    """
    prefix = resolve_checkpoint(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise ValueError(f"--init_from={path}: cannot read the checkpoint ({e})") from None
    stored = reader.get_variable_to_shape_map()
    loaded, skipped, loaded_items = 0, [], set()
    for item, variables in model.checkpoint_items().items():
        for index, variable in enumerate(variables):
            key = _key(item, index)
            if key in stored and list(stored[key]) == list(variable.shape):
                variable.assign(tf.cast(reader.get_tensor(key), variable.dtype))
                loaded += 1
                loaded_items.add(item)
            else:
                skipped.append(variable.path)
    if not loaded:
        raise ValueError(f"--init_from={path}: no variable of the checkpoint matches this "
                         f"model (different model or sizes?)")
    for attribute, net in model.networks().items():
        copy = getattr(model, attribute)
        if net.role == "ema" and copy is not None and net.item not in loaded_items:
            copy.set_weights(getattr(model, net.source).get_weights())
    log(f"warm start from {prefix}: loaded {loaded} variables, kept the initial values of "
        f"{len(skipped)}" + (f" ({', '.join(skipped[:8])}{', ...' if len(skipped) > 8 else ''})"
                             if skipped else ""))
    return {"loaded": loaded, "skipped": skipped}
