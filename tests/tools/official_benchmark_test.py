"""tools/official_benchmark.py: the report from canned records (ratios, a failed row, shared
precision columns), a tiny tfvidgen measurement in its own process, and the one-line errors for
bad input. Needs no torch: the official side is never started here."""

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO, TINY_PARAMS, subprocess_env
from tools import official_benchmark as bench

TOOL = "tools/official_benchmark.py"


def _record(median, times=None, rss=1000.0, load=0.02, **extra):
    times = times or [median * 1.5, median * 0.9, median, median * 1.1]
    return {"ok": True, "times": times, "warmup": 1, "median": median,
            "min": min(times[1:]), "max": max(times[1:]), "peak_rss_mib": rss,
            "other_load": load, "own_cpu_s": 2 * median, "params": {"G": 2_500_000},
            "config": "canned", **extra}


def _payload(columns, results):
    meta = {"date": "2026-12-24 10:00 UTC", "elapsed_s": 600.0, "machine": "hardware: CPU X",
            "cpu": "AMD EPYC", "cpus": 2, "tensorflow": "2.21.0", "keras": "3.15.1",
            "numpy": "2.1.0", "python": "3.11.7",
            "torch": {"torch": "2.13.0+cpu", "numpy": "2.4.6", "python": "3.11.7"},
            "references": {"g3an-project": {"tree": "g3an-project",
                                            "repository": "wyhsirius/g3an-project",
                                            "commit": "74764fd"}},
            "warmup": 1, "iters": 3, "threads": 2, "timeout": 1200.0, "quiet_wait": 300.0,
            "rows": ["g3an"], "precision_columns": columns}
    return {"meta": meta, "results": results}


def _result(measurement, official, ours):
    return {"row": measurement.row, "phase": measurement.phase, "task": measurement.task,
            "label": measurement.label, "batch": bench.ROWS[measurement.row].batch,
            "official": official, "tfvidgen": ours}


def _table_row(report, label):
    return next(line for line in report.splitlines() if line.startswith(f"| {label} |"))


def test_the_report_gives_ratios_per_precision_and_a_failed_rows_error():
    train, sample = bench.plan(["g3an"])
    task = bench.Measurement("twostreamvan", "train", "recons")
    columns = [{"requested": "auto", "policy": "mixed_bfloat16"},
               {"requested": "float32", "policy": "float32"}]
    results = [
        _result(train, _record(24.0, rss=4963), {"mixed_bfloat16": _record(4.0, rss=2100),
                                                 "float32": _record(6.0, rss=2500, load=0.3)}),
        _result(sample, {"ok": False, "error": "timeout after 1200 s"},
                {"mixed_bfloat16": _record(1.0), "float32": {
                    "ok": False, "error": "exit 1: ResourceExhaustedError: OOM | here"}}),
        _result(task, _record(9.0), {"mixed_bfloat16": _record(3.0, phases=[
            "content_d", "content_encoder", "content_generator"]),
            "float32": _record(4.5)}),
    ]
    report = bench.render_report(_payload(columns, results))

    assert "2026-12-24 10:00 UTC" in report and "AMD EPYC" in report
    assert "TensorFlow 2.21.0, Keras 3.15.1" in report and "torch 2.13.0+cpu" in report
    assert "commit 74764fd" in report and "median wall time of 3 iterations after 1" in report
    assert ("| tfvidgen auto → mixed_bfloat16: s, official/ours | tfvidgen float32: s, "
            "official/ours |") in report
    row = _table_row(report, train.label)
    assert "| 24.00 (21.60–26.40) | 4.00 (3.60–4.40), 6.00x | 6.00 (5.40–6.60), 4.00x |" in (
        row)
    assert "| 4963 / 2100 / 2500 | 2% / 2% / 30% |" in row
    # a failed official child: its error in the row, no ratio; a failed ours: escaped error
    row = _table_row(report, sample.label)
    assert "| failed: timeout after 1200 s | 1.00 (0.90–1.10) |" in row
    assert "failed: exit 1: ResourceExhaustedError: OOM \\| here" in row
    assert "| – / 1000 / – |" in row
    assert "| 9.00 (8.10–9.90) | 3.00 (2.70–3.30), 3.00x | 4.50 (4.05–4.95), 2.00x |" in (
        _table_row(report, task.label))
    assert "- `recons` → `content`: content_d + content_encoder + content_generator" in report
    assert "Deviations from the references" in report


def test_precisions_resolving_to_one_policy_share_one_measurement_in_the_report():
    (train,) = bench.plan(["g3an"])[:1]
    columns = [{"requested": "auto", "policy": "float32"},
               {"requested": "float32", "policy": "float32"}]
    report = bench.render_report(_payload(columns, [
        _result(train, _record(20.0), {"float32": _record(8.0)})]))
    assert "| 8.00 (7.20–8.80), 2.50x | 8.00 (7.20–8.80), 2.50x (= auto) |" in _table_row(
        report, train.label)
    assert "tfvidgen auto → float32: s, official/ours" in report


def test_the_rows_are_the_official_configurations():
    assert [(m.phase, m.task) for m in bench.plan(["twostreamvan"])] == [
        ("train", "recons"), ("train", "pred"), ("train", "video"), ("sample", None)]
    mvt = bench.tfvidgen_setup("mvt_tsa")
    assert (mvt["model"], mvt["resolution"], mvt["frames"], mvt["batch"],
            mvt["num_classes"]) == ("mvt_tsa", 128, 16, 2, 101)
    assert (mvt["params"]["g_channels"], mvt["params"]["d_channels"],
            mvt["params"]["d_steps"]) == (64, 64, 2)
    assert mvt["train"] == {"g_lr": 5e-5, "d_lr": 2e-4, "beta1": 0.0, "beta2": 0.9}
    tsvan = bench.tfvidgen_setup("twostreamvan")
    assert (tsvan["resolution"], tsvan["frames"], tsvan["batch"], tsvan["num_classes"],
            tsvan["params"]["gf_dim"]) == (64, 10, 16, 10, 16)
    assert bench.tfvidgen_setup("g3an")["params"] == {"attention": False}
    tiny = bench.tfvidgen_setup("g3an", {"batch": 2, "params": {"base_channels": 4}})
    assert tiny["batch"] == 2 and tiny["params"] == {"attention": False, "base_channels": 4}


def test_the_tfvidgen_child_measures_a_tiny_configuration():
    overrides = {"resolution": 16, "frames": 4, "batch": 2, "params": TINY_PARAMS["g3an"]}
    done = subprocess.run([sys.executable, TOOL, "--child=g3an/train",
                           "--child_precision=float32", "--warmup=1", "--iters=2",
                           "--threads=2", f"--child_overrides={json.dumps(overrides)}"],
                          cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = done.stdout.splitlines()                 # stdout holds the record only
    record = json.loads(line)
    assert record["side"] == "tfvidgen" and record["precision"] == "float32"
    assert len(record["times"]) == 3 and record["median"] > 0 and record["peak_rss_mib"] > 0
    assert record["batch"] == 2 and record["phases"] and record["params"]["G"] > 0
    assert 0 <= record.get("other_load", 0) <= 1


@pytest.mark.parametrize("flags,message", [
    (["--references={tmp}/nowhere"], "--references={tmp}/nowhere: no such directory"),
    (["--references={tmp}", "--rows=g3an,stylegan"], "--rows: unknown row 'stylegan'"),
    (["--references={tmp}", "--rows=mvt_tsa"], "--references={tmp}: no tsb-gan/ in it"),
    (["--references={refs}", "--rows=g3an", "--torch_python={tmp}/no_python"],
     "--torch_python={tmp}/no_python: not runnable"),
    (["--references={refs}", "--rows=g3an", "--torch_python=" + sys.executable],
     "cannot import torch and numpy"),
])
def test_bad_input_is_one_error_line_and_exit_2_before_measuring(tmp_path, flags, message):
    refs = tmp_path / "refs"
    (refs / "g3an-project").mkdir(parents=True)
    flags = [f.format(tmp=tmp_path, refs=refs) for f in flags]
    done = subprocess.run([sys.executable, TOOL, "--out=" + str(tmp_path / "report.md"), *flags],
                          cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("official_benchmark: error: ") and len(
        done.stderr.strip().splitlines()) == 1, done.stderr
    assert message.format(tmp=tmp_path) in done.stderr
    assert not (tmp_path / "report.md").exists() and not done.stdout
