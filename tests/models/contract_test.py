"""Every registered model honours the VideoGAN contract (parameterised over MODELS)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_config, tiny_model
from tfvidgen import models, train_lib
from tfvidgen.data import pipeline


@pytest.fixture(params=sorted(models.MODELS))
def key(request):
    return request.param


def _batches(config, n):
    return list(pipeline.make_dataset(config.data, config.train.batch_size, 0).take(n))


def test_generate_shape_dtype_range_and_reproducible_sampling(key):
    model = tiny_model(tiny_config(key))
    video = model.generate(model.sample_inputs(3, seed=7)).numpy()
    assert video.shape == (3, 4, 16, 16, 3) and video.dtype == np.float32
    assert np.abs(video).max() <= 1.0
    np.testing.assert_array_equal(model.generate(model.sample_inputs(3, seed=7)).numpy(), video)
    assert not np.allclose(model.generate(model.sample_inputs(3, seed=8)).numpy(), video)
    assert set(model.sample_inputs(1, 0)) == set(model.latent_specs())
    # Sampling, serving and evaluation read these two fields of every model's cfg.
    assert model.cfg.conditional is False and model.cfg.num_classes == 5


def test_model_params_are_strict(key):
    with pytest.raises(ValueError, match="not a .* parameter; valid:"):
        models.parse_model_params(key, ["no_such_param=1"])
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        models.parse_model_params(key, ["missing_equals"])


def test_generator_config_round_trip(key):
    model = tiny_model(tiny_config(key))
    clone = type(model.generator).from_config(model.generator.get_config())
    assert clone.get_config() == model.generator.get_config()


def test_checkpoint_restores_weights_and_optimizer_slots_and_resumes_identically(key, tmp_path):
    config = tiny_config(key)
    first, second = _batches(config, 2)
    keras.utils.set_random_seed(1)
    a = tiny_model(config)
    a.train_step(first)
    step = tf.Variable(1, dtype=tf.int64)
    path = train_lib.make_checkpoint(a, step, a.g_optimizer, a.d_optimizer).save(
        str(tmp_path / "ckpt"))
    stored = {name for name, _ in tf.train.list_variables(path)}
    assert len(stored) >= len(a.variables) + len(a.g_optimizer.variables) \
        + len(a.d_optimizer.variables)
    saved = [v.numpy().copy() for v in a.variables + a.g_optimizer.variables
             + a.d_optimizer.variables]
    a.train_step(second)

    keras.utils.set_random_seed(2)                 # a different initialisation, then restore
    b = tiny_model(config)
    train_lib.make_checkpoint(b, tf.Variable(0, dtype=tf.int64), b.g_optimizer,
                              b.d_optimizer).restore(path).assert_consumed()
    restored = [v.numpy() for v in b.variables + b.g_optimizer.variables + b.d_optimizer.variables]
    assert len(restored) == len(saved)
    for s, r in zip(saved, restored):
        np.testing.assert_array_equal(s, r)        # weights, BN/SN state, Adam slots, iterations
    assert int(b.g_optimizer.iterations) == 1 and int(b.d_optimizer.iterations) == 1
    b.train_step(second)                           # the next step as if never stopped
    for va, vb in zip(a.variables, b.variables):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=1e-6, atol=1e-7)
