"""Evaluation protocol: repeats, bounds, cached real statistics, determinism; the evaluate CLI."""

import json
import os
import subprocess
import sys

import numpy as np

from tests.helpers import CLASSIFIER_PROTOCOL as PROTOCOL
from tests.helpers import tiny_config, tiny_model
from tfvidgen.eval import protocol

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_evaluate_model_reports_repeats_and_bounds_deterministically(trained, tmp_path):
    _, clf, meta = trained
    gan = tiny_model(tiny_config().replace(data={"num_frames": 8}))
    p = protocol.EvalProtocol(num_samples=32, repeats=2, seed=0, classifier=PROTOCOL,
                              classifier_sha256=meta["weights_sha256"])
    real = protocol.real_statistics(p, clf, str(tmp_path))
    assert os.path.isfile(tmp_path / f"real_stats_{p.key()}.npz")
    cached = protocol.real_statistics(p, clf, str(tmp_path))
    np.testing.assert_array_equal(cached["a_features"], real["a_features"])
    assert not np.array_equal(real["a_features"], real["b_features"])    # disjoint real sets
    results = protocol.evaluate_model(gan, clf, p, real, log=lambda *_: None)
    assert {"is", "h_y", "h_y_given_v", "fd", "appearance_preservation"} <= set(results)
    assert "label_accuracy" not in results                                # unconditional
    for name in ("is", "h_y", "h_y_given_v", "fd"):
        r = results[name]
        assert len(r["values"]) == 2 and r["mean"] == np.mean(r["values"])
    assert results["is"]["mathematical_bound"] == 5.0
    # An untrained generator is far from the real-vs-real experimental bound.
    assert results["fd"]["mean"] > 2 * results["fd"]["experimental_bound"]
    assert results["is"]["experimental_bound"] > results["is"]["mean"]
    again = protocol.evaluate_model(gan, clf, p, real, log=lambda *_: None)
    assert again["fd"]["values"] == results["fd"]["values"]
    assert "| fd |" in protocol.markdown_table(results)


def test_evaluate_cli_writes_results_and_repeats_them(trained_workdir):
    workdir, _ = trained_workdir
    cmd = [sys.executable, "-m", "tfvidgen.evaluate", f"--workdir={workdir}", "--num_samples=16",
           "--repeats=2", "--classifier_steps=60", "--metrics=is,h_y_given_v,fd"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "[classifier] step 60/60" in first.stdout and "| fd |" in first.stdout
    record = json.loads((workdir / "eval" / "metrics.json").read_text())
    assert set(record["results"]) == {"is", "h_y_given_v", "fd"}
    assert record["protocol"]["num_samples"] == 16 and record["step"] == 3
    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert second.returncode == 0 and "[classifier] cached" in second.stdout
    assert json.loads((workdir / "eval" / "metrics.json").read_text())["results"] == record["results"]
    bad = subprocess.run(cmd[:3] + ["--metrics=nope"], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env=env)
    assert bad.returncode == 2 and "--metrics: unknown ['nope']" in bad.stderr
