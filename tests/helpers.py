"""Tiny configurations and helpers shared by the tests (CPU, seconds per step)."""

import dataclasses
import json
import os
import socket
import subprocess
import sys

import numpy as np

from tfvidgen import child_env, models
from tfvidgen.config import Config, DataConfig, RuntimeConfig, TrainConfig
from tfvidgen.data import pipeline, synthetic
from tfvidgen.eval import classifier, metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FLAGS = ["--model=g3an", "--dataset=synthetic_shapes", "--resolution=16", "--num_frames=4",
              "--num_videos=64", "--video_length=16", "--batch_size=4",
              "--model_param=base_channels=4", "--model_param=d_channels=4",
              "--model_param=z_appearance=8", "--model_param=z_motion=4",
              # Pinned, not auto: the suite computes the same numbers on every kind of CPU.
              "--mixed_precision=float32"]


def train_cmd(workdir, *extra):
    """`python -m tfvidgen.train` of a tiny G3AN writing to workdir."""
    return [sys.executable, "-m", "tfvidgen.train", *TINY_FLAGS, f"--workdir={workdir}", *extra]


def local_workers(workdir, *flags, count: int = 2, merge_stderr: bool = False) -> list:
    """`count` local `--strategy=multi_worker` training processes of the tiny G3AN on free
    ports (TF_CONFIG per worker), stdout/stderr piped (stderr into stdout if merge_stderr)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    return [subprocess.Popen(
        train_cmd(workdir, "--strategy=multi_worker", *flags), cwd=REPO,
        env=subprocess_env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {
            "type": "worker", "index": i}}), TF_CONFIG_TASK=f"worker{i}"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True) for i in range(count)]


def subprocess_env(**extra):
    """The environment of a tfvidgen subprocess: this checkout importable (tfvidgen.child_env;
    TensorFlow's log level is this process's: tfvidgen's quiet default unless the user set one)."""
    return child_env(**extra)


#: each model's --model_param values at test size (T=4, 16x16, a few channels); every
#: registered model needs an entry (tests/models/contract_test.py runs over all of them)
TINY_PARAMS = {
    "g3an": {"base_channels": 4, "d_channels": 4, "z_appearance": 8, "z_motion": 4},
    "inmodegan": {"z_appearance": 8, "z_motion": 4, "w_dim": 8, "num_directions": 8,
                  "mapping_layers": 2, "motion_layers": 2, "g_channel_base": 64,
                  "g_channel_max": 8, "d_channel_base": 64, "d_channel_max": 8,
                  "speeds": "1,3", "r1_interval": 2,
                  # Groups of 2 consecutive videos: the same on 1 device and on 2 replicas.
                  "mbstd_group": 2},
    "dual_mtgan": {"base_channels": 4, "motion_channels": 4, "d_channels": 4, "content_dim": 8,
                   "motion_dim": 4, "frame_motion_dim": 4, "lstm_units": 8},
    # conditional=false: the contract's unconditional tests (MVT itself defaults to labels)
    "mvt_tsa": {"conditional": False, "g_channels": 1, "d_channels": 2, "z_a_dim": 2,
                "z_b_dim": 2, "z_c_dim": 4, "gru_units": 8, "class_dim": 4,
                "attention_resolution": 8, "image_frames": 2},
    "twostreamvan": {"conditional": False, "gf_dim": 4, "content_dim": 8, "motion_dim": 4,
                     "motion_width": 4, "joint_dim": 4, "kernel_size": 3, "num_scales": 2,
                     # untrained, the re-encode loop shrinks frames towards G_c(0): no warm-up
                     # keeps seed-dependent frames in the tiny generate() tests
                     "warmup_frames": 0},
}


def tiny_config(model="g3an", workdir="unused", **params) -> Config:
    """T=4, 16x16, a few channels (TINY_PARAMS[model]) on synthetic_shapes."""
    return Config(model=model, model_params={**TINY_PARAMS[model], **params},
                  data=DataConfig(dataset="synthetic_shapes", resolution=16, num_frames=4,
                                  num_videos=64, video_length=16),
                  train=TrainConfig(batch_size=4, train_steps=2),
                  # float32, not auto: tests compute the same numbers on every kind of CPU.
                  runtime=RuntimeConfig(workdir=workdir, mixed_precision="float32", log_every=1,
                                        checkpoint_every=1, sample_every=1,
                                        num_sample_videos=2)).validate()


def training_batches(config, n: int, model=None) -> list:
    """The first n batches training would give `model` (real_batches_per_step() of them per step:
    entries [k, B, ...] when k > 1)."""
    k = model.real_batches_per_step() if model is not None else 1
    make = pipeline.TRAINING_DATA[model.TRAINING_DATA if model is not None else "clips"]
    data = make(config.data, config.train.batch_size, 0, real_batches=k)
    return list(data.take(n))


def tiny_model(config=None, num_classes=5):
    """The model of `config` as training builds it (declared optimizers: Adam(2e-4, 0.5, 0.999))."""
    return models.build(config or tiny_config(), num_classes)


# The evaluation classifier at test-budget size: synthetic_actions at 16x16x8, ~90 s to train on
# 2 cores, once per run (conftest's shared fixture). 800 steps, not 400: at 400 the identity share
# of a shared actor fell to 0.75 on an AVX2 CPU with oneDNN off (0.875-1.0 here over 10 runs);
# at 800, over 5 seeds x {oneDNN on, off, off with AVX2 kernels} (tools/measure_margins.py):
# action accuracy 0.89-0.98, actor accuracy 0.96-1.0 (chance 0.125 for both).
CLASSIFIER_PROTOCOL = classifier.ClassifierProtocol(
    dataset="synthetic_actions", data_dir="", resolution=16, num_frames=8, max_stride=2,
    num_classes=8, num_identities=8, steps=800, batch_size=16, width=16)


def eval_config(**params) -> Config:
    """A tiny G3AN config whose videos match CLASSIFIER_PROTOCOL (synthetic_actions, T=8)."""
    return tiny_config(**params).replace(data={"dataset": "synthetic_actions", "num_frames": 8})


def eval_gan(**params):
    """An untrained tiny G3AN of eval_config(**params)."""
    return tiny_model(eval_config(**params), num_classes=CLASSIFIER_PROTOCOL.num_classes)


def real_test_videos(offset: int, count: int = 96):
    """(videos, labels) of CLASSIFIER_PROTOCOL's real test split, starting at video `offset`."""
    batches = list(classifier.test_split(CLASSIFIER_PROTOCOL, 32).skip(offset // 32)
                   .take(count // 32))
    return (np.concatenate([b["video"].numpy() for b in batches]),
            np.concatenate([b["label"].numpy() for b in batches]))


def set_scores(clf, videos, labels, real_features, rer) -> dict:
    """H(y|v), IS, FD against real_features and S3 (60-step SeR: enough to rank) of one set."""
    out = classifier.predict(clf, videos)
    on_videos = classifier.train_on_arrays(
        videos, labels, dataclasses.replace(CLASSIFIER_PROTOCOL, steps=60), log=lambda *_: None)
    res = float((out["action"].argmax(1) == labels).mean())
    return {"h_y_given_v": metrics.conditional_entropy(out["action"]),
            "is": metrics.inception_score(out["action"]),
            "fd": metrics.frechet_distance_from_features(out["features"], real_features),
            "s3": metrics.s3_score(classifier.real_test_accuracy(on_videos, CLASSIFIER_PROTOCOL),
                                   res, rer)}


def identity_groups(groups: int = 16, per_group: int = 4, seed: int = 3):
    """Two sets of `groups` x `per_group` videos at CLASSIFIER_PROTOCOL's size: in `shared`, each
    group keeps one actor and background while the motion varies; `shuffled` is the same videos
    with the actor redrawn per video."""
    rng = np.random.default_rng(seed)
    shared, shuffled = [], []
    for group in range(groups):
        base = synthetic.sample_factors("synthetic_actions", 99, group)
        for k in range(per_group):
            motion = synthetic.sample_factors("synthetic_actions", 98, group * per_group + k)
            same = dataclasses.replace(motion, actor=base.actor, background=base.background)
            other = dataclasses.replace(same, actor=int(rng.integers(len(synthetic.ACTORS))))
            for target, factors in ((shared, same), (shuffled, other)):
                frames = synthetic.render_actions(factors, range(0, 16, 2), 16)
                target.append(frames.astype(np.float32) / 127.5 - 1.0)
    return np.stack(shared), np.stack(shuffled)


def identity_share(clf, videos, per_group: int = 4) -> float:
    """Share of videos whose predicted identity equals their group's first video's."""
    ids = classifier.predict(clf, videos)["identity"].argmax(1).reshape(-1, per_group)
    return float((ids[:, 1:] == ids[:, :1]).mean())
