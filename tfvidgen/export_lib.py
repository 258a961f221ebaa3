"""Writing a tfvidgen export: a TF Serving-ready SavedModel of a model's serving endpoints.

export_model writes `model.serving_endpoints()` as signatures (core TF ops only; every input
checked in the graph, see models/base.py) to <export_base>/<version>/, with
assets.extra/tfvidgen.json: the caller's metadata (training config, step, ...), the declared
inputs (shape, dtype, role) of the latents and of every endpoint, the serving limits and the
model's capabilities (tfvidgen.models.Capabilities as a JSON object), so that a reader
(tfvidgen.exported, tools/serving_client.py) knows what the export can do without tfvidgen's
model classes. The SavedModel is written to a hidden temporary directory (TF Serving ignores
names that are not integers) and renamed into place only when complete; an existing version is
never overwritten.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil

__all__ = ["ASSET_FILE", "export_model", "next_version", "describe_signatures"]

ASSET_FILE = os.path.join("assets.extra", "tfvidgen.json")


def next_version(export_base: str) -> int:
    existing = [int(d) for d in os.listdir(export_base) if d.isdigit()] \
        if os.path.isdir(export_base) else []
    return max(existing, default=0) + 1


def _describe_input(i) -> dict:
    """One endpoint input as JSON: per-example shape (per_request: the whole value), dtype, and
    the range the graph enforces (floats |value| <= bound, ints in [low, high))."""
    out = {"name": i.name, "shape": list(i.shape), "dtype": i.dtype, "role": i.role,
           "per_request": i.per_request}
    if i.int_range is not None:
        out["int_range"] = [int(v) for v in i.int_range]
    if i.bound is not None:
        out["bound"] = float(i.bound)
    return out


def _rename_into_place(tmp: str, export_base: str, version: int, explicit: bool) -> str:
    """Renames the finished tmp directory to <export_base>/<version> (atomic: TF Serving, which
    only loads numeric directories, sees all of a version or nothing). Another export may have
    taken the version since it was chosen: then the next free one, unless it was asked for."""
    while True:
        final = os.path.join(export_base, str(version))
        try:
            os.rename(tmp, final)      # fails on an existing non-empty directory: never replaces
            return final
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            if explicit:
                raise FileExistsError(f"--version={version}: {final} was written by another "
                                      f"export meanwhile; versions are never overwritten") from None
            version = next_version(export_base)


def export_model(model, metadata: dict, export_base: str, version: int | None = None) -> str:
    """Exports `model.serving_endpoints()` to <export_base>/<version>/ atomically.

    Concurrent exports to one base each get their own version (the next free one when
    `version` is None).

    Returns:
      the version directory.
    Raises:
      FileExistsError: that version exists already (it is left untouched).
    """
    import keras

    os.makedirs(export_base, exist_ok=True)
    requested, version = version, version or next_version(export_base)
    final = os.path.join(export_base, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"--version={version}: {final} exists; versions are never "
                              f"overwritten (omit --version to use {next_version(export_base)})")
    tmp = os.path.join(export_base, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        archive = keras.export.ExportArchive()
        for network in model.inference_networks():      # declared by role (models/base.py)
            archive.track(network)
        for name, (fn, signature) in model.serving_endpoints().items():
            archive.add_endpoint(name, fn, input_signature=signature)
        archive.write_out(tmp, verbose=False)
        latents = {i.name: {"shape": i.spec.shape.as_list(), "dtype": i.spec.dtype.name,
                            "role": i.role} for i in model.inputs()}
        # What each signature accepts (its TensorSpecs declare no shapes; see
        # models/base.py serving_endpoints): for clients and tools/fuzz_serving.py.
        endpoints = {name: [_describe_input(i) for i in inputs]
                     for name, inputs in model.endpoint_inputs().items()}
        limits = {"max_serving_batch": int(model.max_serving_batch),
                  "max_serving_latent": float(model.max_serving_latent)}
        capabilities = dataclasses.asdict(model.CAPABILITIES)
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, ASSET_FILE), "w") as f:
            json.dump({**metadata, "latents": latents, "endpoints": endpoints,
                       "capabilities": capabilities, **limits}, f, indent=2, sort_keys=True)
        final = _rename_into_place(tmp, export_base, version, explicit=requested is not None)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def describe_signatures(saved_model_dir: str) -> str:
    """Human-readable signature list of an exported model (names, dtypes, shapes).

    The signatures declare no input shapes (the graph checks them, so that a wrong one is an
    error naming the input); the shapes shown are the checked ones, from the export's metadata.
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model_dir)
    checked = {"seed": [None]}                  # `sample` / `latents`: int64 [B] (models/base.py)
    asset = os.path.join(saved_model_dir, ASSET_FILE)
    if os.path.isfile(asset):
        with open(asset) as f:
            checked.update({k: v["shape"] for k, v in json.load(f).get("latents", {}).items()})

    def shape(name, spec):
        if spec.shape.rank is None and name in checked:
            return tuple(checked[name])
        return tuple(spec.shape.as_list()) if spec.shape.rank is not None else "<any>"

    lines = []
    for name, fn in sorted(loaded.signatures.items()):
        inputs = ", ".join(f"{k}: {v.dtype.name} {shape(k, v)}"
                           for k, v in sorted(fn.structured_input_signature[1].items()))
        outputs = ", ".join(f"{k}: {v.dtype.name} {v.shape}"
                            for k, v in sorted(fn.structured_outputs.items()))
        lines.append(f"  {name}({inputs}) -> {outputs}")
    return "\n".join(lines)
