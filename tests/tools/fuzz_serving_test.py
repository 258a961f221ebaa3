"""tools/fuzz_serving.py: every serving endpoint of every model, fuzzed against its exported
SavedModel in a fresh process that never imports tfvidgen, directly and through the REST JSON
forms; and the fuzzer itself catches a server that answers a bad request or the wrong shape.
The suite tries 8 requests per endpoint; the long run is `--examples=200` (README)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, tiny_config, tiny_model
from tfvidgen import export
from tools import fuzz_serving

# Conditional variants too: their label inputs (and MVT-TSA's label_mix) get fuzzed.
_MODELS = (("g3an", {}), ("inmodegan", {}), ("mvt_tsa", {"conditional": True}),
           ("twostreamvan", {"conditional": True}), ("dual_mtgan", {}))


def _fresh_env():
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _declared_endpoints(path) -> set:
    with open(os.path.join(path, export.ASSET_FILE)) as f:
        return set(json.load(f)["endpoints"])


def test_every_endpoint_of_every_model_answers_a_video_or_names_the_bad_input(tmp_path):
    paths = []
    for key, params in _MODELS:
        config = tiny_config(key, **params)
        if key == "dual_mtgan":
            config = config.replace(data={"dataset": "synthetic_actions"})
        model = tiny_model(config)
        paths.append(export.export_model(model, {"config": json.loads(config.to_json()),
                                                 "step": 0}, str(tmp_path / key)))
    result = subprocess.run([sys.executable, os.path.join(REPO, "tools", "fuzz_serving.py"),
                             f"--saved_model={','.join(paths)}", "--examples=8", "--seed=1"],
                            cwd=str(tmp_path), env=_fresh_env(), capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    counts = json.loads(result.stdout[result.stdout.index("\n{") + 1:])
    for path, (key, _) in zip(paths, _MODELS):
        # The fuzzer takes the endpoints from the export's declarations (and refuses an export
        # with an undeclared signature): every declared one was fuzzed, whatever its name.
        declared = _declared_endpoints(path)
        assert {"serving_default", "sample", "latents"} <= declared, (key, declared)
        assert set(counts[path]) == declared, key
        for endpoint, tally in counts[path].items():
            assert tally["direct"] >= 4 and tally["rest_inputs"] >= 6, (key, endpoint, tally)
            assert tally["videos"] >= 2 and tally["refused"] >= 2, (key, endpoint, tally)


class _Broken(tf.Module):
    """A server that answers every request with one video, whatever its batch or values."""

    @tf.function(input_signature=[tf.TensorSpec(None, tf.int64)])
    def sample(self, seed):
        del seed
        return {"video": tf.zeros([1, 2, 4, 4, 3], tf.uint8)}


_SEED_INPUT = {"name": "seed", "shape": [], "dtype": "int64", "role": "control",
               "per_request": False}


def _save_broken(path, signatures: list, declared: dict) -> str:
    module = _Broken()
    tf.saved_model.save(module, path, signatures={k: module.sample for k in signatures})
    os.makedirs(os.path.join(path, "assets.extra"))
    with open(os.path.join(path, export.ASSET_FILE), "w") as f:
        json.dump({"max_serving_batch": 4, "max_serving_latent": 10.0, "endpoints": declared}, f)
    return path


def test_the_fuzzer_catches_a_server_that_ignores_its_inputs(tmp_path):
    path = _save_broken(str(tmp_path / "1"), ["sample"], {"sample": [_SEED_INPUT]})
    with pytest.raises(Exception) as failure:
        fuzz_serving.fuzz_saved_model(path, examples=20, seed=0, log=lambda *_: None)
    assert "sample" in str(failure.value) or any(
        "sample" in str(x) for x in getattr(failure.value, "exceptions", []))


def test_the_fuzzer_refuses_an_export_with_an_undeclared_signature(tmp_path):
    path = _save_broken(str(tmp_path / "1"), ["sample", "hidden"], {"sample": [_SEED_INPUT]})
    with pytest.raises(AssertionError, match=r"\['hidden'\] have no declaration"):
        fuzz_serving.fuzz_saved_model(path, examples=1, seed=0, log=lambda *_: None)


def test_the_fuzzer_reads_the_asset_file_tfvidgen_writes():
    # fuzz_serving spells the name out: it must run without tfvidgen.
    assert fuzz_serving.ASSET_FILE == export.ASSET_FILE


def test_rest_decoding_refuses_what_tf_serving_refuses_naming_the_input():
    inputs = [{"name": "seed", "shape": [], "dtype": "int64", "per_request": False},
              {"name": "z", "shape": [2], "dtype": "float32", "per_request": False}]
    good = fuzz_serving.decode_rest({"instances": [{"seed": 1, "z": [0.5, 1]},
                                                   {"seed": 2, "z": [0, 0]}]}, inputs)
    assert good["seed"].dtype == np.int64 and good["z"].shape == (2, 2)
    same = fuzz_serving.decode_rest({"inputs": {"seed": [1, 2], "z": [[0.5, 1], [0, 0]]}},
                                    inputs)
    np.testing.assert_array_equal(same["z"], good["z"])
    for body, named in (({"inputs": {"seed": [1.5], "z": [[0, 0]]}}, "seed"),
                        ({"inputs": {"seed": [1], "z": [["a", 0]]}}, "z"),
                        ({"inputs": {"seed": [1], "z": [[0, 0], [0]]}}, "z"),
                        ({"inputs": {"seed": [1]}}, "z: missing"),
                        ({"inputs": {"seed": [1], "z": [[0, 0]], "w": 1}}, "w: not an input"),
                        ({"instances": [{"seed": 1, "z": [0, 0]}, {"seed": 2}]}, "z"),
                        ({"inputs": {"seed": [2 ** 64], "z": [[0, 0]]}}, "seed: value out")):
        with pytest.raises(fuzz_serving.RequestError, match=named):
            fuzz_serving.decode_rest(body, inputs)
