"""Model registry: the only place that knows which models exist.

MODELS maps each model key to its VideoGAN subclass, CAPABILITIES each key to what the model can
do beyond `sample` (capabilities(key), readable without building a model); build(config,
num_classes, strategy) is the one way to make a model (training, sampling, export, evaluation,
the benchmark and the tests); parse_model_params() turns strict `--model_param NAME=VALUE` strings into typed values.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterable

from tfvidgen.config import Config
from tfvidgen.models.base import Capabilities
from tfvidgen.models.dual_mtgan import DualMTGAN
from tfvidgen.models.g3an import G3AN
from tfvidgen.models.inmodegan import InMoDeGAN
from tfvidgen.models.mvt_tsa import MVTTSA
from tfvidgen.models.twostreamvan import TwoStreamVAN

__all__ = ["MODELS", "CAPABILITIES", "Capabilities", "build", "build_model", "capabilities",
           "model_config", "parse_model_params"]

MODELS = {"g3an": G3AN, "inmodegan": InMoDeGAN, "mvt_tsa": MVTTSA,
          "twostreamvan": TwoStreamVAN, "dual_mtgan": DualMTGAN}
CAPABILITIES = {key: cls.CAPABILITIES for key, cls in MODELS.items()}


def _model_class(key: str):
    if key not in MODELS:
        raise ValueError(f"--model={key!r}: not built yet or unknown; available: "
                         f"{', '.join(sorted(MODELS))}")
    return MODELS[key]


def capabilities(key: str) -> Capabilities:
    """What model `key` can do beyond `sample` (variable_length, image_input, transfer, steer)."""
    if key not in CAPABILITIES:
        raise ValueError(f"unknown model {key!r}: no capabilities declared; available: "
                         f"{', '.join(sorted(CAPABILITIES))}")
    return CAPABILITIES[key]


def _settable_fields(cls) -> dict:
    data_fields = getattr(cls.Config, "DATA_FIELDS", ())
    return {f.name: f for f in dataclasses.fields(cls.Config) if f.name not in data_fields}


def _convert(name: str, text: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--model_param {name}={text!r}: expected true or false")
    try:
        return type(default)(text)
    except ValueError:
        raise ValueError(f"--model_param {name}={text!r}: expected {type(default).__name__}") \
            from None


def parse_model_params(model: str, params: Iterable[str]) -> dict:
    """["NAME=VALUE", ...] -> {NAME: typed value}; unknown names are errors listing valid ones."""
    fields = _settable_fields(_model_class(model))
    parsed = {}
    for item in params:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"--model_param {item!r}: expected NAME=VALUE")
        if name not in fields:
            raise ValueError(f"--model_param {name!r} is not a {model} parameter; valid: "
                             f"{', '.join(sorted(fields))}")
        parsed[name] = _convert(name, value, fields[name].default)
    return parsed


def model_config(config: Config, num_classes: int):
    """The model's own frozen config: paper defaults <- data sizes <- --model_param values."""
    cls = _model_class(config.model)
    known = _settable_fields(cls)
    unknown = set(config.model_params) - set(known)
    if unknown:
        raise ValueError(f"--model_param {sorted(unknown)[0]!r} is not a {config.model} "
                         f"parameter; valid: {', '.join(sorted(known))}")
    return cls.Config(**dict(config.model_params), resolution=config.data.resolution,
                      num_frames=config.data.num_frames, num_classes=num_classes).validate()


def build_model(config: Config, num_classes: int):
    """Constructs (does not build) the configured model. Call inside strategy.scope()."""
    return _model_class(config.model)(model_config(config, num_classes), config.train)


def build(config: Config, num_classes: int, strategy=None, training: bool = True):
    """The configured model with every variable created, in `strategy`'s scope when given.

    training=True: also its declared optimizers with their slots and the step (model.compile);
    False: the networks and the step only, for sampling, export and evaluation.
    """
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(config, num_classes)
        if training:
            model.compile()
        else:
            model.prepare_inference()
    return model
