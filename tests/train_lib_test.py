"""The training loop: replica equivalence, run() outputs, NaN guard, kill -9 resume, multi-worker."""

import glob
import io
import json
import os
import signal
import subprocess
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, tiny_config, tiny_model
from tests.helpers import subprocess_env as _env
from tests.helpers import train_cmd as _train_cmd
from tfvidgen import callbacks, checkpoints, train_lib
from tfvidgen.data import pipeline
from tfvidgen.models import g3an

def test_two_replicas_give_the_single_device_update():
    """Same global batch, same latents (drawn from per-example keys): 1 vs 2 replicas agree.

    Tolerance 2e-5: float32 summation order differs between one device and the all-reduce.
    """
    config = tiny_config()
    batch = next(iter(pipeline.make_dataset(config.data, 4, seed=0)))
    keras.utils.set_random_seed(0)
    single = tiny_model(config)
    initial = [v.numpy() for v in single.variables]
    single.train_step(batch)                     # eager: no second trace needed

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        double = tiny_model(config)
        for variable, value in zip(double.variables, initial):
            variable.assign(value)
    dist_batch = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).unbatch().batch(4))))
    local = strategy.experimental_local_results(dist_batch["video"])
    assert [v.shape[0] for v in local] == [2, 2]
    tf.function(lambda b: strategy.run(double.train_step, args=(b,)))(dist_batch)
    for a, b in zip(single.trainable_variables, double.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-5, err_msg=a.path)
    assert any(not np.allclose(a.numpy(), v) for a, v in zip(single.trainable_variables, initial))

    # In normal training the two replicas draw different latents.
    z = strategy.run(lambda b: double.latents_for_batch(b)["z_motion"], args=(dist_batch,))
    first, second = (t.numpy() for t in strategy.experimental_local_results(z))
    assert not np.allclose(first, second)


def test_run_writes_checkpoints_events_samples_and_config(tmp_path):
    config = tiny_config(workdir=str(tmp_path / "w")).replace(
        train={"train_steps": 3, "ema_decay": 0.9}, runtime={"checkpoint_every": 2,
                                                              "sample_every": 2})
    result = train_lib.run(config)
    assert result["step"] == 3 and result["resumed_from"] is None
    assert {"d_total", "g_total"} <= set(result["logs"])
    ckpts = tf.train.get_checkpoint_state(str(tmp_path / "w" / "checkpoints"))
    assert ckpts.model_checkpoint_path.endswith("ckpt-3")
    saved = json.load(open(tmp_path / "w" / "config.json"))
    assert saved["train"]["train_steps"] == 3 and saved["dataset_info"]["num_classes"] == 5
    tags = set()
    for event_file in glob.glob(str(tmp_path / "w" / "tensorboard" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags |= {v.tag for v in event.summary.value}
    assert {"losses/d_total", "losses/g_total", "losses/d_real_video", "learning_rate/generator",
            "perf/videos_per_sec", "samples/frames", "samples/animated"} <= tags
    # The run resumes instead of starting over; the restored EMA generator equals the saved one.
    model, _, step = train_lib.build_for_inference(str(tmp_path / "w"))
    assert step == 3 and model.ema_generator is not None
    again = train_lib.run(config.replace(train={"train_steps": 4, "ema_decay": 0.9}))
    assert again["resumed_from"] == 3 and again["step"] == 4


@pytest.mark.parametrize("replicas", [1, 2])
def test_conditional_model_trains_through_the_loop(replicas, tmp_path):
    """Regression: conditional G3AN crashed at step 1 in the traced loop ('__projection' is not a
    valid root scope name) while eager calls worked. Two replicas run as a subprocess: two
    MirroredStrategy objects in one process clash on collective instance keys (a TF limitation,
    and another test of this file already made one)."""
    workdir = tmp_path / "w"
    if replicas == 1:
        config = tiny_config(workdir=str(workdir), conditional=True).replace(
            train={"train_steps": 2})
        result = train_lib.run(config)
        assert result["step"] == 2 and all(np.isfinite(v) for v in result["logs"].values())
    else:
        proc = subprocess.run(_train_cmd(workdir, "--train_steps=2", "--checkpoint_every=1",
                                         "--strategy=mirrored", "--num_cpu_replicas=2",
                                         "--model_param=conditional=true"),
                              cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "with 2 replica(s)" in proc.stdout
    ckpt_dir = str(workdir / "checkpoints")
    # The label embeddings [num_classes, channels] of D_I's and D_V's projection terms.
    names = [n for n, shape in tf.train.list_variables(ckpt_dir)
             if n.startswith("discriminators/") and "OPTIMIZER_SLOT" not in n
             and shape == [5, 8]]
    assert len(names) == 2, names
    after = tf.train.load_checkpoint(os.path.join(ckpt_dir, "ckpt-2"))
    before = tf.train.load_checkpoint(os.path.join(ckpt_dir, "ckpt-1"))
    for name in names:                                          # the label embedding learns
        assert not np.allclose(before.get_tensor(name), after.get_tensor(name)), name


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = g3an.G3AN.generator_losses

    def poisoned(self, batch, context):
        total, logs = original(self, batch, context)
        nan_from_step_3 = tf.where(self.optimizers["g_optimizer"].iterations >= 2, np.nan, 0.0)
        return total + nan_from_step_3, {**logs, "g_total": total + nan_from_step_3}

    monkeypatch.setattr(g3an.G3AN, "generator_losses", poisoned)
    workdir = tmp_path / "w"
    config = tiny_config(workdir=str(workdir)).replace(
        train={"train_steps": 6}, runtime={"checkpoint_every": 2})
    with pytest.raises(callbacks.NonFiniteError, match=r"step 3: g_total=nan.*step 2\) is kept"):
        train_lib.run(config)
    ckpt_dir = str(workdir / "checkpoints")
    assert tf.train.latest_checkpoint(ckpt_dir).endswith("ckpt-2")
    for name, _ in tf.train.list_variables(tf.train.latest_checkpoint(ckpt_dir)):
        value = tf.train.load_variable(ckpt_dir, name)
        if np.asarray(value).dtype.kind == "f":
            assert np.isfinite(value).all(), name


def test_sigkill_then_rerun_resumes_from_the_last_checkpoint(tmp_path):
    workdir = tmp_path / "w"
    proc = subprocess.Popen(_train_cmd(workdir, "--train_steps=1000", "--checkpoint_every=2",
                                       "--log_every=1", "--sample_every=1000"),
                            cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    ckpt_dir = workdir / "checkpoints"

    def newest():
        # Any step >= 4: at ~0.02 s/step, ckpt-4 itself is rotated away between two polls.
        found = checkpoints.available(str(ckpt_dir))         # newest first
        return found[0][0] if found else 0

    while time.time() < deadline and newest() < 4:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert newest() >= 4, "no checkpoint before the timeout"
    # By the files, as training finds them: a kill just after a save may leave the index file
    # one checkpoint behind (the rerun then rightly resumed from the newer one).
    last = newest()
    result = subprocess.run(_train_cmd(workdir, f"--train_steps={last + 2}",
                                       "--checkpoint_every=2", "--sample_every=1000"),
                            cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resumed from" in result.stdout and f"at step {last}" in result.stdout
    assert f"done: step {last + 2}" in result.stdout
    assert tf.train.latest_checkpoint(str(ckpt_dir)).endswith(f"ckpt-{last + 2}")


def test_mixed_bfloat16_trains_with_float32_weights_and_output(tmp_path):
    config = tiny_config(workdir=str(tmp_path / "w")).replace(
        train={"train_steps": 2}, runtime={"mixed_precision": "mixed_bfloat16",
                                           "sample_every": 1000})
    try:
        result = train_lib.run(config)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        model = tiny_model(config)                  # built under the bf16 policy, like run()
        assert model.generator.get_layer("to_rgb").compute_dtype == "float32"
        conv_layer = model.generator.video_convs[0].steps[0].conv
        assert conv_layer.compute_dtype == "bfloat16" and conv_layer.kernel.dtype == "float32"
        assert model.generate(model.sample_inputs(1, 0)).dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert result["step"] == 2 and all(np.isfinite(v) for v in result["logs"].values())


def test_a_model_consuming_two_real_batches_per_step_gets_them_from_the_loop(tmp_path,
                                                                               monkeypatch):
    original = g3an.G3AN.train_step
    shapes = []

    def two_batches(self, batch, phases=None):
        shapes.append(tuple(batch["video"].shape[:2]))
        logs = original(self, {k: v[0] for k, v in batch.items()}, phases)
        # Which example the second batch starts at (its seed's example number).
        return {**logs, "second_batch_start": tf.cast(batch["seed"][1, 0, 1], tf.float32)}

    monkeypatch.setattr(g3an.G3AN, "real_batches_per_step", lambda self: 2)
    monkeypatch.setattr(g3an.G3AN, "train_step", two_batches)
    config = tiny_config(workdir=str(tmp_path / "w")).replace(train={"train_steps": 2})
    result = train_lib.run(config)
    assert set(shapes) == {(2, config.train.batch_size)}
    # Step 2 consumed elements 2B..4B-1 of the stream: its second batch starts at 3B.
    assert result["logs"]["second_batch_start"] == 3 * config.train.batch_size


def test_progress_averages_each_loss_over_the_steps_that_logged_it():
    """A multi-task model logs a task's losses only on that task's steps (TwoStreamVAN: content
    3 of 5 steps): their mean is over those steps, and every phase's total is on the line."""
    stream = io.StringIO()
    progress = callbacks.ProgressAndScalars(None, 5, 5, 16, {}, start_step=0, stream=stream)
    for step in range(1, 6):
        task = "content" if step in (1, 2, 4) else "video"
        progress.on_step_end(step, {f"{task}_d_total": float(step), f"{task}_mse": 0.5,
                                    f"{task}_kl": 9.0})
    line = stream.getvalue()
    assert "content_d_total=2.333" in line and "video_d_total=4.000" in line, line
    assert "content_mse=0.500" in line and "video_mse=0.500" in line, line
    assert "_kl=" not in line, line
