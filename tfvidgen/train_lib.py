"""run(config): the one training loop, for the default, mirrored and multi_worker strategies alike.

A tf.function around `strategy.run(model.train_step)` over
`strategy.distribute_datasets_from_function(...)` (Keras 3.15 `fit` fails under
MultiWorkerMirroredStrategy on Keras 3.15). Per-replica logs are averaged across replicas; the EMA and
the step counter are updated in cross-replica context.

Phases: the model says which of its phases run at each step (chosen here, on the host); one traced
function is kept per distinct phase tuple, so no tf.cond decides what an optimizer applies.

Resume: one tf.train.Checkpoint (model.checkpoint()) holds every declared network by item (with
spectral-norm and BN state), every declared optimizer with its slots, and the step. Every random
draw is keyed by (seed, example number) and the data order by (seed, step) (a step consumes the
model's real_batches_per_step() batches, counted in the skip), so the step IS the RNG
state and the data position: a run killed at any point and started again with the same command
continues from its last checkpoint exactly as if it had not stopped.

Metrics while training (--eval_every): tfvidgen.eval.during_training, on the chief only. Its
classifier is prepared before the seeds are set, and it only reads weights, so a run with it
trains the same weights as a run without.
"""

from __future__ import annotations

import json
import os
import subprocess

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfvidgen import (callbacks, checkpoints, distribute, errors, hardware, models, preemption,
                      sources)
from tfvidgen import workdir as workdir_lib
from tfvidgen.config import Config
from tfvidgen.data import pipeline

__all__ = ["run", "build_for_inference", "CHECKPOINT_DIR", "last_checkpoint_step"]

CHECKPOINT_DIR = workdir_lib.CHECKPOINT_DIR
#: inference loading lives in tfvidgen.workdir; this name stays for callers of today
build_for_inference = workdir_lib.load_for_inference
_SAMPLE_SEED = 20200


def _git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(__file__), timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _write_run_files(config: Config, workdir: str, flags_writer, info: dict) -> None:
    os.makedirs(workdir, exist_ok=True)
    payload = json.loads(config.to_json())
    payload["git_revision"] = _git_revision()
    payload["dataset_info"] = info
    # Each file is complete or absent: a full disk leaves the previous one and no .partial.
    with errors.atomic_output(os.path.join(workdir, "config.json")) as tmp:
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True)
    if flags_writer is not None:
        with errors.atomic_output(os.path.join(workdir, "flags.cfg")) as tmp:
            flags_writer(tmp)


_read_stored_config = workdir_lib.read_stored_config


def check_resume(config: Config, workdir: str, log=print) -> None:
    """Before anything is written: refuses a resume whose configuration changes shapes or
    semantics (one line naming each changed flag); logs the changes that may apply."""
    if not checkpoints.available(os.path.join(workdir, CHECKPOINT_DIR)):
        return
    if not os.path.isfile(os.path.join(workdir, "config.json")):
        log(f"warning: {workdir} has checkpoints but no config.json: resuming without checking "
            f"that the configuration matches")
        return
    stored, _ = _read_stored_config(workdir)
    refused, allowed = config.resume_changes(stored)
    if refused:
        raise ValueError(
            f"--workdir={workdir} holds a run with another configuration and cannot resume with: "
            f"{'; '.join(refused)}. Use a new --workdir, or rerun with "
            f"--flagfile={os.path.join(workdir, 'flags.cfg')}")
    for change in allowed:
        log(f"resume: {change}")


def last_checkpoint_step(workdir: str) -> int | None:
    """The step of the newest checkpoint in workdir (by its files), or None."""
    found = checkpoints.available(os.path.join(workdir, CHECKPOINT_DIR))
    return max((step for step, _ in found), default=None)


def _log(line: str) -> None:
    print(line, flush=True)


def _sample_labels(num_classes: int, count: int):
    return tf.constant(np.arange(count) % max(1, num_classes), tf.int32)


def run(config: Config, flags_writer=None) -> dict:
    """Trains (or resumes) the configured model in config.runtime.workdir.

    Returns:
      {"step": final step, "logs": last step's logs (floats), "resumed_from": step or None}.
    Raises:
      callbacks.NonFiniteError: a loss/weight became non-finite (last good checkpoint kept).
      preemption.Preempted: SIGTERM arrived; a checkpoint at the current step was saved.
      ValueError: a bad configuration, naming the flag.
    """
    rt, train = config.runtime, config.train
    distribute.split_cpu(rt.num_cpu_replicas)
    strategy = distribute.make_strategy(rt)
    precision = hardware.choose_precision(rt.mixed_precision)
    if train.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"--batch_size={train.batch_size} must be divisible by the number of "
                         f"replicas ({strategy.num_replicas_in_sync})")
    chief = distribute.is_chief()
    # Non-chief workers write their (required) checkpoint copies to a private directory.
    workdir = rt.workdir if chief else os.path.join(rt.workdir, "workers",
                                                    os.environ.get("TF_CONFIG_TASK", "worker"))
    info = pipeline.dataset_info(config.data)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f"--workdir={workdir} is a file, not a directory")
    check_resume(config, workdir)
    eval_setup = None
    if rt.eval_every and chief:     # before the seeds are set: its own seeding stays its own
        from tfvidgen.eval import during_training
        eval_setup = during_training.prepare(config, info, workdir, log=_log)
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(rt.seed)

    model = models.build(config, info["num_classes"], strategy)
    step = model.step
    with strategy.scope():
        checkpoint = model.checkpoint()
    ckpt_dir = os.path.join(workdir, CHECKPOINT_DIR)
    resumed_from = None
    restored = checkpoints.restore_newest(
        lambda prefix: model.restore_for_training(checkpoint, prefix, log=print), ckpt_dir,
        warn=lambda line: print(line, flush=True))
    if restored:
        for prefix in checkpoints.set_aside(ckpt_dir, restored) if chief else ():
            print(f"warning: moved unreadable {prefix} to {ckpt_dir}/unreadable/", flush=True)
        checkpoints.rewrite_index(ckpt_dir, restored)
        # Learning rates are optimizer variables, so the restore brought back the old ones: the
        # configured rates apply from here on (a change is logged by check_resume).
        model.reset_learning_rates()
        resumed_from = int(step.numpy())
        print(f"resumed from {restored} at step {resumed_from}", flush=True)
    elif train.init_from:          # a new run warm-started from a user's checkpoint
        from tfvidgen.warm_start import warm_start
        with strategy.scope():
            warm_start(model, train.init_from, log=lambda line: print(line, flush=True))
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=rt.keep_checkpoints)
    start = int(step.numpy())
    if chief:       # only now: a refused or failed resume leaves config.json and flags.cfg as they were
        _write_run_files(config, workdir, flags_writer, info)

    real_batches = model.real_batches_per_step()
    make_data = pipeline.TRAINING_DATA[model.TRAINING_DATA]
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: make_data(config.data, train.batch_size, rt.seed, ctx,
                              start_step=start, real_batches=real_batches))
    traced: dict = {}

    def train_step(phases: tuple):
        """The traced step running `phases` (one tf.function per distinct tuple)."""
        if phases not in traced:
            def replica_step(batch):
                return model.train_step(batch, phases)
            if rt.jit_compile:
                replica_step = tf.function(replica_step, jit_compile=True)

            @tf.function
            def step_fn(batch):
                per_replica = strategy.run(replica_step, args=(batch,))
                logs = {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                        for k, v in per_replica.items()}
                model.update_ema()
                step.assign_add(1)
                return logs
            traced[phases] = step_fn
        return traced[phases]

    writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard")) if chief else None
    # image-to-video models animate synthetic first frames of the same seeds (sources)
    sample_latents = sources.seeded_inputs(
        model, rt.num_sample_videos, _SAMPLE_SEED,
        _sample_labels(info["num_classes"], rt.num_sample_videos))
    checkpointer = callbacks.Checkpointer(manager, rt.checkpoint_every, model.variables)
    profiler = callbacks.Profiler(os.path.join(workdir, "tensorboard"), rt.profile_steps)
    progress = callbacks.ProgressAndScalars(writer, rt.log_every, train.train_steps,
                                            train.batch_size, model.learning_rates(), start)
    ema_statistics = callbacks.EMAStatistics(
        model, lambda fn, latents: strategy.run(fn, args=(latents,)),
        (rt.sample_every, rt.checkpoint_every, rt.eval_every), train.train_steps)
    hooks = [progress, ema_statistics,
             callbacks.VideoSamples(writer, rt.sample_every, model, sample_latents),
             profiler, checkpointer]
    evaluator = None
    if eval_setup is not None:      # after the checkpointer: a step is saved before it is scored
        evaluator = during_training.MetricsDuringTraining(
            eval_setup, model, workdir, writer, rt.eval_every, train.train_steps, start,
            progress=progress, log=_log)
        hooks.append(evaluator)
    print(f"training {config.model} on {config.data.dataset} with {strategy.num_replicas_in_sync} "
          f"replica(s), global batch {train.batch_size}, {precision}, steps {start} -> {train.train_steps}, "
          f"workdir {workdir}", flush=True)
    logs: dict = {}
    iterator = iter(dataset)
    cluster_preemption = None
    if rt.strategy == "multi_worker":
        cluster_preemption = preemption.ClusterPreemption(strategy, checkpointer.save, ckpt_dir)
    with preemption.SigtermWatch(enabled=rt.strategy != "multi_worker") as watch:
        try:
            for current in range(start + 1, train.train_steps + 1):
                if profiler.window and current == profiler.window[0] + 1:
                    logging.info("profiling steps %d-%d", *profiler.window)
                with tf.profiler.experimental.Trace("train", step_num=current, _r=1):
                    phases = tuple(model.phases(current - 1))       # current - 1 steps finished
                    logs = {k: float(v) for k, v in train_step(phases)(next(iterator)).items()}
                callbacks.assert_finite(current, logs, checkpointer.last_saved)
                for hook in hooks:
                    hook.on_step_end(current, logs)
                if watch.requested and current < train.train_steps:
                    checkpointer.save(current)      # EMA statistics as they are: see preemption
                    raise preemption.Preempted(current, ckpt_dir)
                if cluster_preemption is not None and current < train.train_steps:
                    cluster_preemption.after_step(current)
            ema_statistics.recalibrate(int(step.numpy()))
            checkpointer.save(int(step.numpy()))
            if evaluator is not None:   # a run stopped during its last evaluation scores it now
                evaluator.on_step_end(int(step.numpy()), logs)
        finally:
            profiler.close()
            if writer is not None:
                writer.flush()
    return {"step": int(step.numpy()), "logs": logs, "resumed_from": resumed_from}
