"""TwoStreamVAN: parameter counts of the official Weizmann configuration, KL by hand, the task
schedules, the in-graph ramps, the rollout (warm-up, any length), ablations, learning, and the
serving endpoints of an exported SavedModel."""

import dataclasses
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, tiny_config, tiny_model
from tfvidgen import export, losses, models
from tfvidgen.config import TrainConfig
from tfvidgen.data import pipeline
from tfvidgen.layers import adaptive_conv, noise
from tfvidgen.models import twostreamvan as tsv
from tfvidgen.models import twostreamvan_networks, twostreamvan_tasks


@pytest.fixture(autouse=True)
def _plain_adaptive_conv():
    """Eager tests on the core-op path: XLA would compile every fusion shape once per test (the
    two paths are compared in tests/layers/adaptive_conv_test.py)."""
    with adaptive_conv.without_jit():
        yield


def _batch(config, size=4, seed=0):
    return next(iter(pipeline.make_dataset(config.data, size, seed)))


def _count(*networks):
    return sum(int(np.prod(v.shape)) for n in networks for v in n.trainable_variables)


def test_weizmann_parameter_counts_match_the_official_code_within_5_percent():
    """Official code, Weizmann (gf_dim 16, C 512, M 64, n 5, 4 kernel layers, K 10, 10 frames of
    64x64): generator side 36.80M (1.80M in the encoders), D_I 0.04M, D_V 11.38M."""
    cfg = tsv.TwoStreamVANConfig(num_classes=10, encoder_extra_conv=True).validate()
    g = tsv.TwoStreamVANGenerator(cfg)
    labels = tf.zeros([1], tf.int32)
    frame = tf.zeros([1, 64, 64, 3])
    g.content_encoder(frame, labels)
    g.motion_encoder(frame, labels)
    state = g.motion_generator.initial_state(1)
    g.next_frame(tf.zeros([1, 512]), state, tf.zeros([1, 64]), labels)
    d_i, d_v = tsv.ImageDiscriminator(cfg), tsv.VideoDiscriminator(cfg)
    assert d_i(frame).shape == (1, 4, 4)
    logits, classes = d_v(tf.zeros([1, 10, 64, 64, 3]))
    assert logits.shape == (1,) and classes.shape == (1, 10)
    encoders = _count(g.content_encoder, g.motion_encoder)
    for measured, official in ((_count(g), 36.80e6), (encoders, 1.80e6), (_count(d_i), 0.04e6),
                               (_count(d_v), 11.38e6)):
        # 5%, or the rounding of the reported two decimals (D_I: 0.04M)
        assert abs(measured - official) <= max(0.05 * official, 0.005e6), (measured, official)
    assert twostreamvan_networks.video_discriminator_plan(10) == [(4, 0, 0), (4, 0, 0), (4, 1, 1), (4, 1, 1),
                                                (4, 1, 1)]


def _bare(**params):
    """The model object without building networks (schedules are host-side only)."""
    cfg = dataclasses.replace(tsv.TwoStreamVANConfig(conditional=False), **params).validate()
    return tsv.TwoStreamVAN(cfg, TrainConfig())


def test_paper_schedule_is_3_to_2_after_content_pretraining():
    model = _bare(pretrain_steps=7)
    tasks = [model.task_at(s) for s in range(107)]
    assert tasks[:7] == ["pretrain"] * 7
    assert tasks[7:17] == ["content"] * 3 + ["video"] * 2 + ["content"] * 3 + ["video"] * 2
    assert tasks[7:].count("content") == 60 and tasks[7:].count("video") == 40
    assert model.phases(0) == ("pretrain_encoder", "pretrain_generator")
    assert model.phases(7) == ("content_d", "content_encoder", "content_generator")
    assert model.phases(10) == ("video_d", "video_encoder", "video_generator")
    assert set(model.active_phases()) == {p for t in ("pretrain", "content", "video")
                                 for p in tsv._TASK_PHASES[t]}
    assert model.PHASES["video_encoder"] == "motion_encoder_optimizer"


def test_code_curriculum_is_a_seeded_hash_with_a_rising_video_share():
    model = _bare(curriculum="code", video_task_ramp_steps=1000)
    tasks = [model.task_at(s) for s in range(4000)]
    assert tasks == [model.task_at(s) for s in range(4000)]          # host-side, reproducible
    assert 0.55 < tasks.count("content") / 4000 < 0.65
    early = [t for t in tasks[:500] if t != "content"]
    late = [t for t in tasks[2000:] if t != "content"]
    assert early.count("video") / len(early) < 0.4 < 0.8 < late.count("video") / len(late)
    other = _bare(curriculum="code", curriculum_seed=1)
    assert tasks[:200] != [other.task_at(s) for s in range(200)]
    assert set(model.active_phases()) == {p for t in ("content", "pred", "video")
                                 for p in tsv._TASK_PHASES[t]}


def test_equilibrium_gating_skips_d_or_g_from_the_stored_bce():
    model = _bare(equilibrium=True)
    state = model.gate_state["content"]
    state.assign([0.1, 0.7])                  # D too good on real: skip D
    assert model.phases(0) == ("content_encoder", "content_generator")
    state.assign([0.7, 1.3])                  # D too weak: skip G
    assert model.phases(0) == ("content_d", "content_encoder")
    state.assign([0.1, 1.3])                  # both would be skipped: both run
    assert model.phases(0) == tsv._TASK_PHASES["content"]
    state.assign([0.6, 0.8])
    assert model.phases(0) == tsv._TASK_PHASES["content"]


def test_scheduled_sampling_and_motion_kl_ramps_read_the_step_in_graph():
    model = tiny_model(tiny_config("twostreamvan", schedule_start=10, schedule_end=30,
                                   pretrain_steps=5))
    progress = tf.function(model._progress)
    for step, (eps, kl) in {0: (1.0, 2.0), 15: (1.0, 2.0), 25: (0.5, 11.0), 35: (0.0, 20.0),
                            90: (0.0, 20.0)}.items():
        model.step.assign(step)
        got = progress()
        np.testing.assert_allclose([float(got[0]), float(got[1])], [eps, kl], rtol=1e-6)


def test_rollout_warm_up_and_any_length():
    config = tiny_config("twostreamvan", warmup_frames=2, conditional=True)
    model = tiny_model(config)
    assert model.inputs()[1].shape == (4 + 2 - 1, 4)
    latents = model.sample_inputs(2, 3, labels=tf.constant([1, 4]))
    video = model.generate(latents).numpy()
    assert video.shape == (2, 4, 16, 16, 3) and np.abs(video).max() <= 1.0
    # the first frame is G_c(z_c), then two warm-up steps: generate drops frames 0 and 1
    g = model.generator
    keys = noise.salted_keys(tf.constant([[3, 0], [4, 0]], tf.int64), tsv.SALT_Z_M)
    frames = g.rollout(latents["z_content"], latents["label"],
                       lambda i: noise.step_normal(keys, i, 4), 9).numpy()
    assert frames.shape == (2, 10, 16, 16, 3)
    np.testing.assert_allclose(np.clip(frames[:, 2:6], -1, 1), video, atol=1e-6)
    np.testing.assert_allclose(frames[:, 0], g.content_frame(latents["z_content"],
                                                             latents["label"])[0].numpy(),
                               atol=1e-6)


def test_content_task_learns_and_touches_only_its_optimizers():
    config = tiny_config("twostreamvan").replace(train={"g_lr": 2e-3, "d_lr": 2e-3})
    model = tiny_model(config)
    batch = _batch(config)
    before = {k: int(o.iterations) for k, o in model.optimizers.items()}
    logs = [model.train_step(batch, tsv._TASK_PHASES["content"]) for _ in range(25)]
    after = {k: int(o.iterations) for k, o in model.optimizers.items()}
    assert {k for k in after if after[k] != before[k]} == {
        "content_encoder_optimizer", "content_generator_optimizer", "image_d_optimizer"}
    first, last = float(logs[0]["content_mse"]), float(logs[-1]["content_mse"])
    assert last < 0.8 * first, (first, last)


@pytest.mark.parametrize("task", ["pred", "video"])
def test_motion_tasks_train_the_motion_stream_and_freeze_the_content_stream(task):
    config = tiny_config("twostreamvan", curriculum="code", conditional=True)
    model = tiny_model(config)
    batch = _batch(config)
    content = [v.numpy().copy() for v in model.content_encoder.variables
               + model.content_generator.variables]
    motion = [v.numpy().copy() for v in model.motion_generator.trainable_variables]
    logs = model.train_step(batch, tsv._TASK_PHASES[task])
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(
        content, model.content_encoder.variables + model.content_generator.variables))
    changed = [not np.array_equal(a, v.numpy())
               for a, v in zip(motion, model.motion_generator.trainable_variables)]
    assert np.mean(changed) > 0.9
    assert float(logs[f"{task}_kl"]) > 0 and float(logs[f"{task}_scale"]) > 0
    if task == "video":
        assert float(logs["video_d_class"]) > 0 and float(logs["video_g_class"]) > 0
        assert float(logs["teacher_probability"]) == 1.0


@pytest.mark.parametrize("params", [
    {"masks": False}, {"single_generator": True}, {"num_scales": 1, "kernel_size": 1},
    {"num_scales": 4, "kernel_size": 5}, {"code_difference": True, "d_class_on_fakes": False}])
def test_ablations_build_generate_and_train_a_motion_step(params):
    """Each ablation builds, generates and trains, and takes effect: with the same initialiser
    seed, the built networks (variable names and shapes) or the video differ from the default."""
    keras.utils.set_random_seed(0)
    default = tiny_model(tiny_config("twostreamvan", curriculum="code"))
    keras.utils.set_random_seed(0)
    config = tiny_config("twostreamvan", curriculum="code", **params)
    model = tiny_model(config)
    video = model.generate(model.sample_inputs(2, 0)).numpy()
    assert video.shape == (2, 4, 16, 16, 3)
    architecture = lambda m: [(re.sub(r"_\d+(?=/|$)", "", v.path), tuple(v.shape))
                              for v in m.variables]
    if architecture(model) == architecture(default):
        if "code_difference" in params:     # the difference only enters training and rollouts
            batch = _batch(config)
            default_logs = default.train_step(batch, tsv._TASK_PHASES["pred"])
            logs = model.train_step(batch, tsv._TASK_PHASES["pred"])
            assert float(logs["pred_encoder_total"]) != float(default_logs["pred_encoder_total"])
        else:
            assert not np.allclose(video,
                                   default.generate(default.sample_inputs(2, 0)).numpy())
    logs = model.train_step(_batch(config), tsv._TASK_PHASES["pred"])
    assert all(np.isfinite(float(v)) for v in logs.values())
    subnets = model.motion_generator.subnets or []
    assert len(subnets) == len(model.cfg.fused_scales) == (
        0 if params.get("single_generator") else params.get("num_scales", 2))
    if params.get("single_generator"):
        assert not model.cfg.fused_scales and model.motion_generator.blocks is None
        assert "content_generator" in model.optimizer_specs()[
            "motion_generator_optimizer"].networks


def test_exported_endpoints_any_length_core_ops_and_validation(tmp_path):
    config = tiny_config("twostreamvan", conditional=True, warmup_frames=1)
    model = tiny_model(config)
    path = export.export_model(model, {"model": "twostreamvan"}, str(tmp_path / "export"))
    graph = open(f"{path}/saved_model.pb", "rb").read()
    assert b"_XlaMustCompile" not in graph and b"XlaLaunch" not in graph
    loaded = tf.saved_model.load(path)
    assert {"serving_default", "sample", "latents", "sample_frames"} <= set(loaded.signatures)
    seeds, labels = tf.constant([5, 6], tf.int64), tf.constant([0, 3], tf.int32)
    sample = loaded.signatures["sample"](seed=seeds, label=labels)["video"].numpy()
    assert sample.shape == (2, 4, 16, 16, 3) and sample.dtype == np.uint8
    run = loaded.signatures["sample_frames"]
    longer = run(seed=seeds, label=labels, num_frames=tf.constant(7))["video"].numpy()
    assert longer.shape == (2, 7, 16, 16, 3)
    np.testing.assert_array_equal(longer[:, :4], sample)       # a longer video extends it
    expected = model.generate(model.sample_inputs(2, 5, labels=labels)).numpy()
    np.testing.assert_allclose(sample.astype(np.float32),
                               np.round((expected + 1) * 127.5), atol=1.0)
    expected_longer = model.generate(model.sample_inputs(2, 5, labels=labels, num_frames=7),
                                     num_frames=7).numpy()
    np.testing.assert_allclose(longer.astype(np.float32),
                               np.round((expected_longer + 1) * 127.5), atol=1.0)
    for bad, message in ((tf.constant(0), "num_frames must be in"),
                         (tf.constant([4]), "num_frames must have shape")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            run(seed=seeds, label=labels, num_frames=bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match="label must be in"):
        run(seed=seeds, label=tf.constant([0, 5]), num_frames=tf.constant(3))


def test_checkpoint_restores_and_resumes_identically_with_only_the_tasks_optimizers_stepped(
        tmp_path):
    """The contract test's checkpoint check, except that after one step only the optimizers of
    that step's task have iterated (the contract test expects every optimizer at 1)."""
    config = tiny_config("twostreamvan")
    first, second = list(pipeline.make_dataset(config.data, 4, 0).take(2))
    keras.utils.set_random_seed(1)
    a = tiny_model(config)
    a.train_step(first)                                     # step 0: the content task
    a.step.assign_add(1)
    path = a.checkpoint().save(str(tmp_path / "ckpt"))
    saved = [v.numpy().copy() for v in a.variables]
    a.train_step(second)                                    # step 1: content again (3:2)
    keras.utils.set_random_seed(2)
    b = tiny_model(config)
    b.checkpoint().restore(path).assert_consumed()
    for s, r in zip(saved, b.variables):
        np.testing.assert_array_equal(s, r.numpy())
    iterations = {k: int(o.iterations) for k, o in b.optimizers.items()}
    assert iterations == {"content_encoder_optimizer": 1, "content_generator_optimizer": 1,
                          "image_d_optimizer": 1, "motion_encoder_optimizer": 0,
                          "motion_generator_optimizer": 0, "video_d_optimizer": 0}
    b.train_step(second)
    for va, vb in zip(a.variables, b.variables):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=1e-6, atol=1e-7)


def test_weight_decay_adds_the_coupled_l2_gradient_of_the_updated_weights_only():
    """PyTorch Adam's weight_decay (the code's 1e-5) adds wd * w to the gradient: under SGD(lr)
    the decayed run differs from the plain one by exactly -lr * wd * w0 on the phase's weights."""
    lr, wd = 0.01, 0.5
    batch, runs = _batch(tiny_config("twostreamvan")), []
    for decay in (0.0, wd):
        keras.utils.set_random_seed(4)
        model = tiny_model(tiny_config("twostreamvan", weight_decay=decay))
        model.compile(**{name: keras.optimizers.SGD(lr) for name in model.optimizer_specs()})
        start = {v.path: v.numpy().copy() for v in model.variables}
        model.train_step(batch, ("content_encoder",))
        runs.append((model, start))
    (plain, start), (decayed, _) = runs
    updated = {v.path for v in decayed.optimizer_variables("content_encoder_optimizer")}
    assert updated
    for a, b in zip(plain.variables, decayed.variables):
        expected = -lr * wd * start[a.path] if a.path in updated else 0.0
        np.testing.assert_allclose(b.numpy() - a.numpy(), expected, atol=1e-6, err_msg=a.path)


def test_content_kl_warm_up_ramps_lambda2_from_zero_in_graph():
    model = tiny_model(tiny_config("twostreamvan", content_kl_warmup_steps=100,
                                   lambda_content_kl=7.0))
    weight = tf.function(model._content_kl_weight)
    for step, expected in {0: 0.0, 25: 1.75, 100: 7.0, 5000: 7.0}.items():
        model.step.assign(step)
        np.testing.assert_allclose(float(weight()), expected, rtol=1e-6)
    model.step.assign(50)
    logs = model.train_step(_batch(tiny_config("twostreamvan")), tsv._TASK_PHASES["content"])
    np.testing.assert_allclose(float(logs["content_kl_weight"]), 3.5, rtol=1e-6)
    np.testing.assert_allclose(
        float(logs["content_encoder_total"]),
        3.5 * float(logs["content_kl"]) + 1e4 * float(logs["content_mse"]), rtol=1e-5)
    plain = tiny_model(tiny_config("twostreamvan"))
    assert float(plain._content_kl_weight()) == plain.cfg.lambda_content_kl


def test_equilibrium_gate_is_checkpointed_so_a_resume_gates_the_same_way(tmp_path):
    config = tiny_config("twostreamvan", equilibrium=True)
    a = tiny_model(config)
    a.gate_state["content"].assign([0.1, 0.7])              # D too good: skip content_d
    a.gate_state["video"].assign([0.7, 1.3])                # D too weak: skip video_generator
    path = a.checkpoint().save(str(tmp_path / "ckpt"))
    b = tiny_model(config)
    assert b.phases(0) == tsv._TASK_PHASES["content"]        # fresh: ungated
    b.checkpoint().restore(path).assert_consumed()
    for task in tsv._GATED_TASKS:
        np.testing.assert_array_equal(b.gate_state[task].numpy(), a.gate_state[task].numpy())
    assert [b.phases(s) for s in range(5)] == [a.phases(s) for s in range(5)]
    assert b.phases(0) == ("content_encoder", "content_generator")
    assert b.phases(3) == ("video_d", "video_encoder")
    # without gating the checkpoint holds no gate (inference checkpoints never do)
    plain = tiny_model(tiny_config("twostreamvan"))
    assert not hasattr(plain.checkpoint(), "equilibrium_gate")
    assert not hasattr(a.checkpoint(training=False), "equilibrium_gate")


@pytest.mark.parametrize("mask_bias, expected, warmup", [(20.0, 1.0, 1), (-20.0, 0.0, 1),
                                                          (20.0, 1.0, 0)])
def test_motion_mask_view_shows_the_blended_masks_per_scale(mask_bias, expected, warmup):
    """The explain view's panels are the masks the rollout blends with: a mask sub-net biased to
    saturate gives all ones (all zeros) at every fused scale and generated frame; without
    warm-up, frame 0 (the content stream's alone) has none."""
    config = tiny_config("twostreamvan", warmup_frames=warmup, num_scales=3)
    model = tiny_model(config)
    generator = model.sampling_generator
    for subnet in generator.motion_generator.subnets:
        subnet.m_out.bias.assign(tf.fill(subnet.m_out.bias.shape, mask_bias))
    latents = model.sample_inputs(2, 5)
    video, panels = model.explain_views()["motion_masks"][1](latents)
    np.testing.assert_array_equal(video.numpy(), model.generate(latents).numpy())
    assert sorted(panels) == ["mask 16x16", "mask 4x4", "mask 8x8"]
    for maps in panels.values():
        maps = np.asarray(maps)
        assert maps.shape == (2, 4, 16, 16)
        if not warmup:
            np.testing.assert_array_equal(maps[:, 0], 0.0)
            maps = maps[:, 1:]
        np.testing.assert_allclose(maps, expected, atol=1e-6)
    ablated = tiny_model(tiny_config("twostreamvan", masks=False))
    assert "motion_masks" not in ablated.explain_views()


def test_resume_accepts_a_checkpoint_written_before_the_gate_was_stored(tmp_path):
    """Checkpoints of equilibrium runs written before the gate joined the checkpoint still resume
    (every other value restored, the gate open, a note); anything else missing still fails."""
    config = tiny_config("twostreamvan", equilibrium=True)
    keras.utils.set_random_seed(5)
    a = tiny_model(config)
    assert set(a.training_state()) == {"equilibrium_gate"}
    old = a.checkpoint(training=True, without=("equilibrium_gate",)).save(str(tmp_path / "old"))
    keras.utils.set_random_seed(6)
    b = tiny_model(config)
    lines = []
    b.restore_for_training(b.checkpoint(), old, log=lines.append)
    for va, vb in zip(a.variables, b.variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert len(lines) == 1 and "no equilibrium_gate" in lines[0] and old in lines[0]
    np.testing.assert_array_equal(b.gate_state["video"].numpy(),       # the gate starts open
                                  np.full([2], b.cfg.equilibrium_value, np.float32))
    a.gate_state["video"].assign([0.7, 1.3])
    new = a.checkpoint().save(str(tmp_path / "new"))
    b.restore_for_training(b.checkpoint(), new, log=lines.append)
    np.testing.assert_array_equal(b.gate_state["video"].numpy(), np.float32([0.7, 1.3]))
    assert len(lines) == 1
    no_optimizers = tf.train.Checkpoint(step=a.step, **a.checkpoint_items()).save(
        str(tmp_path / "no_optimizers"))
    with pytest.raises(AssertionError):
        b.restore_for_training(b.checkpoint(), no_optimizers, log=lines.append)


def _config_model_params(name):
    """--model_param values of configs/<name>.cfg, nested flagfiles followed (the last wins)."""
    params = {}

    def read(path):
        for line in open(os.path.join(REPO, path)):
            line = line.strip()
            if line.startswith("--flagfile="):
                read(line[len("--flagfile="):])
            elif line.startswith("--model_param="):
                key, _, value = line[len("--model_param="):].partition("=")
                params[key] = value
    read(f"configs/{name}.cfg")
    return models.parse_model_params("twostreamvan", [f"{k}={v}" for k, v in params.items()])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_video_motion_kl_is_the_codes_mean_over_steps_or_the_papers_sum(reduction):
    """The code's kl_loss averages over all B x (T-1) (example, step) rows: with Table 6's lambda5
    (2 -> 20) a sum over the T-1 steps would weigh the KL (T-1) = 9 times more at T = 10."""
    config = tiny_config("twostreamvan", motion_kl_reduction=reduction)
    model = tiny_model(config)
    batch = _batch(config)
    gt = model._ground_truth(batch)
    m, steps = model.cfg.motion_dim, config.data.num_frames - 1
    rows = float(losses.gaussian_kl(tf.reshape(gt["mu_m"], [-1, m]),
                                    tf.reshape(gt["logvar_m"], [-1, m])))
    logs = model.train_step(batch, ("video_encoder",))
    expected = rows * (steps if reduction == "sum" else 1)
    np.testing.assert_allclose(float(logs["video_kl"]), expected, rtol=1e-5)
    np.testing.assert_allclose(
        float(logs["video_encoder_total"]),
        2.0 * expected + 1e4 * float(logs["video_mse"]) + 100.0 * float(logs["video_scale"]),
        rtol=1e-5)


def test_configs_say_which_motion_kl_reduction_they_use():
    """The official configuration (Weizmann, and MUG / SynAction built on it) uses the code's mean,
    as does synthetic; the quickstart keeps the sum its ramps were tuned with; every config says."""
    assert tsv.TwoStreamVANConfig().motion_kl_reduction == "mean"
    for name in ("weizmann", "mug", "synaction", "synthetic"):
        assert _config_model_params(f"twostreamvan_{name}")["motion_kl_reduction"] == "mean"
    assert _config_model_params("twostreamvan_quickstart")["motion_kl_reduction"] == "sum"


def test_content_pretraining_is_the_vae_alone_and_leaves_the_discriminators_untouched():
    """Pre-training [P][C]: E_c on lambda2 KL + lambda1 MSE, G_c on lambda1 MSE; D_I is never run
    (weights and BN statistics unchanged), its optimizer never steps, the gate is not written."""
    config = tiny_config("twostreamvan", pretrain_steps=2, equilibrium=True)
    model = tiny_model(config)
    assert [model.phases(s) for s in range(3)] == [("pretrain_encoder", "pretrain_generator")] * 2 \
        + [tsv._TASK_PHASES["content"]]
    d_vars = model.image_discriminator.variables + model.video_discriminator.variables
    d_before = [v.numpy().copy() for v in d_vars]
    gate = {t: v.numpy().copy() for t, v in model.gate_state.items()}
    iterations = {k: int(o.iterations) for k, o in model.optimizers.items()}
    logs = model.train_step(_batch(config))                 # step 0: pre-training
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(d_before, d_vars))
    assert {k for k, o in model.optimizers.items() if int(o.iterations) != iterations[k]} == {
        "content_encoder_optimizer", "content_generator_optimizer"}
    assert all(np.array_equal(gate[t], v.numpy()) for t, v in model.gate_state.items())
    assert set(logs) == {"content_kl", "content_mse", "content_encoder_total",
                         "pretrain_generator_total"}
    kl, recon = float(logs["content_kl"]), float(logs["content_mse"])
    np.testing.assert_allclose(float(logs["content_encoder_total"]), 7.0 * kl + 1e4 * recon,
                               rtol=1e-5)
    np.testing.assert_allclose(float(logs["pretrain_generator_total"]), 1e4 * recon, rtol=1e-5)
    # the former behaviour on request: the content VAE-GAN task from step 0
    adversarial = _bare(pretrain_steps=2, pretrain_adversarial=True)
    assert adversarial.phases(0) == tsv._TASK_PHASES["content"]
    assert not any(p.startswith("pretrain") for p in adversarial.active_phases())


def _mean_bce(logits, target):
    logits = tf.cast(logits, tf.float32)
    return float(tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        tf.fill(tf.shape(logits), target), logits)))


@pytest.mark.parametrize("task, prior_weight", [("content", 1.0), ("content", 0.1),
                                                ("pred", 0.1), ("video", 0.1)])
def test_equilibrium_gate_fake_cost_mixes_the_reconstruction_and_prior_bce(task, prior_weight):
    """The code's gate: real cost BCE(D(x), 1); fake cost mean(BCE(x~), BCE(x_p)) for pred and
    video, mean(2 (1 - w) BCE(x~), 2 w BCE(x_p)) for content (w = prior_weight: x_p's alone at
    w = 1). Stored by the D phase (D in training mode, before its update) and by the generator
    phase (D's moving statistics, after it)."""
    config = tiny_config("twostreamvan", curriculum="code", conditional=True, equilibrium=True,
                         prior_weight=prior_weight)
    model = tiny_model(config)
    batch = _batch(config)
    fwd = getattr(model, f"_{task}_forward")(batch)         # what the step's forward recomputes
    if task == "video":
        real, score = batch["video"], lambda x, t: model.video_discriminator(x, training=t)[0]
    else:
        real, score = fwd["real"], lambda x, t: model.image_discriminator(x, training=t)
    share = prior_weight if task == "content" else 0.5

    def expected(training):
        return [_mean_bce(score(real, training), 1.0),
                (1 - share) * _mean_bce(score(fwd["recon"], training), 0.0)
                + share * _mean_bce(score(fwd["prior"], training), 0.0)]
    want = expected(True)
    model.train_step(batch, (f"{task}_d",))
    np.testing.assert_allclose(model.gate_state[task].numpy(), want, rtol=1e-5)
    want = expected(False)
    model.train_step(batch, (f"{task}_encoder", f"{task}_generator"))
    np.testing.assert_allclose(model.gate_state[task].numpy(), want, rtol=1e-5)


def test_scheduled_sampling_draws_once_per_step_for_the_whole_batch(monkeypatch):
    """The code draws random.random() once per rollout step (content and history separately, v~
    and v_p separately) for the whole batch, not once per example."""
    config = tiny_config("twostreamvan", schedule_start=0, schedule_end=2)
    model = tiny_model(config)
    model.step.assign(1)                                    # eps = 0.5
    seen = []
    rollout = model._video_rollout

    def spy(gt, labels, eps_at, teacher):
        seen.append(np.stack([np.asarray(t) for t in teacher], 1))     # [2B, T-1, 2]
        return rollout(gt, labels, eps_at, teacher)
    monkeypatch.setattr(model, "_video_rollout", spy)
    logs = model.train_step(_batch(config), ("video_encoder",))
    assert float(logs["teacher_probability"]) == 0.5
    (draws,) = seen
    size = config.train.batch_size
    assert draws.shape == (2 * size, 3, 2)
    for half in (draws[:size], draws[size:]):
        np.testing.assert_array_equal(half, np.broadcast_to(half[:1], half.shape))
    # a function of the step alone (every replica draws the same), about eps of them true
    per_step = np.stack([model._teacher_draws(3, 0.5).numpy() for _ in range(2)])
    assert (per_step[0] == per_step[1]).all()
    np.testing.assert_array_equal(per_step[0], draws[::size])
    many = []
    for step in range(40):
        model.step.assign(step)
        many.append(model._teacher_draws(3, 0.5).numpy())
    assert 0.35 < np.mean(many) < 0.65


@pytest.mark.parametrize("clip_feedback", [False, True])
def test_clip_feedback_keeps_the_frames_fed_back_in_range_in_training_and_sampling(
        monkeypatch, clip_feedback):
    """clip_feedback: a predicted frame beyond [-1, 1] (here shifted by +3) reaches the
    content encoder (and the frame difference) clipped. Off (the code), it is fed back as it is:
    the runaway seen in the quickstart's -M runs."""
    config = tiny_config("twostreamvan", schedule_start=0, schedule_end=1,
                         clip_feedback=clip_feedback)
    model = tiny_model(config)
    model.step.assign(5)                                  # teacher forcing over: eps = 0
    g = model.generator
    next_frame, content_mean = g.next_frame, g.content_mean
    seen = []
    monkeypatch.setattr(g, "next_frame", lambda *a, **k: (lambda f, m: (f + 3.0, m))(
        *next_frame(*a, **k)))

    def spy(frames, *args, **kwargs):
        seen.append(float(tf.reduce_max(tf.abs(frames))))
        return content_mean(frames, *args, **kwargs)
    monkeypatch.setattr(g, "content_mean", spy)
    logs = model.train_step(_batch(config), ("video_encoder",))
    assert float(logs["teacher_probability"]) == 0.0 and len(seen) >= 3
    trained, seen[:] = list(seen), []
    latents = model.sample_inputs(2, 0)
    g.rollout(latents["z_content"], None, lambda i: latents["z_motion"][:, i],
              latents["z_motion"].shape[1])
    for fed in (trained, seen):
        assert fed[0] <= 1.0                             # G_c's own frame, tanh-bounded
        if clip_feedback:
            assert max(fed) <= 1.0, fed
        else:
            assert max(fed[1:]) > 1.5, fed


def test_generator_phases_score_fakes_and_reals_in_one_discriminator_call_equal_to_separate():
    """scored_together: D_V and D_I (BN on moving statistics) score a concatenation exactly as
    separate calls would, after the moving statistics have left their initial values."""
    cfg = tsv.TwoStreamVANConfig(num_classes=3, conditional=True, resolution=32, num_frames=6,
                                 gf_dim=4).validate()
    videos = [tf.random.stateless_normal([2, 6, 32, 32, 3], [i, 7]) for i in range(3)]
    d_v, d_i = tsv.VideoDiscriminator(cfg), tsv.ImageDiscriminator(cfg)
    for _ in range(3):                        # move the BN statistics away from (0, 1)
        d_v(videos[0] * 3.0 + 1.0, training=True)
        d_i(videos[0][:, 0] * 3.0 + 1.0, training=True)
    together = twostreamvan_tasks.scored_together(d_v, videos)
    for video, (logits, classes) in zip(videos, together):
        alone_logits, alone_classes = d_v(video, training=False)
        np.testing.assert_allclose(logits.numpy(), alone_logits.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(classes.numpy(), alone_classes.numpy(), rtol=1e-5, atol=1e-5)
    frames = [v[:, 0] for v in videos]
    for frame, logits in zip(frames, twostreamvan_tasks.scored_together(d_i, frames)):
        np.testing.assert_allclose(logits.numpy(), d_i(frame, training=False).numpy(),
                                   rtol=1e-5, atol=1e-5)
