"""Config: finite learning rates, config.json round trip with unknown keys named, resume rules."""

import json

import pytest

from tfvidgen import config


def test_non_finite_learning_rates_are_refused_naming_the_flag():
    for value in (float("inf"), float("nan"), 0.0):
        with pytest.raises(ValueError, match="--g_lr="):
            config.Config(train=config.TrainConfig(g_lr=value)).validate()


def test_json_round_trip_and_unknown_keys_named():
    original = config.Config(model_params={"conditional": True},
                             runtime=config.RuntimeConfig(profile_steps=(1, 3))).validate()
    assert config.Config.from_json(original.to_json()) == original
    raw = json.loads(original.to_json())
    raw["train"]["learning_rate"] = 1.0
    raw["extra"] = 1
    with pytest.raises(ValueError, match=r"w/config.json has unknown key\(s\) extra, "
                                         r"train.learning_rate"):
        config.Config.from_json(json.dumps(raw), source="w/config.json")
    with pytest.raises(ValueError, match="not valid JSON"):
        config.Config.from_json("{", source="w/config.json")


def test_resume_changes_split_shape_changes_from_run_settings():
    stored = config.Config(model_params={"base_channels": 16})
    new = config.Config(model_params={"base_channels": 8},
                        data=config.DataConfig(resolution=32),
                        train=config.TrainConfig(train_steps=20000, g_lr=1e-3, ema_decay=0.99),
                        runtime=config.RuntimeConfig(log_every=10, seed=3))
    refused, allowed = new.resume_changes(stored)
    assert refused == ["--model_param base_channels 16 -> 8", "--resolution 64 -> 32",
                       "--ema_decay 0.0 -> 0.99", "--seed 0 -> 3"]
    assert allowed == ["--train_steps 10000 -> 20000", "--g_lr 0.0002 -> 0.001",
                       "--log_every 50 -> 10"]
    assert stored.resume_changes(stored) == ([], [])


def test_metrics_while_training_are_checked_and_may_change_on_resume():
    for field, value, message in (("eval_every", -1, "--eval_every=-1"),
                                  ("eval_samples", 1, "--eval_samples=1"),
                                  ("eval_classifier_steps", 0, "--eval_classifier_steps=0")):
        with pytest.raises(ValueError, match=message):
            config.Config(runtime=config.RuntimeConfig(**{field: value})).validate()
    stored = config.Config()
    new = config.Config(runtime=config.RuntimeConfig(eval_every=100, eval_samples=64,
                                                     eval_cache_dir="c"))
    assert new.resume_changes(stored) == ([], ["--eval_every 0 -> 100",
                                               "--eval_samples 128 -> 64",
                                               "--eval_cache_dir  -> c"])


def test_model_keys_are_the_registrys_and_seeds_share_one_range():
    from tfvidgen import models
    assert config.MODEL_KEYS == tuple(models.MODELS)
    with pytest.raises(ValueError, match=r"--model='nope' is invalid: expected one of g3an"):
        config.Config(model="nope").validate()
    assert config.check_seed(2 ** 62) == 2 ** 62
    for seed in (-1, 2 ** 62 + 1):
        with pytest.raises(ValueError, match=rf"^--seed={seed} is outside \[0, 2\*\*62\]$"):
            config.check_seed(seed)
        with pytest.raises(ValueError, match=rf"--seed={seed} is outside \[0, 2\*\*62\]"):
            config.Config(runtime=config.RuntimeConfig(seed=seed)).validate()
