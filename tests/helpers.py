"""Tiny configurations shared by the tests (CPU, seconds per step)."""

import keras

from tfvidgen import models
from tfvidgen.config import Config, DataConfig, RuntimeConfig, TrainConfig
from tfvidgen.eval import classifier

TINY_G3AN = {"base_channels": 4, "d_channels": 4, "z_appearance": 8, "z_motion": 4}


def tiny_config(model="g3an", workdir="unused", **params) -> Config:
    """T=4, 16x16, 4-8 channels on synthetic_shapes."""
    return Config(model=model, model_params={**TINY_G3AN, **params},
                  data=DataConfig(dataset="synthetic_shapes", resolution=16, num_frames=4,
                                  num_videos=64, video_length=16),
                  train=TrainConfig(batch_size=4, train_steps=2),
                  runtime=RuntimeConfig(workdir=workdir, log_every=1, checkpoint_every=1,
                                        sample_every=1, num_sample_videos=2)).validate()


def tiny_model(config=None, num_classes=5):
    config = config or tiny_config()
    model = models.build_model(config, num_classes)
    model.compile(keras.optimizers.Adam(2e-4, 0.5, 0.999), keras.optimizers.Adam(2e-4, 0.5, 0.999))
    return model


# The evaluation classifier at test-budget size: synthetic_actions at 16x16x8, 400 steps, ~45 s
# to train on 2 cores; 84% real test action accuracy (chance 12.5%), 100% actor accuracy.
CLASSIFIER_PROTOCOL = classifier.ClassifierProtocol(
    dataset="synthetic_actions", data_dir="", resolution=16, num_frames=8, max_stride=2,
    num_classes=8, num_identities=8, steps=400, batch_size=16, width=16)


def eval_config(**params) -> Config:
    """A tiny G3AN config whose videos match CLASSIFIER_PROTOCOL (synthetic_actions, T=8)."""
    return tiny_config(**params).replace(data={"dataset": "synthetic_actions", "num_frames": 8})


def eval_gan(**params):
    """An untrained tiny G3AN of eval_config(**params)."""
    return tiny_model(eval_config(**params), num_classes=CLASSIFIER_PROTOCOL.num_classes)
