"""MVT-TSA: the multivariate prior, the autoregressive sequence generator, videos kept apart,
hinge losses by hand, D steps on distinct real batches, learning, the motion constraint, and the
num_frames / label_mix endpoints of an exported SavedModel."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_config, tiny_model
from tfvidgen import export, models
from tfvidgen.config import TrainConfig
from tfvidgen.data import pipeline
from tfvidgen.models import mvt_tsa


def _conditional(**params):
    return tiny_config("mvt_tsa", conditional=True, **params)


def _batch(config, real_batches=1):
    return next(iter(pipeline.make_dataset(config.data, config.train.batch_size, 0,
                                           real_batches=real_batches)))


def test_latent_is_scaled_by_the_group_sigmas():
    # Constructed, not built: drawing latents needs no variables.
    model = models.build_model(tiny_config("mvt_tsa", z_a_dim=20, z_b_dim=20, z_c_dim=80), 5)
    z = model.sample_inputs(300, seed=0)["z"]
    scaled = model.generator.scaled_latent(z).numpy()
    stds = [scaled[:, :20].std(), scaled[:, 20:40].std(), scaled[:, 40:].std()]
    np.testing.assert_allclose(stds, [0.5, 1.0, 2.0], rtol=0.05)
    assert abs(scaled.mean()) < 0.05
    plain = models.build_model(tiny_config("mvt_tsa", sigma_a=1.0, sigma_c=1.0), 5)  # MVT
    np.testing.assert_array_equal(plain.generator.scaled_latent(z[:, :8]).numpy(), z[:, :8])


def test_gru_is_autoregressive_from_zero_state_and_runs_past_the_trained_length():
    model = tiny_model(_conditional())
    g = model.generator
    z_abc = g.scaled_latent(model.sample_inputs(2, 0, labels=tf.constant([0, 1]))["z"])
    codes = g.sequence(z_abc, 4).numpy()
    x = g.fc(z_abc)
    state = tf.zeros([2, g.cfg.gru_units])
    for t in range(4):                                      # by hand: o_t feeds step t+1
        out, [state] = g.gru(x, [state])
        x = g.gru_out(out)
        np.testing.assert_allclose(codes[:, t], x.numpy(), rtol=1e-5, atol=1e-6)
    longer = g.sequence(z_abc, tf.constant(7)).numpy()      # the serving while loop
    np.testing.assert_allclose(longer[:, :4], codes, rtol=1e-5, atol=1e-6)
    # The official init leaves every GRU bias at 0: its update-gate branch never matches.
    np.testing.assert_array_equal(g.gru.bias.numpy(), 0.0)
    video = g({**model.sample_inputs(2, 0, labels=tf.constant([0, 1])),
               "num_frames": tf.constant(7)})
    assert video.shape == (2, 7, 16, 16, 3)


def test_videos_of_a_batch_never_mix_and_the_label_conditions_them():
    model = tiny_model(_conditional())
    latents = model.sample_inputs(3, 0, labels=tf.constant([0, 1, 2]))
    base = model.generate(latents).numpy()
    changed = dict(latents, z=tf.tensor_scatter_nd_update(latents["z"], [[1]],
                                                          latents["z"][2:3] + 1.0))
    out = model.generate(changed).numpy()
    assert np.array_equal(out[0], base[0]) and np.array_equal(out[2], base[2])
    assert not np.allclose(out[1], base[1])
    relabelled = model.generate(dict(latents, label=tf.constant([3, 1, 2]))).numpy()
    assert not np.allclose(relabelled[0], base[0]) and np.array_equal(relabelled[1], base[1])


def test_hinge_losses_by_hand(monkeypatch):
    config = _conditional()
    model = tiny_model(config)
    batch = _batch(config)
    real_v, real_i = tf.constant([0.5, -2.0, 1.5, 0.0]), tf.constant([2.0, 0.2, -0.4, 0.9] * 2)
    fake_v, fake_i = tf.constant([-0.5, 0.3, -3.0, 1.0]), tf.constant([0.1, -1.2, 0.0, 2.0] * 2)
    calls = []

    def logits(videos, seeds, salt, labels, **mode):
        calls.append(mode)
        return (real_v, real_i, None) if videos is batch["video"] else (fake_v, fake_i, None)

    monkeypatch.setattr(model, "_logits", logits)
    d_total, d_logs = model.discriminator_losses(batch, {})
    hinge = lambda r, f: np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f))
    np.testing.assert_allclose(float(d_logs["d_adv_video"]), hinge(real_v, fake_v), rtol=1e-6)
    np.testing.assert_allclose(float(d_total), hinge(real_v, fake_v) + hinge(real_i, fake_i),
                               rtol=1e-6)
    g_total, _ = model.generator_losses(batch, {})
    np.testing.assert_allclose(float(g_total), -np.mean(fake_v) - np.mean(fake_i), rtol=1e-6)
    assert calls[-1] == {"training": False, "batch_stats": True}


def test_auxiliary_classifier_losses_by_hand_and_its_weights_learn(monkeypatch):
    config = _conditional(aux_classifier_weight=0.5)
    model = tiny_model(config)
    batch = _batch(config)
    k = model.cfg.num_classes
    logits_v, logits_i = tf.constant([0.5, -2.0, 1.5, 0.0]), tf.constant([0.3] * 8)
    classes = tf.random.stateless_normal([4, k], [3, 4])

    def ce(class_logits, labels):
        p = tf.nn.softmax(class_logits).numpy()
        return -np.mean(np.log(p[np.arange(len(labels)), np.asarray(labels)]))

    monkeypatch.setattr(model, "_logits", lambda *a, **kw: (logits_v, logits_i, classes))
    hinge = lambda r, f: np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f))
    d_total, d_logs = model.discriminator_losses(batch, {})
    real_ce = ce(classes, batch["label"].numpy())                 # D learns from real labels
    np.testing.assert_allclose(float(d_logs["d_aux_class"]), real_ce, rtol=1e-5)
    np.testing.assert_allclose(float(d_total), hinge(logits_v, logits_v)
                               + hinge(logits_i, logits_i) + 0.5 * real_ce, rtol=1e-5)
    g_total, g_logs = model.generator_losses(batch, {})
    requested = model.fake_latents(batch["seed"], mvt_tsa._SALT_G_Z,
                                   mvt_tsa._SALT_G_LABEL)["label"].numpy()
    fake_ce = ce(classes, requested)                              # G: the requested class
    np.testing.assert_allclose(float(g_logs["g_aux_class"]), fake_ce, rtol=1e-5)
    np.testing.assert_allclose(float(g_total), -np.mean(logits_v) - np.mean(logits_i)
                               + 0.5 * fake_ce, rtol=1e-5)
    monkeypatch.undo()

    classifier = model.video_discriminator.head.classifier
    before = classifier.kernel.numpy().copy()
    logs = model.train_step(batch)
    assert {"d_aux_class", "g_aux_class"} <= set(logs)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert not np.array_equal(before, classifier.kernel.numpy())
    assert tiny_model(_conditional()).video_discriminator.head.classifier is None   # paper: none


def test_each_discriminator_step_reads_its_own_real_batch(monkeypatch):
    config = _conditional(d_steps=2)
    model = tiny_model(config)
    assert model.real_batches_per_step() == 2
    assert model.phases(0) == ("d_step", "d_step", "g_main")
    batch = _batch(config, real_batches=2)
    assert batch["video"].shape[:2] == (2, config.train.batch_size)
    seen = []
    original = model.discriminator_losses

    def recording(real, context):
        seen.append(real["seed"].numpy())
        return original(real, context)

    monkeypatch.setattr(model, "discriminator_losses", recording)
    logs = model.train_step(batch)
    assert len(seen) == 2 and all(np.isfinite(float(v)) for v in logs.values())
    np.testing.assert_array_equal(seen[0], batch["seed"][0].numpy())
    np.testing.assert_array_equal(seen[1], batch["seed"][1].numpy())
    assert not np.intersect1d(seen[0][:, 1], seen[1][:, 1]).size        # disjoint examples
    assert int(model.optimizers["d_optimizer"].iterations) == 2
    assert int(model.optimizers["g_optimizer"].iterations) == 1


def test_training_moves_both_players_and_the_discriminator_learns():
    # Rates 10x the tests' default, so 8 steps show learning.
    config = _conditional().replace(train={"d_lr": 2e-3, "g_lr": 1e-3})
    model = tiny_model(config)
    batches = list(pipeline.make_dataset(config.data, 4, 0).take(2))
    step = tf.function(lambda b: model.train_step(b))
    g_before = [v.numpy().copy() for v in model.generator.trainable_variables]
    logs = [step(batches[i % 2]) for i in range(8)]
    assert not all(np.array_equal(b, v.numpy())
                   for b, v in zip(g_before, model.generator.trainable_variables))
    # Each hinge D loss starts near 2 (logits near 0): 4 for D_Video + D_Image. Measured: 4.4
    # at the first step, 2.2 averaged over steps 7-8 (both batches).
    first, last = logs[0], logs[-2:]
    assert float(first["d_total"]) > 3.5
    assert np.mean([float(l["d_total"]) for l in last]) < float(first["d_total"]) - 1.0
    assert len({round(float(l["g_total"]), 6) for l in logs}) > 1


def test_motion_similarity_by_hand():
    fake = tf.constant([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    real = tf.constant([[3.0, 0.0], [1.0, 1.0]])
    fake_labels, real_labels = tf.constant([0, 0, 1]), tf.constant([0, 1])
    # matching pairs: (0, 0): cos 1; (1, 0): cos 0; (2, 1): cos 1 -> mean 2 / 3
    np.testing.assert_allclose(float(mvt_tsa.motion_similarity(fake, real, fake_labels,
                                                               real_labels)), 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(float(mvt_tsa.motion_similarity(real, real)), (2 + 2 ** -0.5 * 2)
                               / 4, rtol=1e-6)
    assert float(mvt_tsa.motion_similarity(fake, real, tf.constant([2, 2, 2]), real_labels)) == 0


def test_motion_constraint_is_zero_for_identical_flows_and_its_gradient_reaches_g():
    config = _conditional(motion_weight=1.0, flow_levels=2, flow_iterations=5)
    model = tiny_model(config)
    batch = _batch(config)
    same = tf.repeat(batch["video"][:1], 4, axis=0)        # every pair: identical flows
    flows = mvt_tsa.video_flows(same, 2, 5)
    assert flows.shape == (4, 3 * 16 * 16 * 2)
    labels = batch["label"]
    np.testing.assert_allclose(1.0 - float(mvt_tsa.motion_similarity(flows, flows, labels,
                                                                      labels)), 0.0, atol=1e-6)
    with tf.GradientTape() as tape:
        total, logs = model.generator_losses(batch, {})
        motion_term = 1.0 - logs["g_motion_similarity"]
    grads = tape.gradient(motion_term, model.generator.trainable_variables)
    norms = [float(tf.norm(g)) for g in grads if g is not None]
    assert norms and all(np.isfinite(norms)) and max(norms) > 0
    with_motion = float(total)
    plain = float(logs["g_adv_video"] + logs["g_adv_image"])
    np.testing.assert_allclose(with_motion - plain, float(motion_term), rtol=1e-5, atol=1e-6)


def _generator_gradients(g, variables_of):
    """|Gradients| of mean(video * fixed noise) (training forward) w.r.t. variables_of(g)."""
    cfg = g.cfg
    rng = np.random.default_rng(0)
    latents = {"z": tf.constant(rng.normal(size=(4, cfg.z_dim)), tf.float32),
               "label": tf.constant([0, 1, 2, 3])}
    g(latents, training=True)
    weights = tf.constant(rng.normal(size=(4, cfg.num_frames, cfg.resolution, cfg.resolution,
                                           3)), tf.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(g(latents, training=True) * weights)
    return [np.abs(x.numpy()) for x in tape.gradient(loss, variables_of(g))]


def test_biases_a_temporal_shift_reads_exist_and_learn():
    """A per-channel constant shifted in time is not removed by the next BN (zero padding at the
    clip borders), so the official code's biases in front of a shift are kept, with gradients
    far above round-off (measured ~1e-4 against ~1e-9 for a bias feeding a BN directly)."""
    cfg = mvt_tsa.MVTConfig(resolution=16, num_frames=4, num_classes=5, g_channels=2,
                            z_a_dim=2, z_b_dim=2, z_c_dim=4, gru_units=8, class_dim=4,
                            attention_resolution=8, temporal_blocks=2).validate()
    g = mvt_tsa.MVTGenerator(cfg)
    g({"z": tf.zeros([1, cfg.z_dim]), "label": tf.zeros([1], tf.int32)})
    kept = lambda g: [g.fc0.bias, g.blocks[0].conv2.bias, g.blocks[0].skip.bias]
    assert all(b is not None for b in kept(g))
    fc0, conv2, skip = _generator_gradients(g, kept)
    assert fc0.max() > 1e-6 and conv2.max() > 1e-6 and skip.max() > 1e-6
    fold = 16 // 3                          # block 1 shifts 2 folds of block 0's 16 channels
    assert conv2[:2 * fold].min() > 1e-8    # every shifted channel learns
    # No shift reads block 1's output (G's last BN follows) and every conv1 feeds a BN: none.
    assert all(b.conv1.bias is None for b in g.blocks)
    assert g.blocks[1].conv2.bias is None and g.blocks[1].skip.bias is None
    plain = mvt_tsa.MVTGenerator(dataclasses.replace(cfg, temporal_blocks=0))
    assert not plain.blocks[0].conv2.use_bias and plain.fc0.use_bias      # fc0: per position


def test_attention_is_built_at_the_nearest_feature_map_at_96():
    """At 96 (3 x 3 start) G's maps are 6, 12, 24, 48, 96 and D_Image's 48, 24, 12, 6, 3, 3:
    the default attention_resolution=32 maps to 24 x 24, after the block where the official
    128 layout has it (G's third, D_Image's second). Built directly: the config-level
    resolution check is not the model's."""
    cfg = mvt_tsa.MVTConfig(resolution=96, num_frames=4, num_classes=5, g_channels=1,
                            d_channels=1, z_a_dim=2, z_b_dim=2, z_c_dim=4, gru_units=8,
                            class_dim=4, image_frames=2).validate()
    model = mvt_tsa.MVTTSA(cfg, TrainConfig(batch_size=2))
    model.compile()
    g, d = model.generator, model.image_discriminator
    assert g.attention is not None and d.attention is not None
    assert cfg.generator_sizes() == [6, 12, 24, 48, 96]
    assert cfg.image_discriminator_sizes() == [48, 24, 12, 6, 3, 3]
    assert cfg.attention_blocks() == (2, 1)
    seen = {}
    for name, layer in (("g", g.attention), ("d", d.attention)):
        original = layer.call
        layer.call = lambda x, training=None, name=name, original=original: (
            seen.__setitem__(name, tuple(x.shape[1:3])) or original(x, training=training))
    latents = model.sample_inputs(2, 0, labels=tf.constant([0, 4]))
    video = model.generate(latents)
    assert video.shape == (2, 4, 96, 96, 3)
    d(video[:, 0], latents["label"])
    assert seen == {"g": (24, 24), "d": (24, 24)}
    batch = {"video": video, "label": latents["label"],
             "seed": tf.constant([[0, 0], [0, 1]], tf.int64)}
    logs = model.train_step(batch)
    assert all(np.isfinite(float(v)) for v in logs.values())
    # Powers of two keep the exact size: 32 x 32 at 64 and 128.
    assert mvt_tsa.MVTConfig(resolution=64, conditional=False).attention_blocks() == (2, 0)
    assert mvt_tsa.MVTConfig(resolution=128, conditional=False).attention_blocks() == (2, 1)


def test_an_attention_resolution_with_no_nearby_feature_map_is_refused():
    with pytest.raises(ValueError, match="attention_resolution=256: G's feature maps at "
                                         "resolution 64 are 8, 16, 32, 64"):
        mvt_tsa.MVTConfig(resolution=64, conditional=False, attention_resolution=256).validate()
    with pytest.raises(ValueError, match="attention_resolution=-1"):
        mvt_tsa.MVTConfig(conditional=False, attention_resolution=-1).validate()
    off = mvt_tsa.MVTConfig(resolution=96, conditional=False, attention_resolution=0).validate()
    assert off.attention_blocks() == (-1, -1)


def test_image_discriminator_skips_are_the_official_ones():
    """A learned 1x1 skip where a block downsamples or changes width; at 128 the last block
    (16ch -> 16ch, no downsampling) adds its input unchanged, as the official forward does."""
    def skips(resolution):
        cfg = mvt_tsa.MVTConfig(resolution=resolution, conditional=False, d_channels=1)
        return [b.skip is not None for b in mvt_tsa.MVTImageDiscriminator(cfg.validate()).blocks]
    assert skips(128) == [True] * 5 + [False]
    assert skips(64) == [True] * 5              # 64's last block widens 8ch -> 16ch: a conv


def test_invalid_params_name_the_flag():
    with pytest.raises(ValueError, match="temporal_blocks"):
        tiny_model(tiny_config("mvt_tsa", temporal_blocks=5))
    with pytest.raises(ValueError, match="conditional=true"):
        tiny_model(_conditional(), num_classes=1)
    with pytest.raises(ValueError, match="aux_classifier_weight=-1"):
        tiny_model(_conditional(aux_classifier_weight=-1.0))
    with pytest.raises(ValueError, match="aux_classifier_weight > 0 needs conditional=true"):
        tiny_model(tiny_config("mvt_tsa", conditional=False, aux_classifier_weight=1.0))
    with pytest.raises(ValueError, match="--resolution=40"):
        mvt_tsa.MVTConfig(resolution=40, conditional=False).validate()
    assert mvt_tsa.MVTConfig(resolution=96, conditional=False).validate().num_blocks == 5      # 3x3 start (paper)


def test_exported_sample_frames_and_label_mix_endpoints(tmp_path):
    model = tiny_model(_conditional())
    path = export.export_model(model, {"model": "mvt_tsa"}, str(tmp_path / "export"))
    loaded = tf.saved_model.load(path)
    signatures = loaded.signatures
    assert {"serving_default", "sample", "latents", "sample_frames", "label_mix"} <= set(signatures)
    latents = model.sample_inputs(2, 5, labels=tf.constant([1, 3]))
    z, label = latents["z"], latents["label"]
    plain = signatures["serving_default"](z=z, label=label)["video"].numpy()
    np.testing.assert_array_equal(plain, base_video(model, latents))
    seed, label_args = tf.constant([5, 6], tf.int64), dict(label=label)
    longer = signatures["sample_frames"](seed=seed, num_frames=tf.constant(9), **label_args)
    assert longer["video"].dtype == tf.uint8 and longer["video"].shape == (2, 9, 16, 16, 3)
    # The in-process video of the same length and latents (the GRU runs past the trained one).
    np.testing.assert_array_equal(
        longer["video"].numpy(), base_video(model, latents, num_frames=9))
    other = tf.constant([4, 0])
    mix = signatures["label_mix"]
    for weight, expected_label in ((0.0, label), (1.0, other)):
        out = mix(z=z, label=label, label_b=other,
                  label_weight=tf.fill([2], weight))["video"].numpy()
        np.testing.assert_array_equal(out, signatures["serving_default"](
            z=z, label=expected_label)["video"].numpy())
    halfway = mix(z=z, label=label, label_b=other, label_weight=tf.fill([2], 0.5))["video"]
    assert not np.array_equal(halfway.numpy(), plain)
    frames = signatures["sample_frames"]
    bad = [(frames, dict(seed=seed, label=label, num_frames=tf.constant(0)),
            "num_frames must be in"),
           (frames, dict(seed=seed, label=label, num_frames=tf.constant([4, 4])),
            "num_frames must have shape"),
           (mix, dict(z=z, label=label, label_b=other, label_weight=tf.fill([2], 1.5)),
            "label_weight must"),
           (mix, dict(z=z, label=label, label_b=other, label_weight=tf.fill([2], -0.5)),
            "label_weight must"),
           (mix, dict(z=z, label=label, label_b=tf.constant([5, 0]), label_weight=tf.zeros([2])),
            "label_b must be in")]
    for fn, kwargs, message in bad:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            fn(**kwargs)


def base_video(model, latents, num_frames=None):
    from tfvidgen.models import serving
    return serving.video_output(model.generate(latents, num_frames=num_frames))["video"].numpy()


def test_official_ucf128_configuration_parameter_counts():
    """configs/mvt_tsa_ucf128.cfg against the official code's parameter counts (counted from its
    models.py at ch 64, 101 classes): exactly those, less what is deliberately not built."""
    cfg = mvt_tsa.MVTConfig(resolution=128, num_frames=16, num_classes=101, g_channels=64,
                            d_channels=64).validate()
    g = mvt_tsa.MVTGenerator(cfg)
    g({"z": tf.zeros([1, 120]), "label": tf.zeros([1], tf.int32), "num_frames": tf.constant(1)})
    count = lambda layers: sum(int(np.prod(v.shape)) for l in layers
                               for v in l.trainable_variables)
    gru = count([g.fc, g.gru, g.gru_out])
    frames = count([g]) - gru
    image_d = mvt_tsa.MVTImageDiscriminator(cfg)
    image_d(tf.zeros([1, 64, 64, 3]), tf.zeros([1], tf.int32))    # weights: any even size
    video_d = mvt_tsa.MVTVideoDiscriminator(cfg)
    video_d(tf.zeros([1, 16, 16, 16, 3]), tf.zeros([1], tf.int32))
    measured = {"g": frames, "gru": gru, "image_d": count([image_d]),
                "video_d": count([video_d])}
    official = {"g": 36_445_724, "gru": 13_592_880, "image_d": 39_592_866,
                "video_d": 11_076_353}
    not_built = {
        # Biases only round-off reaches (module docstring): every block's conv1 (1024 + 512 +
        # 256 + 128 + 64) and conv2 + skip of blocks 1-4 (whose output no shift reads).
        "g": (1024 + 512 + 256 + 128 + 64) + 2 * (512 + 256 + 128 + 64),
        # The last block's 1x1 skip conv (1024 x 1024 + bias): built, never called by the code.
        "image_d": 1024 * 1024 + 1024}
    assert measured == {k: v - not_built.get(k, 0) for k, v in official.items()}


def test_image_discriminator_frames_are_uniform_with_replacement_and_keep_their_video():
    seeds = tf.stack([tf.zeros([500], tf.int64), tf.range(500, dtype=tf.int64)], axis=1)
    videos = tf.broadcast_to(tf.reshape(tf.range(500 * 4, dtype=tf.float32), [500, 4, 1, 1, 1]),
                             [500, 4, 2, 2, 1])
    frames, index = mvt_tsa.sampled_frames(videos, seeds, 15, 8)
    index = index.numpy()
    counts = np.bincount(index.ravel(), minlength=4) / index.size
    np.testing.assert_allclose(counts, 0.25, atol=0.02)                 # uniform over T = 4
    assert any(len(set(row)) < 8 for row in index)                      # with replacement
    values = frames.numpy()[:, 0, 0, 0].reshape(500, 8)
    np.testing.assert_array_equal(values, np.arange(500)[:, None] * 4 + index)
