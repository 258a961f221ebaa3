"""BatchNorm (fused kernel on one replica) against keras.layers.BatchNormalization: outputs,
gradients and moving statistics in float32 and mixed bfloat16, 4D and 5D; the same variables
(a checkpoint of one restores into the other); Keras' path where the fused kernel does not apply."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvidgen import hardware
from tfvidgen.layers import batch_norm, conv


def _pair(shape, policy, affine=True):
    reference = keras.layers.BatchNormalization(synchronized=True, momentum=0.9, epsilon=1e-5,
                                                center=affine, scale=affine,
                                                dtype=keras.DTypePolicy(policy))
    ours = batch_norm.BatchNorm(synchronized=True, momentum=0.9, epsilon=1e-5, center=affine,
                                scale=affine, dtype=keras.DTypePolicy(policy))
    reference.build(shape)
    ours.build(shape)
    for i, (a, b) in enumerate(zip(reference.weights, ours.weights)):
        value = a + 0.3 * tf.random.stateless_normal(a.shape, [7, i])
        a.assign(value)
        b.assign(value)
    return reference, ours


def _run(layer, x, upstream, training):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    return [y, *grads, tf.convert_to_tensor(layer.moving_mean),
            tf.convert_to_tensor(layer.moving_variance)]


@pytest.mark.parametrize("shape", [(4, 6, 5, 3), (3, 4, 6, 5, 7)])
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_equals_keras_batch_normalization(shape, policy, training, affine):
    reference, ours = _pair(shape, policy, affine)
    dtype = keras.DTypePolicy(policy).compute_dtype
    x = tf.cast(3.0 * tf.random.stateless_normal(shape, [1, 2]) + 1.0, dtype)
    upstream = tf.random.stateless_normal(shape, [3, 4])
    for step in range(2):                          # the second call sees updated statistics
        expected, got = _run(reference, x, upstream, training), _run(ours, x, upstream, training)
        names = ["y", "dx", *(["dgamma", "dbeta"] if affine else []), "moving_mean",
                 "moving_variance"]
        assert len(expected) == len(got) == len(names)
        for name, a, b in zip(names, expected, got):
            assert a.dtype == b.dtype, name
            a, b = tf.cast(a, tf.float32).numpy(), tf.cast(b, tf.float32).numpy()
            # bfloat16 outputs: one rounding of either side (2^-7 of the scale); float32: 1e-5
            scale = max(1.0, float(np.abs(a).max()))
            tolerance = (2 ** -7 if dtype == "bfloat16" and name in ("y", "dx") else 1e-5) * scale
            np.testing.assert_allclose(b, a, atol=tolerance, err_msg=f"{name} at call {step}")
    if training:
        assert not np.allclose(ours.moving_mean.numpy(), 0.0)    # the statistics did move


def test_training_calls_use_the_fused_kernel_with_onednn_and_inference_keras_path():
    layer = conv.batch_norm()
    x = tf.zeros([2, 4, 4, 3])
    layer.build(x.shape)
    for training, fused in ((True, bool(hardware.onednn_enabled())), (False, False)):
        graph = tf.function(lambda v: layer(v, training=training)).get_concrete_function(x).graph
        types = {op.type for op in graph.get_operations()}
        assert ("FusedBatchNormV3" in types) == fused, types


def test_a_5d_training_call_runs_the_fused_kernel_on_its_4d_view():
    # TensorFlow runs only the 4D (NHWC) fused batch norm on oneDNN
    layer = conv.batch_norm()
    x = tf.zeros([2, 3, 4, 4, 5])
    layer.build(x.shape)
    graph = tf.function(lambda v: layer(v, training=True)).get_concrete_function(x).graph
    fused = [op for op in graph.get_operations() if op.type == "FusedBatchNormV3"]
    assert len(fused) == (1 if hardware.onednn_enabled() else 0)
    for op in fused:
        assert op.get_attr("data_format") == b"NHWC" and op.inputs[0].shape.rank == 4
        assert op.outputs[0].shape.as_list() == [6, 4, 4, 5]


def test_checkpoints_are_interchangeable_with_keras_batch_normalization(tmp_path):
    reference, ours = _pair((2, 3, 3, 4), "float32")
    for v in reference.weights:
        v.assign(tf.random.stateless_normal(v.shape, [9, 9]))
    path = tf.train.Checkpoint(bn=reference).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(bn=ours).read(path).assert_consumed()
    for a, b in zip(reference.weights, ours.weights):
        assert a.name == b.name
        np.testing.assert_array_equal(a.numpy(), b.numpy())
