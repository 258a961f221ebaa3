"""Per-example stateless randomness: every example's draws depend only on its own int64[2] key.

Why: latents drawn from a per-example key are the same whichever replica the example lands on, so
N replicas reproduce a single device's update exactly, different examples (hence replicas) draw
different latents, and a resumed run redraws exactly what the interrupted one would have drawn.
(keras.random with a SeedGenerator draws identical noise on every replica: verified on TF 2.21 / Keras 3.15.)
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["per_example_normal", "per_example_randint", "seeds_from_ints"]


def _fold(seeds, salt: int):
    return tf.map_fn(
        lambda s: tf.cast(tf.random.experimental.stateless_fold_in(s, salt), tf.int64),
        tf.cast(seeds, tf.int64), fn_output_signature=tf.TensorSpec([2], tf.int64))


def per_example_normal(seeds, salt: int, dim) -> tf.Tensor:
    """seeds int64 [B, 2] -> float32 [B, dim] ~ N(0, I), a pure function of (seed row, salt).

    dim may be a tensor (e.g. a requested length); a draw of size d is the prefix of a draw of
    any larger size (stateless normals), so longer requests extend shorter ones."""
    static = dim if isinstance(dim, int) else None
    return tf.map_fn(lambda s: tf.random.stateless_normal([dim], s), _fold(seeds, salt),
                     fn_output_signature=tf.TensorSpec([static], tf.float32))


def per_example_randint(seeds, salt: int, maxval) -> tf.Tensor:
    """seeds int64 [B, 2] -> int32 [B] uniform in [0, maxval)."""
    return tf.map_fn(
        lambda s: tf.random.stateless_uniform([], s, minval=0, maxval=maxval, dtype=tf.int32),
        _fold(seeds, salt), fn_output_signature=tf.TensorSpec([], tf.int32))


def seeds_from_ints(seeds) -> tf.Tensor:
    """User seeds int [B] -> int64 [B, 2] keys (seed, 0): the serving `sample` endpoint, the sample
    CLI and sample_inputs all map an integer seed to the same video."""
    seeds = tf.cast(seeds, tf.int64)
    return tf.stack([seeds, tf.zeros_like(seeds)], axis=1)
