"""G3AN: architecture shapes at paper and tiny size, ablations, conditioning, and update isolation."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_config, tiny_model
from tfvidgen.config import TrainConfig
from tfvidgen.data import pipeline
from tfvidgen.models import g3an


def _batch(config, size=4, seed=0):
    return next(iter(pipeline.make_dataset(config.data, size, seed)))


def test_paper_size_module_plan_matches_the_spec_table():
    cfg = g3an.G3ANConfig().validate()
    plan = g3an._module_plan(cfg)
    assert [p["channels"] for p in plan] == [512, 512, 256, 128, 64]
    assert [p["temporal"] for p in plan] == [(4, 1), (4, 2), (4, 2), (1, 1), (1, 1)]
    assert cfg.attention_index == 3                           # F-SA after G3_3
    assert g3an._temporal_kernels(16, 5) == [4, 4, 4, 4, 4]   # code D_V: 16->13->10->7->4->1


def test_generator_shapes_and_range_at_64x64x16():
    cfg = g3an.G3ANConfig(base_channels=2, z_appearance=8, z_motion=4)
    gen = g3an.G3ANGenerator(cfg)
    z = {"z_appearance": tf.random.normal([2, 8]), "z_motion": tf.random.normal([2, 4])}
    video = gen(z, training=True).numpy()
    assert video.shape == (2, 16, 64, 64, 3)
    assert np.abs(video).max() <= 1.0 and video.std() > 0
    for kind in ("3d", "2+1"):
        d_v = g3an.G3ANVideoDiscriminator(g3an.G3ANConfig(d_channels=2, video_discriminator=kind))
        assert d_v(tf.constant(video)).shape == (2,)
    d_i = g3an.G3ANImageDiscriminator(g3an.G3ANConfig(d_channels=2))
    assert d_i(tf.constant(video[:, 0])).shape == (2,)


@pytest.mark.parametrize("params", [
    {"spatial_stream": False}, {"temporal_stream": False}, {"attention": False},
    {"spatial_stream": False, "temporal_stream": False, "attention": False},
    {"attention_after": 0}, {"video_conv": "2+1"}, {"video_conv": "3d"},
    {"video_discriminator": "2+1"}, {"g_spectral_norm": True}])
def test_ablations_build_and_train(params):
    """Each ablation trains, and takes effect: with the same initialiser seed, the built
    networks (variable names and shapes) or the video differ from the default model's."""
    keras.utils.set_random_seed(0)
    default = tiny_model(tiny_config())
    keras.utils.set_random_seed(0)
    config = tiny_config(**params)
    model = tiny_model(config)
    video = model.generate(model.sample_inputs(2, 0)).numpy()
    assert video.shape == (2, 4, 16, 16, 3)
    assert (_architecture(model) != _architecture(default)
            or not np.allclose(video, default.generate(default.sample_inputs(2, 0)).numpy()))
    logs = model.train_step(_batch(config))
    assert all(np.isfinite(float(v)) for v in logs.values())


def _architecture(model) -> list:
    """(path without Keras' instance-count suffixes, shape) of every variable, in order."""
    return [(re.sub(r"_\d+(?=/|$)", "", v.path), tuple(v.shape)) for v in model.variables]


def test_streams_disentangle_inputs():
    model = tiny_model()
    base = model.sample_inputs(2, 0)
    other = model.sample_inputs(2, 1)
    same_a = dict(base, z_motion=other["z_motion"])
    v0, v1 = (model.generate(z).numpy() for z in (base, same_a))
    assert not np.allclose(v0, v1)               # z_m changes the video
    no_temporal = tiny_model(tiny_config(temporal_stream=False))
    # Without G_T the motion latent still enters through the video stream input.
    assert not np.allclose(no_temporal.generate(base).numpy(), no_temporal.generate(same_a).numpy())


def test_conditional_label_changes_the_video_and_discriminators_see_it():
    config = tiny_config(conditional=True)
    model = tiny_model(config)
    z = model.sample_inputs(2, 0, labels=tf.constant([0, 0]))
    z_other = dict(z, label=tf.constant([3, 3]))
    assert not np.allclose(model.generate(z).numpy(), model.generate(z_other).numpy())
    video = model.generate(z)
    assert not np.allclose(model.video_discriminator(video, z["label"]).numpy(),
                           model.video_discriminator(video, z_other["label"]).numpy())
    with pytest.raises(ValueError, match="needs labels"):
        model.sample_inputs(2, 0)


def _values(variables):
    return [v.numpy().copy() for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def test_discriminator_update_leaves_generator_untouched_and_vice_versa():
    config = tiny_config()
    model = tiny_model(config)
    batch = _batch(config)
    latents = model.latents_for_batch(batch)
    fakes = model.generator(latents, training=True)
    g_before, d_before = _values(model.generator.variables), _values(
        model.video_discriminator.variables + model.image_discriminator.variables)
    model.run_phase("d_main", batch, {"latents": latents, "detached": fakes})
    assert not any(_changed(g_before, model.generator.variables))
    assert all(_changed(d_before[:2], model.optimizer_variables("d_optimizer")[:2]))

    d_all = model.video_discriminator.variables + model.image_discriminator.variables
    d_before = _values(d_all)
    g_trainable = _values(model.generator.trainable_variables)
    model.train_step(batch, phases=("g_main",))              # the G path of train_step
    assert not any(_changed(d_before, d_all))                  # incl. spectral-norm vectors
    # Every G weight moves, except F-SA's q/k/v: their output is scaled by gamma, which starts at 0.
    for variable, changed in zip(model.generator.trainable_variables,
                                 _changed(g_trainable, model.generator.trainable_variables)):
        frozen_by_gamma = "f_sa" in variable.path and not variable.path.endswith("gamma")
        assert changed != frozen_by_gamma, variable.path


def test_discriminator_loss_decreases_on_a_fixed_batch():
    config = tiny_config()
    model = tiny_model(config)
    batch = _batch(config)
    latents = model.latents_for_batch(batch)
    fakes = model.generator(latents, training=False)
    step = tf.function(lambda: model.run_phase("d_main", batch,
                                               {"latents": latents, "detached": fakes}))
    losses = [float(step()["d_total"]) for _ in range(8)]
    # Decrease measured 0.035-0.090 over 8 seeds, identical with oneDNN on and off.
    assert losses[-1] < losses[0] - 0.01, losses


def test_train_step_changes_both_players_and_ema_tracks():
    config = tiny_config()
    model = g3an.G3AN(g3an.G3ANConfig(**config.model_params, resolution=16, num_frames=4,
                                      num_classes=5), TrainConfig(ema_decay=0.5))
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    ema_before = _values(model.ema_generator.trainable_variables)
    np.testing.assert_array_equal(ema_before[0], model.generator.trainable_variables[0].numpy())
    g_before = _values(model.generator.trainable_variables)
    d_before = _values(model.optimizer_variables("d_optimizer"))
    logs = model.train_step(_batch(config))
    assert {"d_total", "d_adv_video", "d_adv_image", "d_real_video", "d_fake_video",
            "g_total", "g_adv_video", "g_adv_image"} <= set(logs)
    assert any(_changed(g_before, model.generator.trainable_variables))
    assert any(_changed(d_before, model.optimizer_variables("d_optimizer")))
    model.update_ema()
    g_now = model.generator.trainable_variables[0].numpy()
    np.testing.assert_allclose(model.ema_generator.trainable_variables[0].numpy(),
                               0.5 * ema_before[0] + 0.5 * g_now, rtol=1e-5, atol=1e-7)


def test_invalid_sizes_name_the_flag():
    with pytest.raises(ValueError, match="--num_frames=6"):
        g3an.G3ANConfig(num_frames=6).validate()
    with pytest.raises(ValueError, match="--num_frames=32"):
        g3an.G3ANConfig(resolution=16, num_frames=32).validate()
    with pytest.raises(ValueError, match="video_conv"):
        g3an.G3ANConfig(video_conv="4d").validate()


def _reference_step(model, batch):
    """The schedule of G3AN before contract v2, written out with raw tapes: one G forward, the D
    update on the detached fakes, the G update on the same fakes through the updated D."""
    g_opt, d_opt = model.optimizers["g_optimizer"], model.optimizers["d_optimizer"]
    d_vars = (model.video_discriminator.trainable_variables
              + model.image_discriminator.trainable_variables)
    g_vars = model.generator.trainable_variables
    latents = model.latents_for_batch(batch)
    with tf.GradientTape() as g_tape:
        fakes = model.generator(latents, training=True)
    with tf.GradientTape() as d_tape:
        d_total, _ = model.discriminator_losses(
            batch, {"latents": latents, "detached": tf.stop_gradient(fakes)})
        d_total = d_total / tf.distribute.get_strategy().num_replicas_in_sync
    d_opt.apply_gradients(zip(d_tape.gradient(d_total, d_vars), d_vars))
    with g_tape:
        g_total, _ = model.generator_losses(batch, {"latents": latents, "fakes": fakes})
        g_total = g_total / tf.distribute.get_strategy().num_replicas_in_sync
    g_opt.apply_gradients(zip(g_tape.gradient(g_total, g_vars), g_vars))


@pytest.mark.parametrize("conditional", [False, True])
def test_phases_reproduce_the_pre_contract_schedule_exactly(conditional):
    """Behaviour preservation of the contract-v2 port: train_step (phases d_main, g_main sharing
    one G forward) gives bitwise the weights and Adam state of the old schedule. (The same holds
    through train_lib.run: tools/g3an_fingerprint.py, bitwise equal before/after the port.)"""
    config = tiny_config(conditional=conditional)
    batches = list(pipeline.make_dataset(config.data, 4, 0).take(2))
    keras.utils.set_random_seed(3)
    ported = tiny_model(config)
    keras.utils.set_random_seed(3)
    reference = tiny_model(config)
    for batch in batches:
        ported.train_step(batch, ported.phases(0))
        _reference_step(reference, batch)
    state = lambda m: m.variables + [v for o in m.optimizers.values() for v in o.variables]
    for a, b in zip(state(ported), state(reference)):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert ported.phases(0) == ported.phases(1) == ("d_main", "g_main")


def test_ema_statistics_are_recalibrated_to_the_averaged_weights():
    """The EMA copy's BN statistics copied from the source describe other weights; after
    recalibration, inference-mode samples match batch-statistics samples of the same weights."""
    config = tiny_config()
    model = g3an.G3AN(g3an.G3ANConfig(**config.model_params, resolution=16, num_frames=4,
                                      num_classes=5), TrainConfig(ema_decay=0.5))
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    model.train_step(_batch(config))
    model.update_ema()
    for v in model.ema_generator.trainable_variables:     # averaged weights far from the source
        v.assign(v * 2.0)
    latents = model.sample_inputs(64, 123)

    def gap():
        inference = model.ema_generator(latents, training=False).numpy()
        return np.abs(inference - model.ema_generator(latents, training=True).numpy()).mean()

    source_means = [bn.moving_mean.numpy() for bn in model.ema_batch_norms()]
    before = gap()       # (this training-mode call moved the statistics by 10% only)
    assert len(model.ema_batch_norms()) > 0 and model.recalibrate_ema_statistics()
    after = gap()
    assert after < 0.25 * before, (before, after)
    assert any(not np.allclose(m, bn.moving_mean.numpy())
               for m, bn in zip(source_means, model.ema_batch_norms()))
    trained = _values(model.generator.weights)
    model.recalibrate_ema_statistics()
    assert not any(_changed(trained, model.generator.weights))   # the source is untouched


def test_without_ema_there_is_nothing_to_recalibrate():
    config = tiny_config()
    model = g3an.G3AN(g3an.G3ANConfig(**config.model_params, resolution=16, num_frames=4,
                                      num_classes=5), TrainConfig())
    assert model.ema_batch_norms() == [] and not model.recalibrate_ema_statistics()


def test_r1_penalty_is_added_to_the_discriminator_loss_and_changes_its_update():
    batch = _batch(tiny_config())
    results = {}
    for gamma in (0.0, 10.0):
        keras.utils.set_random_seed(0)
        config = tiny_config(r1_gamma=gamma)
        model = tiny_model(config)
        latents = model.latents_for_batch(batch)
        fakes = model.generator(latents, training=False)
        _, logs = model.discriminator_losses(batch, {"latents": latents, "detached": fakes})
        before = [v.numpy() for v in model.image_discriminator.trainable_variables]
        model.run_phase("d_main", batch, {"latents": latents, "detached": fakes})
        moved = model.image_discriminator.trainable_variables[0].numpy() - before[0]
        results[gamma] = (logs, moved)
    logs, _ = results[10.0]
    assert float(logs["d_r1_video"]) > 0 and float(logs["d_r1_image"]) > 0
    expected = float(logs["d_adv_video"] + logs["d_adv_image"]
                     + 5.0 * (logs["d_r1_video"] + logs["d_r1_image"]))
    np.testing.assert_allclose(float(logs["d_total"]), expected, rtol=1e-5)
    assert "d_r1_video" not in results[0.0][0]
    assert np.abs(results[10.0][1] - results[0.0][1]).max() > 1e-6
    with pytest.raises(ValueError, match="r1_gamma"):
        g3an.G3ANConfig(r1_gamma=-1.0).validate()
