"""SavedModel export: self-contained, core ops only, exact signatures, validation, atomic versions."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_config, tiny_model
from tfvidgen import export

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A script that must not import tfvidgen: it proves the SavedModel is self-contained.
_LOADER = textwrap.dedent("""
    import sys, numpy as np, tensorflow as tf
    path, inputs_npz, out_npz = sys.argv[1:4]
    loaded = tf.saved_model.load(path)
    data = dict(np.load(inputs_npz))
    latents = {k[len("lat_"):]: tf.constant(v) for k, v in data.items() if k.startswith("lat_")}
    out = {"default": loaded.signatures["serving_default"](**latents)["video"].numpy()}
    seeds = tf.constant(data["seeds"])
    out["sample1"] = loaded.signatures["sample"](seed=seeds)["video"].numpy()
    out["sample2"] = loaded.signatures["sample"](seed=seeds)["video"].numpy()
    out.update({"latents_" + k: v.numpy()
                for k, v in loaded.signatures["latents"](seed=seeds).items()})
    assert not any(m.startswith("tfvidgen") for m in sys.modules), "tfvidgen was imported"
    np.savez(out_npz, **out)
""")


def _run_loader(path, tmp_path, latents, seeds, name):
    inputs = tmp_path / f"{name}_in.npz"
    outputs = tmp_path / f"{name}_out.npz"
    np.savez(inputs, seeds=seeds, **{f"lat_{k}": v for k, v in latents.items()})
    script = tmp_path / "loader.py"
    script.write_text(_LOADER)
    result = subprocess.run([sys.executable, str(script), path, str(inputs), str(outputs)],
                            capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(outputs))


def test_fresh_process_without_tfvidgen_matches_in_process_generate(exported, tmp_path):
    model, path, _ = exported
    latents = {k: v.numpy() for k, v in model.sample_inputs(3, 5).items()}
    seeds = np.array([5, 6, 7], np.int64)
    first = _run_loader(path, tmp_path, latents, seeds, "a")
    second = _run_loader(path, tmp_path, latents, seeds, "b")
    direct = np.clip(np.round((model.generate(latents).numpy() + 1) * 127.5), 0, 255)
    # Tolerance: one uint8 level (float32 rounding at .5 boundaries between graph and eager).
    assert np.abs(first["default"].astype(int) - direct).max() <= 1
    assert first["default"].dtype == np.uint8 and first["default"].shape == (3, 4, 16, 16, 3)
    # sample: bit-identical across calls and processes, and equal to the same seeds' latents.
    np.testing.assert_array_equal(first["sample1"], first["sample2"])
    np.testing.assert_array_equal(first["sample1"], second["sample1"])
    np.testing.assert_array_equal(first["sample1"], first["default"])
    assert not np.array_equal(first["sample1"][0], first["sample1"][1])
    # latents: exactly the latents the checkpoint draws for those seeds.
    for name, value in model.sample_inputs(3, 5).items():
        np.testing.assert_array_equal(first["latents_" + name], value.numpy())


def test_exported_generator_samples_like_the_checkpoint(exported, tmp_path):
    from tfvidgen import sources
    from tfvidgen.exported import ExportedGenerator
    model, path, _ = exported
    generator = ExportedGenerator(path)
    assert generator.cfg.conditional is False and generator.config.model == "g3an"
    latents = generator.sample_inputs(3, 5)
    for name, value in model.sample_inputs(3, 5).items():
        np.testing.assert_array_equal(latents[name].numpy(), value.numpy())
    video = generator.generate(latents).numpy()
    assert video.dtype == np.float32 and video.min() >= -1 and video.max() <= 1
    assert np.abs(video - model.generate(latents).numpy()).max() <= 1.01 / 127.5
    with pytest.raises(FileNotFoundError, match="not a SavedModel directory"):
        ExportedGenerator(str(tmp_path))
    plain = tmp_path / "plain"
    tf.saved_model.save(tf.Module(), str(plain))
    with pytest.raises(FileNotFoundError, match="not written by tfvidgen.export"):
        ExportedGenerator(str(plain))
    for both_or_neither in (("w", path), (None, None), ("", "")):
        with pytest.raises(ValueError, match="^give exactly one of --workdir or --saved_model$"):
            sources.source_from(*both_or_neither)
    assert sources.source_from(None, path) == sources.Source(saved_model=path)
    with pytest.raises(ValueError, match="^--workdir is required$"):
        sources.source_from(None, exports=False)


def test_saved_model_cli_lists_the_documented_signatures(exported):
    _, path, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout
    for expected in ("signature_def['serving_default']", "signature_def['sample']",
                     "signature_def['latents']",
                     "inputs['z_appearance'] tensor_info:", "inputs['z_motion'] tensor_info:",
                     "inputs['seed'] tensor_info:", "dtype: DT_INT64", "dtype: DT_UINT8",
                     "outputs['video'] tensor_info:"):
        assert expected in shown, expected
    assert "shape: (-1, 4, 16, 16, 3)" in shown
    assert "shape: unknown_rank" in shown       # inputs: shapes are checked in the graph


def test_only_core_tensorflow_ops_and_config_asset(exported):
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    _, path, _ = exported
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    functions = {f.signature.name for f in graph.library.function}
    not_core = sorted(op for op in ops - functions if op_def_registry.get(op) is None)
    assert not not_core, not_core
    assert len(ops - functions) > 10
    with open(os.path.join(path, export.ASSET_FILE)) as f:
        metadata = json.load(f)
    assert metadata["config"]["model"] == "g3an"
    assert metadata["latents"]["z_appearance"]["shape"] == [None, 8]
    assert metadata["capabilities"] == {"variable_length": False, "image_input": False,
                                        "transfer": False, "steer": False}


def test_invalid_inputs_are_invalid_argument_naming_the_input(exported):
    _, path, _ = exported
    loaded = tf.saved_model.load(path)
    default = loaded.signatures["serving_default"]
    good_m = tf.zeros([2, 4])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"z_appearance must have shape \(batch, 8\), got shape.*\[2 5\]"):
        default(z_appearance=tf.zeros([2, 5]), z_motion=good_m)
    with pytest.raises(tf.errors.InvalidArgumentError, match="z_motion must have the same batch"):
        default(z_appearance=tf.zeros([2, 8]), z_motion=tf.zeros([3, 4]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="seed: the batch must not be empty"):
        loaded.signatures["sample"](seed=tf.zeros([0], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 256"):
        loaded.signatures["sample"](seed=tf.range(257, dtype=tf.int64))


def test_wrong_ranks_are_invalid_argument_naming_the_input(exported):
    """The signatures declare no shapes, so a wrong rank reaches the in-graph check (with a
    declared [None] a rank-0 seed failed inside map_fn with an error naming no input)."""
    _, path, _ = exported
    loaded = tf.saved_model.load(path)
    for signature in ("sample", "latents"):
        for seed in (tf.constant(3, tf.int64), tf.constant([[3], [4]], tf.int64)):
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match=r"seed must have shape \(batch\), got shape"):
                loaded.signatures[signature](seed=seed)
    default = loaded.signatures["serving_default"]
    for z_a in (tf.zeros([8]), tf.zeros([2, 1, 8]), tf.zeros([])):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"z_appearance must have shape \(batch, 8\)"):
            default(z_appearance=z_a, z_motion=tf.zeros([2, 4]))
    assert loaded.signatures["sample"].structured_input_signature[1]["seed"].shape.rank is None


def _with_value(latents: dict, name: str, value: float) -> dict:
    """A copy of `latents` (NumPy) with one element of `name` set to `value`, as tensors."""
    bad = {k: v.copy() for k, v in latents.items()}
    bad[name][1, 2] = value
    return {k: tf.constant(v) for k, v in bad.items()}


def test_non_finite_and_huge_latents_are_refused_naming_the_input(exported):
    """NaN, +-inf and 1e30 used to come back as a plausible all-black video."""
    model, path, _ = exported
    loaded = tf.saved_model.load(path)
    default = loaded.signatures["serving_default"]
    latents = {k: v.numpy() for k, v in model.sample_inputs(2, 11).items()}
    before = default(**{k: tf.constant(v) for k, v in latents.items()})["video"].numpy()
    refused = {float("nan"): "must be finite : Tensor had NaN values",
               float("inf"): "must be finite : Tensor had Inf values",
               float("-inf"): "must be finite : Tensor had Inf values",
               1e30: r"must have \|values\| <= 10000",
               -1e30: r"must have \|values\| <= 10000",
               10000.5: r"must have \|values\| <= 10000"}
    for name in ("z_appearance", "z_motion"):
        for value, message in refused.items():
            with pytest.raises(tf.errors.InvalidArgumentError, match=f"{name} {message}"):
                default(**_with_value(latents, name, value))
    # The same latents still give the same video, equal to the model's own (one uint8 level of
    # float32 rounding aside); the bound itself is accepted.
    after = default(**{k: tf.constant(v) for k, v in latents.items()})["video"].numpy()
    np.testing.assert_array_equal(after, before)
    direct = np.clip(np.round((model.generate(latents).numpy() + 1) * 127.5), 0, 255)
    assert np.abs(before.astype(int) - direct).max() <= 1
    at_bound = default(**_with_value(latents, "z_motion", 1e4))["video"].numpy()
    assert at_bound.dtype == np.uint8 and at_bound.shape == before.shape


def test_checks_hold_in_a_session_as_tf_serving_runs_the_model(exported):
    """TF Serving runs the SignatureDef in a TF1-style Session, feeding tensors by name."""
    model, path, _ = exported
    latents = {k: v.numpy() for k, v in model.sample_inputs(2, 11).items()}
    latents["z_motion"][0, 1] = np.nan
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], path)

        def call(signature, feeds):
            spec = meta_graph.signature_def[signature]
            return session.run({k: v.name for k, v in spec.outputs.items()},
                               {spec.inputs[k].name: v for k, v in feeds.items()})

        with pytest.raises(tf.errors.InvalidArgumentError, match="z_motion must be finite"):
            call("serving_default", latents)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"seed must have shape"):
            call("sample", {"seed": np.array([[1], [2]], np.int64)})
        video = call("sample", {"seed": np.array([1, 2], np.int64)})["video"]
    assert video.dtype == np.uint8 and video.shape == (2, 4, 16, 16, 3)


def test_describe_signatures_shows_the_checked_shapes(exported):
    _, path, _ = exported
    described = export.describe_signatures(path)
    assert "serving_default(z_appearance: float32 (None, 8), z_motion: float32 (None, 4))" \
        in described, described
    assert "sample(seed: int64 (None,)) -> video: uint8 (None, 4, 16, 16, 3)" in described
    with open(os.path.join(path, export.ASSET_FILE)) as f:
        metadata = json.load(f)
    assert metadata["max_serving_batch"] == 256 and metadata["max_serving_latent"] == 1e4


def test_conditional_export_validates_the_label(tmp_path):
    config = tiny_config(conditional=True)
    model = tiny_model(config)
    path = export.export_model(model, {}, str(tmp_path / "g3an"))
    loaded = tf.saved_model.load(path)
    sample = loaded.signatures["sample"]
    a = sample(seed=tf.constant([1, 1], tf.int64), label=tf.constant([0, 3]))["video"].numpy()
    assert not np.array_equal(a[0], a[1])                     # same seed, other class
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"label must be in \[0, 5\)"):
        sample(seed=tf.constant([1], tf.int64), label=tf.constant([5]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="label must have the same batch"):
        sample(seed=tf.constant([1, 2], tf.int64), label=tf.constant([0]))
    for label in (tf.constant(1), tf.constant([[1]])):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"label must have shape \(batch\), got shape"):
            sample(seed=tf.constant([1], tf.int64), label=label)
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"label must have shape \(batch\), got shape"):
            loaded.signatures["serving_default"](z_appearance=tf.zeros([1, 8]),
                                                 z_motion=tf.zeros([1, 4]), label=label)


def test_versions_increment_never_overwrite_and_a_crash_leaves_nothing_visible(
        exported, tmp_path, monkeypatch):
    model, _, _ = exported
    base = str(tmp_path / "g3an")
    assert export.export_model(model, {}, base).endswith(os.sep + "1")
    assert export.export_model(model, {}, base).endswith(os.sep + "2")
    with pytest.raises(FileExistsError, match="never overwritten"):
        export.export_model(model, {}, base, version=2)
    seen = []

    def crash_before_rename(src, dst):
        seen.append(sorted(os.listdir(src)))              # a complete-looking tree in the tmp dir
        raise KeyboardInterrupt("simulated crash before the rename")

    monkeypatch.setattr(export.os, "rename", crash_before_rename)
    with pytest.raises(KeyboardInterrupt):
        export.export_model(model, {}, base)
    assert "saved_model.pb" in seen[0]
    assert sorted(os.listdir(base)) == ["1", "2"]             # no version 3, no temp leftovers
    assert export.next_version(base) == 3


def test_export_cli_prints_signatures_and_refuses_to_overwrite(tmp_path, trained_workdir):
    from tests.helpers import subprocess_env as _env
    workdir, _ = trained_workdir
    cmd = [sys.executable, "-m", "tfvidgen.export", f"--workdir={workdir}",
           f"--export_base={tmp_path / 'exp'}", "--version=4"]
    result = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sample(seed: int64 (None,))" in result.stdout and "video: uint8" in result.stdout
    again = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "export: error: --version=4" in again.stderr
    sampled = subprocess.run([sys.executable, "-m", "tfvidgen.sample",
                              f"--saved_model={tmp_path / 'exp' / '4'}", "--num_videos=3",
                              "--seed=9", "--fix=appearance", f"--output={tmp_path / 'a.gif'}"],
                             cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    from_workdir = subprocess.run([sys.executable, "-m", "tfvidgen.sample", f"--workdir={workdir}",
                                   "--num_videos=3", "--seed=9", "--fix=appearance",
                                   f"--output={tmp_path / 'b.gif'}"],
                                  cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert from_workdir.returncode == 0, from_workdir.stderr[-2000:]
    import imageio.v3 as iio
    diff = np.abs(iio.imread(tmp_path / "a.gif", index=None).astype(int)
                  - iio.imread(tmp_path / "b.gif", index=None))
    assert diff.max() <= 2        # same seeds, same videos (GIF palette quantisation aside)


def test_exports_carry_input_roles_and_older_exports_get_the_models_own(exported, tmp_path):
    """sample --fix/--interpolate go by role: from the metadata, or for an export written before
    inputs had roles, from the model's declaration built from its stored config."""
    from tfvidgen.exported import ExportedGenerator
    model, path, _ = exported
    assert ExportedGenerator(path).input_roles() == model.input_roles() == {
        i.name: i.role for i in model.inputs()}
    old = tmp_path / "old"
    shutil.copytree(path, old)
    asset = old / export.ASSET_FILE
    metadata = json.loads(asset.read_text())
    for entry in metadata["latents"].values():
        del entry["role"]
    asset.write_text(json.dumps(metadata))
    assert ExportedGenerator(str(old)).input_roles() == model.input_roles()


@pytest.mark.parametrize("key", ["inmodegan", "dual_mtgan"])
def test_exports_record_the_models_capabilities_and_older_ones_get_them_from_signatures(
        key, tmp_path):
    """A reader knows what an export can do from its metadata alone; an export written before
    capabilities were recorded gets them from the signatures it has."""
    import dataclasses

    from tfvidgen import models
    from tfvidgen.exported import ExportedGenerator
    config = tiny_config(key)
    path = export.export_model(tiny_model(config), {"config": json.loads(config.to_json())},
                               str(tmp_path / key))
    expected = dataclasses.asdict(models.capabilities(key))
    assert expected["variable_length"] and any(v for k, v in expected.items()
                                               if k != "variable_length")
    asset = os.path.join(path, export.ASSET_FILE)
    with open(asset) as f:
        metadata = json.load(f)
    assert metadata["capabilities"] == expected
    assert vars(ExportedGenerator(path).CAPABILITIES) == expected
    del metadata["capabilities"]
    with open(asset, "w") as f:
        json.dump(metadata, f)
    assert vars(ExportedGenerator(path).CAPABILITIES) == expected
