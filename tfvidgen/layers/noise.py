"""Per-example stateless randomness: every example's draws depend only on its own int64[2] key.

Why: latents drawn from a per-example key are the same whichever replica the example lands on, so
N replicas reproduce a single device's update exactly, different examples (hence replicas) draw
different latents, and a resumed run redraws exactly what the interrupted one would have drawn.
(keras.random with a SeedGenerator draws identical noise on every replica: verified on TF 2.21 / Keras 3.15.)
"""

from __future__ import annotations

import math

import tensorflow as tf

__all__ = ["per_example_normal", "per_example_randint", "per_example_indices", "random_frame",
           "salted_keys", "step_normal", "seeds_from_ints"]


def salted_keys(seeds, salt: int):
    """seeds int64 [B, 2] -> the per-example keys of the draws salted `salt`: int64 [B, 2]."""
    return tf.map_fn(
        lambda s: tf.cast(tf.random.experimental.stateless_fold_in(s, salt), tf.int64),
        tf.cast(seeds, tf.int64), fn_output_signature=tf.TensorSpec([2], tf.int64))


def per_example_normal(seeds, salt: int, dim) -> tf.Tensor:
    """seeds int64 [B, 2] -> float32 [B, dim] ~ N(0, I), a pure function of (seed row, salt).

    dim may be a tensor (e.g. a requested length); a draw of size d is the prefix of a draw of
    any larger size (stateless normals), so longer requests extend shorter ones."""
    static = dim if isinstance(dim, int) else None
    return tf.map_fn(lambda s: tf.random.stateless_normal([dim], s), salted_keys(seeds, salt),
                     fn_output_signature=tf.TensorSpec([static], tf.float32))


def per_example_randint(seeds, salt: int, maxval) -> tf.Tensor:
    """seeds int64 [B, 2] -> int32 [B] uniform in [0, maxval)."""
    return tf.map_fn(
        lambda s: tf.random.stateless_uniform([], s, minval=0, maxval=maxval, dtype=tf.int32),
        salted_keys(seeds, salt), fn_output_signature=tf.TensorSpec([], tf.int32))


def per_example_indices(seeds, salt: int, count: int, maxval) -> tf.Tensor:
    """seeds int64 [B, 2] -> int32 [B, count] uniform in [0, maxval), drawn with replacement.

    One normal draw per index mapped through the normal CDF to a uniform: all `count` indices
    from one per-example draw (a randint per index cost 2 map_fns each in a traced step)."""
    normal = per_example_normal(seeds, salt, count)                           # [B, count]
    uniform = 0.5 * (1.0 + tf.math.erf(normal / math.sqrt(2.0)))
    index = tf.cast(tf.floor(uniform * tf.cast(maxval, tf.float32)), tf.int32)
    return tf.minimum(index, tf.cast(maxval, tf.int32) - 1)


def random_frame(videos, seeds, salt: int) -> tf.Tensor:
    """One frame per video at a per-example random index: videos [B, T, ...] -> [B, ...]."""
    index = per_example_randint(seeds, salt, tf.shape(videos)[1])
    return tf.gather(videos, index, batch_dims=1)


def step_normal(keys, index, dim) -> tf.Tensor:
    """keys int64 [B, 2] (salted_keys) -> float32 [B, dim] ~ N(0, I) of step `index` (a tensor
    too): one fold-in per step, so the steps of a longer sequence extend a shorter one's."""
    index = tf.cast(index, tf.int32)
    return tf.map_fn(
        lambda s: tf.random.stateless_normal(
            [dim], tf.random.experimental.stateless_fold_in(s, index)),
        keys, fn_output_signature=tf.TensorSpec([dim], tf.float32))


def seeds_from_ints(seeds) -> tf.Tensor:
    """User seeds int [B] -> int64 [B, 2] keys (seed, 0): the serving `sample` endpoint, the sample
    CLI and sample_inputs all map an integer seed to the same video."""
    seeds = tf.cast(seeds, tf.int64)
    return tf.stack([seeds, tf.zeros_like(seeds)], axis=1)
