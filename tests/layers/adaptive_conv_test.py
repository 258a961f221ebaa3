"""Spatially-adaptive separable convolution: against a naive per-pixel loop (values and
gradients), identity kernels, mask blending, the core-op serving path, and 2 CPU replicas."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, subprocess_env
from tfvidgen.layers import adaptive_conv


def _naive(h, w_v, w_h):
    """Per pixel: the full n x n kernel outer(w_v, w_h) on the replicate-padded input."""
    b, height, width, c = h.shape
    n = w_v.shape[-1]
    p = n // 2
    padded = np.pad(h, [(0, 0), (p, p), (p, p), (0, 0)], mode="edge")
    out = np.zeros_like(h)
    for e in range(b):
        for y in range(height):
            for x in range(width):
                kernel = np.outer(w_v[e, y, x], w_h[e, y, x])            # [n, n]
                window = padded[e, y:y + n, x:x + n, :]                   # [n, n, C]
                out[e, y, x] = np.einsum("ij,ijc->c", kernel, window)
    return out


def _patches_reference(h, w_v, w_h):
    """An independent TF formulation (extract_patches + einsum) to differentiate."""
    n = w_v.shape[-1]
    padded = adaptive_conv.replicate_pad(h, n // 2)
    c = h.shape[-1]
    patches = tf.image.extract_patches(padded, [1, n, n, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID")
    patches = tf.reshape(patches, [*h.shape[:3], n, n, c])
    return tf.einsum("byxijc,byxi,byxj->byxc", patches, w_v, w_h)


def _random(shape_h, n, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=shape_h).astype(np.float32)
    w_v = rng.normal(size=(*shape_h[:3], n)).astype(np.float32)
    w_h = rng.normal(size=(*shape_h[:3], n)).astype(np.float32)
    return h, w_v, w_h


@pytest.mark.parametrize("n", [1, 3, 5])
@pytest.mark.parametrize("jit", [True, False])
def test_equals_a_naive_per_pixel_loop(n, jit):
    h, w_v, w_h = _random((2, 5, 6, 3), n)
    out = adaptive_conv.adaptive_separable_conv(tf.constant(h), tf.constant(w_v),
                                                tf.constant(w_h), jit=jit).numpy()
    np.testing.assert_allclose(out, _naive(h, w_v, w_h), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("jit", [True, False])
def test_gradients_equal_an_independent_formulation(jit):
    h, w_v, w_h = (tf.constant(x) for x in _random((2, 6, 5, 2), 3, seed=1))
    upstream = tf.random.stateless_normal([2, 6, 5, 2], [3, 4])

    def grads(fn):
        with tf.GradientTape() as tape:
            tape.watch([h, w_v, w_h])
            loss = tf.reduce_sum(fn(h, w_v, w_h) * upstream)
        return tape.gradient(loss, [h, w_v, w_h])

    ours = grads(lambda *a: adaptive_conv.adaptive_separable_conv(*a, jit=jit))
    reference = grads(_patches_reference)
    for a, b in zip(ours, reference):
        assert float(tf.reduce_max(tf.abs(a))) > 0.1
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
    # and the reference's forward is the naive loop's
    np.testing.assert_allclose(_patches_reference(h, w_v, w_h).numpy(),
                               _naive(h.numpy(), w_v.numpy(), w_h.numpy()), atol=1e-5)


def test_identity_kernel_returns_the_input():
    h, _, _ = _random((2, 4, 4, 3), 5)
    centre = np.zeros((2, 4, 4, 5), np.float32)
    centre[..., 2] = 1.0
    out = adaptive_conv.adaptive_separable_conv(tf.constant(h), centre, centre).numpy()
    np.testing.assert_array_equal(out, h)
    # a shift kernel (tap 0 of w_h) reads the left neighbour, the border replicated
    shift = np.zeros_like(centre)
    shift[..., 0] = 1.0
    out = adaptive_conv.adaptive_separable_conv(tf.constant(h), centre, shift).numpy()
    np.testing.assert_array_equal(out[:, :, 2:], h[:, :, :-2])
    np.testing.assert_array_equal(out[:, :, 0], h[:, :, 0])


def test_replicate_padding_copies_the_border():
    h = tf.reshape(tf.range(6, dtype=tf.float32), [1, 2, 3, 1])
    padded = adaptive_conv.replicate_pad(h, 2).numpy()[0, ..., 0]
    np.testing.assert_array_equal(padded, np.pad(h.numpy()[0, ..., 0], 2, mode="edge"))


def test_mask_zero_keeps_content_and_mask_one_gives_the_adapted_map():
    h, w_v, w_h = _random((2, 4, 4, 3), 3)
    adapted = adaptive_conv.adaptive_separable_conv(tf.constant(h), w_v, w_h)
    zeros, ones = np.zeros((2, 4, 4, 1), np.float32), np.ones((2, 4, 4, 1), np.float32)
    np.testing.assert_array_equal(adaptive_conv.blend(adapted, h, zeros).numpy(), h)
    np.testing.assert_array_equal(adaptive_conv.blend(adapted, h, ones).numpy(), adapted.numpy())
    np.testing.assert_array_equal(adaptive_conv.blend(adapted, h, None).numpy(), adapted.numpy())
    half = adaptive_conv.blend(adapted, h, zeros + 0.5).numpy()
    np.testing.assert_allclose(half, 0.5 * (adapted.numpy() + h), rtol=1e-6)


def test_without_jit_traces_core_ops_only():
    h, w_v, w_h = (tf.constant(x) for x in _random((1, 4, 4, 2), 3))

    def graph_of():
        fn = tf.function(lambda a, b, c: adaptive_conv.adaptive_separable_conv(a, b, c))
        return fn.get_concrete_function(h, w_v, w_h).graph

    def compiled_calls(graph):
        return [op for op in graph.get_operations()
                if op.type in ("PartitionedCall", "StatefulPartitionedCall")]

    assert compiled_calls(graph_of())                   # training: a call to the XLA function
    with adaptive_conv.without_jit():
        plain = graph_of()
    assert not compiled_calls(plain)
    assert {"Mul", "AddV2", "GatherV2"} <= {op.type for op in plain.get_operations()}


_MIRRORED = r"""
import numpy as np, tensorflow as tf
from tfvidgen import distribute
distribute.split_cpu(2)
import keras
from tfvidgen.layers import adaptive_conv
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    layer = keras.layers.Conv2D(2 * 3 + 2, 3, padding="same")
    layer.build((None, 8, 8, 2))
    opt = keras.optimizers.Adam(1e-2)
    opt.build(layer.trainable_variables)
rng = np.random.default_rng(0)
x = tf.constant(rng.normal(size=(4, 8, 8, 2)).astype(np.float32))
target = tf.constant(rng.normal(size=(4, 8, 8, 2)).astype(np.float32))
data = strategy.experimental_distribute_dataset(
    tf.data.Dataset.from_tensor_slices((x, target)).batch(4))
batch = next(iter(data))

def replica_step(x, target):
    with tf.GradientTape() as tape:
        out = layer(x)
        adapted = adaptive_conv.adaptive_separable_conv(x, out[..., :3], out[..., 3:6])
        loss = tf.reduce_mean(tf.square(adapted - target))
        scaled = loss / strategy.num_replicas_in_sync
    grads = tape.gradient(scaled, layer.trainable_variables)
    opt.apply_gradients(zip(grads, layer.trainable_variables))
    return loss

step = tf.function(lambda b: strategy.reduce("MEAN", strategy.run(replica_step, args=b), None))
losses = [float(step(batch)) for _ in range(15)]
print("LOSSES", losses[0], losses[-1])
assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0], losses
"""


def test_jit_compiled_op_trains_under_mirrored_strategy_on_two_cpu_replicas():
    """A subprocess: the CPU split must precede TF's initialisation, and two MirroredStrategy
    objects in one process clash (tests/train_lib_test.py)."""
    proc = subprocess.run([sys.executable, "-c", _MIRRORED], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LOSSES" in proc.stdout


@pytest.mark.parametrize("jit", [True, False])
def test_bfloat16_inputs_accumulate_in_float32_and_keep_their_dtype(jit):
    """Mixed precision: outputs and gradients come back in bfloat16, and a few roundings (the
    result's, and the replicate padding's gradient summing border terms in bfloat16) separate
    them from the float32 computation on the same inputs; 25-term bfloat16 sums would not."""
    h, w_v, w_h = (tf.cast(tf.constant(x), tf.bfloat16) for x in _random((2, 6, 5, 4), 5, seed=2))
    upstream = tf.cast(tf.random.stateless_normal([2, 6, 5, 4], [5, 6]), tf.bfloat16)

    def run(*args):
        with tf.GradientTape() as tape:
            tape.watch(args)
            out = adaptive_conv.adaptive_separable_conv(*args, jit=jit)
            loss = tf.reduce_sum(tf.cast(out, tf.float32) * tf.cast(upstream, tf.float32))
        return [out, *tape.gradient(loss, list(args))]

    low = run(h, w_v, w_h)
    high = run(*(tf.cast(t, tf.float32) for t in (h, w_v, w_h)))
    for a, b in zip(low, high):
        assert a.dtype == tf.bfloat16
        # bfloat16 keeps 8 significant bits: an ulp is 2^-7 of the value's binade
        scale = float(tf.reduce_max(tf.abs(b)))
        np.testing.assert_allclose(tf.cast(a, tf.float32).numpy(), b.numpy(),
                                   rtol=2 ** -6, atol=2 ** -7 * scale)
