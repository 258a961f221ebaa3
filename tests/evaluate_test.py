"""The evaluate CLI's warnings and one-line errors (the metrics themselves: tests/eval/)."""

import json
import shutil
import sys

import numpy as np

from tests.cli_helpers import assert_one_error_line, run
from tfvidgen import evaluate


def evaluate_cmd(*flags):
    return [sys.executable, "-m", "tfvidgen.evaluate", *flags]


def copy_workdir(trained_workdir, tmp_path, **data):
    """A copy of the session's trained workdir (evaluate writes into it), with config.data
    fields replaced by `data`."""
    workdir = tmp_path / "w"
    shutil.copytree(trained_workdir[0], workdir, ignore=shutil.ignore_patterns("eval"))
    config = json.loads((workdir / "config.json").read_text())
    config["data"].update(data)
    (workdir / "config.json").write_text(json.dumps(config))
    return workdir


def test_min_samples_is_8_per_class_and_at_least_32():
    assert evaluate.min_samples(2) == 32
    assert evaluate.min_samples(5) == 40
    assert evaluate.min_samples(8) == 64


def test_too_few_samples_warn_and_still_report(trained_workdir, tmp_path):
    workdir = copy_workdir(trained_workdir, tmp_path)
    result = run(evaluate_cmd(f"--workdir={workdir}", "--num_samples=2", "--repeats=1",
                              "--classifier_steps=2", "--metrics=is"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines()
                if line.startswith("evaluate: warning:")]
    assert warnings == ["evaluate: warning: --num_samples=2 is below 40 (8 per class, at least "
                        "32): IS, H(y) and FD from so few videos are mostly sampling noise"]
    assert json.loads((workdir / "eval" / "metrics.json").read_text())["results"]["is"]


def test_seed_outside_range_is_refused_at_start_up(tmp_path):
    result = run(evaluate_cmd(f"--workdir={tmp_path}", f"--seed={2 ** 63 - 1}"), timeout=120)
    assert_one_error_line(result, "evaluate", f"--seed={2 ** 63 - 1} is outside [0, 2**62]")


def test_records_without_a_manifest_is_one_line(trained_workdir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    workdir = copy_workdir(trained_workdir, tmp_path, dataset="records", data_dir=str(empty))
    result = run(evaluate_cmd(f"--workdir={workdir}", "--classifier_steps=2"))
    assert_one_error_line(result, "evaluate", f"--data_dir='{empty}' has no manifest.json")


def test_records_with_no_videos_is_one_line_not_a_traceback(trained_workdir, tmp_path):
    """A manifest whose only train shard is empty: refused when the classifier's data is built,
    naming the split (records.shard_paths), not after the data ran dry."""
    from tfvidgen.data import records
    data_dir = tmp_path / "records"
    data_dir.mkdir()
    (data_dir / "train-00000.tfrecord").write_bytes(b"")
    shard = [{"file": "train-00000.tfrecord", "count": 0, "bytes": 0}]
    records.write_manifest(str(data_dir), {
        "resolution": 16, "encoding": "raw", "class_names": ["a", "b"], "identity_names": [],
        "num_videos": 0, "splits": {"train": shard, "test": shard}})
    workdir = copy_workdir(trained_workdir, tmp_path, dataset="records", data_dir=str(data_dir),
                           max_stride=1)
    result = run(evaluate_cmd(f"--workdir={workdir}", "--classifier_steps=2", "--num_samples=32",
                              "--repeats=1"))
    assert_one_error_line(result, "evaluate", "evaluation classifier of records",
                          "the 'train' split has no videos")
    assert not (workdir / "eval" / "metrics.json").exists()


def test_an_image_to_video_export_evaluates_with_its_image_input(tmp_path):
    """An export of Dual-MTGAN: videos animate synthetic first frames (its `latents` plus the
    images), and the image-to-video scores use its `transfer` signature."""
    from tests.helpers import tiny_config, tiny_model
    from tfvidgen import export
    config = tiny_config("dual_mtgan")
    path = export.export_model(tiny_model(config), {"config": json.loads(config.to_json())},
                               str(tmp_path / "dual_mtgan"))
    result = run(evaluate_cmd(f"--saved_model={path}", "--num_samples=4", "--repeats=1",
                              "--classifier_steps=2", "--metrics=is,fd", "--transfer_videos=2",
                              "--best_of=2"), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "dual_mtgan" / "eval-1" / "metrics.json").read_text())
    assert record["source"] == path
    results = record["results"]
    assert results["is"]["mean"] >= 1.0 and results["fd"]["mean"] >= 0.0
    for name in ("self_transfer_psnr", "best_of_2_ssim"):
        assert name in results, sorted(results)
        assert all(np.isfinite(v) for v in results[name]["values"])
