"""Networks built from a model's frozen config dataclass: Keras (de)serialisation through it."""

from __future__ import annotations

import dataclasses

import keras

__all__ = ["ConfiguredModel"]


class ConfiguredModel(keras.Model):
    """A keras.Model whose constructor takes a frozen config dataclass `cfg` (set `self.cfg`):
    get_config stores it as a dict, from_config rebuilds it as CONFIG (the subclass's config
    class) and calls the constructor with it."""

    CONFIG: type | None = None

    def get_config(self):
        return {**super().get_config(), "cfg": dataclasses.asdict(self.cfg)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(cls.CONFIG(**config.pop("cfg")), **config)
