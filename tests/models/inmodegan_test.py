"""InMoDeGAN: the motion bank (orthonormal directions, gradients through the SVD), the latent
path's closed form, direction deactivation, lazy R1 schedule and scaling, training moves the
losses, variable length, and the `sample_frames` / `steer` endpoints through an export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_config, tiny_model
from tfvidgen import export
from tfvidgen.data import pipeline
from tfvidgen.layers import noise, tpd
from tfvidgen.models import inmodegan


def _batch(config, size=4, seed=0):
    return next(iter(pipeline.make_dataset(config.data, size, seed)))


@pytest.fixture(scope="module")
def model():
    return tiny_model(tiny_config("inmodegan"))


def test_paper_defaults_and_validation():
    cfg = inmodegan.InMoDeGANConfig().validate()
    assert (cfg.z_appearance, cfg.z_motion, cfg.w_dim, cfg.num_directions) == (512, 256, 512, 512)
    assert cfg.speed_list == (1, 3, 5, 7) and cfg.tpd_weight == 0.5
    assert [len(tpd.frames_at_speed(16, s)) * 3 for s in cfg.speed_list] == [48, 18, 12, 9]
    for bad in ({"speeds": "1,16"}, {"speeds": "a"}, {"num_directions": 513}, {"noise": "x"}):
        with pytest.raises(ValueError, match="--model_param"):
            inmodegan.InMoDeGANConfig(**bad).validate()


def test_directions_are_orthonormal_and_gradients_reach_the_motion_bank(model):
    gen = model.generator
    d = gen.directions().numpy()
    assert d.shape == (8, 8)
    np.testing.assert_allclose(d @ d.T, np.eye(8), atol=1e-5)
    # Rows are the right singular vectors of M in descending singular-value order.
    m = gen.motion_bank.matrix.numpy()
    norms = np.linalg.norm(m @ d.T, axis=0)                        # = singular values
    assert np.all(np.diff(norms) <= 1e-5)
    latents = model.sample_inputs(2, 0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(gen(latents)))
    grad = tape.gradient(loss, gen.motion_bank.matrix)
    assert np.all(np.isfinite(grad.numpy())) and np.abs(grad.numpy()).max() > 0


def _raw_directions(matrix):
    return tf.transpose(tf.linalg.svd(matrix, full_matrices=False)[2]).numpy()


def test_direction_signs_survive_an_adam_sized_update_of_the_motion_bank():
    """tf.linalg.svd picks each singular vector's sign per call: one Adam step at the paper's
    rate (+-0.002 per entry of a 512 x 512 M) reverses some raw directions. The bank's
    directions follow the reference its last training forward stored: none reverses."""
    rng = np.random.default_rng(0)
    bank = inmodegan.MotionBank(512, 512)
    bank.build()
    bank.matrix.assign(rng.normal(size=(512, 512)).astype(np.float32))
    bank(tf.zeros([1, 1, 512]), training=True)             # stores the reference
    before, raw_before = bank.directions().numpy(), _raw_directions(bank.matrix)
    bank.matrix.assign_add((0.002 * rng.choice([-1.0, 1.0], size=(512, 512))).astype(np.float32))
    after, raw_after = bank.directions().numpy(), _raw_directions(bank.matrix)
    raw_flips = int(np.sum(np.sum(raw_before * raw_after, axis=1) < -0.99))
    assert raw_flips >= 5                                   # measured: 15 (not vacuous)
    cosines = np.sum(before * after, axis=1)
    assert int(np.sum(cosines < -0.99)) == 0 and np.all(cosines >= 0)
    assert np.sum(cosines > 0.99) > 480                     # the rest turn, not reverse
    np.testing.assert_allclose(after @ after.T, np.eye(512), atol=1e-4)
    np.testing.assert_array_equal(np.abs(after), np.abs(raw_after))
    # The training forward stored its directions; inference forwards leave them alone.
    np.testing.assert_array_equal(bank.reference.numpy(), before)
    bank(tf.zeros([1, 1, 512]))
    np.testing.assert_array_equal(bank.reference.numpy(), before)


def test_direction_signs_are_a_stop_gradient_factor():
    """Gradients reach M as through the raw SVD, times each direction's sign."""
    rng = np.random.default_rng(1)
    bank = inmodegan.MotionBank(6, 6)
    bank.build()
    bank.matrix.assign(rng.normal(size=(6, 6)).astype(np.float32))
    weights = tf.constant(rng.normal(size=(6, 6)), tf.float32)
    with tf.GradientTape() as tape:
        ours = tf.reduce_sum(bank.directions() * weights)
    signs = np.sign(np.sum(bank.directions().numpy() * _raw_directions(bank.matrix), axis=1))
    with tf.GradientTape() as tape_raw:
        raw = tf.transpose(tf.linalg.svd(bank.matrix, full_matrices=False)[2])
        reference = tf.reduce_sum(raw * signs[:, None] * weights)
    grad = tape.gradient(ours, bank.matrix).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    np.testing.assert_allclose(grad, tape_raw.gradient(reference, bank.matrix).numpy(),
                               rtol=1e-5, atol=1e-6)
    # Before any training forward: each direction's largest-magnitude entry is positive.
    d = bank.directions().numpy()
    assert np.all(d[np.arange(6), np.argmax(np.abs(d), axis=1)] > 0)


def test_motion_offsets_at_initialisation_at_the_paper_configuration():
    """The documented scale (module docstring, "Motion scale"): at the paper configuration the
    per-step offsets are smaller than w_0 but mostly one shared vector, so they drift:
    |w_15 - w_0| = 3.9 |w_0| at initialisation (measured 22.7 -> 88.6)."""
    keras.utils.set_random_seed(0)
    gen = inmodegan.InMoDeGANGenerator(inmodegan.InMoDeGANConfig())
    rng = np.random.default_rng(0)
    latents = {"z_appearance": tf.constant(rng.normal(size=(64, 512)), tf.float32),
               "z_motion": tf.constant(rng.normal(size=(64, 15, 256)), tf.float32)}
    w0 = gen.appearance(latents)
    a = gen.magnitudes(latents).numpy()
    path = gen.latent_path(w0, a).numpy()
    w0_norm = np.linalg.norm(path[:, 0], axis=-1).mean()
    drift = np.linalg.norm(path[:, -1] - path[:, 0], axis=-1).mean()
    steps = np.linalg.norm(a, axis=-1).mean(axis=0)
    shared = np.linalg.norm(a.mean(axis=(0, 1))) / np.linalg.norm(a, axis=-1).mean()
    assert 20 < w0_norm < 26                        # unit rms per entry: sqrt(512) = 22.6
    assert 10 < steps[0] < 18 and np.all((4 < steps[3:]) & (steps[3:] < 9))
    assert shared > 0.7                             # measured 0.81
    assert 3.0 < drift / w0_norm < 5.0              # measured 3.9


def test_latent_path_is_the_cumulative_closed_form(model):
    gen = model.generator
    latents = model.sample_inputs(2, 3)
    w0 = gen.appearance(latents).numpy()
    a = gen.magnitudes(latents).numpy()                             # [B, T-1, N]
    d = gen.directions().numpy()
    path = gen.latent_path(tf.constant(w0), tf.constant(a)).numpy()
    assert path.shape == (2, 4, 8)
    np.testing.assert_allclose(path[:, 0], w0, rtol=1e-6)
    for t in range(1, 4):
        expected = w0 + sum(a[:, k] for k in range(t)) @ d       # w_t = w_0 + sum_{k<=t} A_k D
        np.testing.assert_allclose(path[:, t], expected, rtol=1e-4, atol=1e-5)
    assert np.abs(a).max() > 0


def test_deactivating_a_direction_changes_only_its_component(model):
    gen = model.generator
    latents = model.sample_inputs(2, 5)
    w0 = gen.appearance(latents)
    a = gen.magnitudes(latents)
    d = gen.directions().numpy()
    scale = np.ones([2, 8], np.float32)
    scale[:, 3] = 0.0
    coords = (gen.latent_path(w0, a).numpy() - w0.numpy()[:, None]) @ d.T
    off = (gen.latent_path(w0, a * scale[:, None]).numpy() - w0.numpy()[:, None]) @ d.T
    np.testing.assert_allclose(off[..., 3], 0.0, atol=1e-5)
    keep = [i for i in range(8) if i != 3]
    np.testing.assert_allclose(off[..., keep], coords[..., keep], rtol=1e-4, atol=1e-5)
    assert np.abs(coords[:, 1:, 3]).max() > 1e-3
    # Through the generator: the first frame (w_0) is unchanged, later frames move.
    full = gen(latents).numpy()
    steered = gen(dict(latents, direction_scale=tf.constant(scale))).numpy()
    np.testing.assert_allclose(steered[:, 0], full[:, 0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(steered[:, 1:], full[:, 1:])


def test_noise_is_one_draw_per_video_and_every_frame_uses_it(model):
    latents = model.sample_inputs(1, 0)
    assert latents["z_noise"].shape == (1, 16 + 2 * 64 + 2 * 256)
    for conv in model.generator.synthesis.convs:
        conv.noise_strength.assign(1.0)
    try:
        a = model.generator(latents).numpy()
        b = model.generator(dict(latents, z_noise=latents["z_noise"] + 1.0)).numpy()
        assert all(not np.allclose(a[:, t], b[:, t]) for t in range(4))
    finally:
        for conv in model.generator.synthesis.convs:
            conv.noise_strength.assign(0.0)


def test_lazy_r1_schedule_optimizer_scaling_and_loss():
    model = tiny_model(tiny_config("inmodegan", r1_interval=4, r1_gamma=3.0))
    assert [s for s in range(12) if "d_reg" in model.phases(s)] == [3, 7, 11]
    assert model.phases(0) == ("d_main", "g_main") and model.phases(3) == ("d_main", "d_reg",
                                                                           "g_main")
    d_opt = model.optimizers["d_optimizer"]
    np.testing.assert_allclose(float(d_opt.learning_rate), 2e-4 * 4 / 5, rtol=1e-6)
    np.testing.assert_allclose(d_opt.beta_1, 0.5 ** 0.8, rtol=1e-6)
    np.testing.assert_allclose(float(model.optimizers["g_optimizer"].learning_rate), 2e-4)
    batch = _batch(tiny_config("inmodegan"))
    total, logs = model.r1_losses(batch, {"latents": model.latents_for_batch(batch)})
    # Hand computation: each D's squared input-gradient norm, per example, batch-averaged.
    frames = noise.random_frame(batch["video"], batch["seed"], inmodegan._SALT_REAL_FRAME)

    def r1(fn, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = tf.reduce_sum(fn(x))
        g = tape.gradient(out, x).numpy().reshape(x.shape[0], -1)
        return float(np.mean(np.sum(g ** 2, axis=1)))

    d = model.discriminators
    r1_image = r1(d.image, frames)
    r1_video = sum(r1(net, tpd.time_to_channel(batch["video"], s))
                   for s, net in zip((1, 3), d.tpd.discriminators))
    np.testing.assert_allclose(float(logs["d_r1_image"]), r1_image, rtol=1e-4)
    np.testing.assert_allclose(float(total), 3.0 / 2 * 4 * (r1_image + 0.5 * r1_video),
                               rtol=1e-4)
    assert r1_image > 0 and r1_video > 0


def test_training_steps_move_the_losses_and_every_network():
    config = tiny_config("inmodegan")
    model = tiny_model(config)
    batches = list(pipeline.make_dataset(config.data, 4, 0).take(3))
    g_before = [v.numpy().copy() for v in model.generator.trainable_variables]
    bank_before = model.generator.motion_bank.matrix.numpy().copy()
    d_before = [v.numpy().copy() for v in model.discriminators.trainable_variables]
    history = []
    for step, batch in enumerate(batches):
        logs = model.train_step(batch, model.phases(step))
        model.step.assign_add(1)
        assert all(np.isfinite(float(v)) for v in logs.values())
        history.append(logs)
    assert [("d_reg" in h) for h in history] == [False, True, False]   # interval 2: step 1
    assert len({round(float(h["d_total"]), 6) for h in history}) == 3
    assert len({round(float(h["g_total"]), 6) for h in history}) == 3
    moved = lambda before, net: sum(not np.array_equal(b, v.numpy())
                                    for b, v in zip(before, net.trainable_variables))
    assert moved(g_before, model.generator) > 0.9 * len(g_before)
    assert moved(d_before, model.discriminators) > 0.9 * len(d_before)
    assert not np.array_equal(model.generator.motion_bank.matrix.numpy(), bank_before)
    # The last training forward stored its directions: today's agree with them in sign.
    bank = model.generator.motion_bank
    reference = bank.reference.numpy()
    np.testing.assert_allclose(reference @ reference.T, np.eye(8), atol=1e-5)
    assert np.all(np.sum(reference * bank.directions().numpy(), axis=1) > 0)


def test_longer_videos_continue_the_trained_length_ones(model):
    short = model.generate(model.sample_inputs(2, 4)).numpy()
    long_inputs = model.sample_inputs(2, 4, num_frames=9)
    assert long_inputs["z_motion"].shape == (2, 8, 4)
    np.testing.assert_array_equal(long_inputs["z_motion"][:, :3].numpy(),
                                  model.sample_inputs(2, 4)["z_motion"].numpy())
    long = model.generate(long_inputs, num_frames=9).numpy()
    assert long.shape == (2, 9, 16, 16, 3)
    np.testing.assert_allclose(long[:, :4], short, rtol=1e-5, atol=1e-5)   # causal GRU
    # Fewer frames take a prefix of the motion noises; more than they hold is refused.
    np.testing.assert_array_equal(model.generate(long_inputs, num_frames=4).numpy(),
                                  model.generate(model.sample_inputs(2, 4)).numpy())
    with pytest.raises(ValueError, match="needs 8 motion steps, the inputs hold 3"):
        model.generate(model.sample_inputs(2, 4), num_frames=9)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    path = export.export_model(model, {}, str(tmp_path_factory.mktemp("export") / "inmodegan"))
    return tf.saved_model.load(path).signatures


def test_export_sample_frames_and_steer(model, exported):
    seeds = tf.constant([4, 5], tf.int64)
    sample = exported["sample"](seed=seeds)["video"].numpy()
    assert sample.dtype == np.uint8 and sample.shape == (2, 4, 16, 16, 3)
    ones = tf.ones([2, 8])
    steer = exported["steer"](seed=seeds, direction_scale=ones, num_frames=tf.constant(4))
    np.testing.assert_array_equal(steer["video"].numpy(), sample)
    long = exported["sample_frames"](seed=seeds, num_frames=tf.constant(11))["video"].numpy()
    assert long.shape == (2, 11, 16, 16, 3)
    assert np.abs(long[:, :4].astype(int) - sample.astype(int)).max() <= 1     # continues it
    # The same long video as in-process generation.
    expected = model.generate(model.sample_inputs(2, 4, num_frames=11), num_frames=11).numpy()
    assert np.abs(long.astype(float) - (expected + 1) * 127.5).max() <= 1.0
    off = np.ones([2, 8], np.float32)
    off[:, 0] = 0.0
    steered = exported["steer"](seed=seeds, direction_scale=tf.constant(off),
                                num_frames=tf.constant(11))["video"].numpy()
    np.testing.assert_array_equal(steered[:, 0], long[:, 0])                 # w_0 unchanged
    assert np.abs(steered.astype(int) - long.astype(int)).max() > 0


@pytest.mark.parametrize("endpoint, args, message", [
    ("sample_frames", {"num_frames": tf.constant(1)}, "num_frames must be in \\[2, 257\\)"),
    ("sample_frames", {"num_frames": tf.constant(257)}, "num_frames must be in \\[2, 257\\)"),
    ("sample_frames", {"num_frames": tf.constant([4, 4])}, "num_frames must have shape \\(\\)"),
    ("steer", {"num_frames": tf.constant(4), "direction_scale": tf.ones([2, 7])},
     "direction_scale must have shape"),
    ("steer", {"num_frames": tf.constant(4), "direction_scale": tf.fill([2, 8], 1e3)},
     "direction_scale must have"),
    ("steer", {"num_frames": tf.constant(4), "direction_scale": tf.ones([3, 8])},
     "must have the same batch size"),
])
def test_export_validates_the_new_inputs_by_name(exported, endpoint, args, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        exported[endpoint](seed=tf.constant([1, 2], tf.int64), **args)
