"""Reads a shipped configs/<name>.cfg into flag values and parsed model params, for the tools
that rebuild a config's model without running the train CLI (benchmark.py,
official_benchmark.py). Only the file's own lines are read: a nested --flagfile= is not
followed (the configs these tools read name everything they need themselves)."""

from __future__ import annotations

import os

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def read(name: str) -> tuple[dict, dict]:
    """({flag: value string} of configs/<name>.cfg, its model params parsed for its model)."""
    from tfvidgen import models
    values, params = {}, []
    with open(os.path.join(REPO, "configs", f"{name}.cfg")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("--model_param="):
                params.append(line[len("--model_param="):])
            elif line.startswith("--") and "=" in line:
                key, _, value = line[2:].partition("=")
                values[key] = value
    return values, models.parse_model_params(values["model"], params)
