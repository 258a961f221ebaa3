"""tools/benchmark.py --what=serving: an export is timed by a child process that runs without
tfvidgen (its assertion runs there), on the endpoint its users call (`sample`, Dual-MTGAN's
`transfer`); a broken export or workdir gives an error row, not a crash. Timings are never
asserted, only their consistency (numbers belong in the README's table)."""

import json
import subprocess

import pytest

from tests.helpers import tiny_config, tiny_model
from tfvidgen import export_lib
from tools import benchmark


def _export(tmp_path, key: str, **data) -> str:
    config = tiny_config(key)
    if data:
        config = config.replace(data=data)
    return export_lib.export_model(tiny_model(config), {"config": json.loads(config.to_json())},
                                   str(tmp_path / key))


def test_the_child_times_sample_without_tfvidgen(tmp_path, monkeypatch):
    path = _export(tmp_path, "g3an")
    m = benchmark.time_export(path, calls=5, seconds=0.0, batch=16)
    assert m["endpoint"] == "sample" and m["video"] == [4, 16, 16, 3]
    assert m["calls"] >= 5 and 0 < m["p50_ms"] <= m["p99_ms"]
    assert m["batch"] == 16 and m["videos_per_s"] > 0 and m["peak_rss_mb"] > 0
    assert m["tfvidgen_imported"] is False        # and the child asserted it before printing
    # The row of those measurements (not timed twice: the child is the slow part).
    monkeypatch.setattr(benchmark, "time_export", lambda *args: m)
    row = benchmark.serving_row("g3an", "tiny", path, calls=5, seconds=0.0)
    assert row.startswith("| serving g3an `sample` (16x16x4, tiny) | batch 1: p50 ")
    assert row.count("|") == 5 and "videos/s" in row and row.endswith(" MB |")


def test_the_child_calls_dual_mtgan_transfer(tmp_path):
    path = _export(tmp_path, "dual_mtgan", dataset="synthetic_actions")
    m = benchmark.time_export(path, calls=2, seconds=0.0, batch=2)
    assert m["endpoint"] == "transfer" and m["video"] == [4, 16, 16, 3]
    assert m["calls"] >= 2 and m["p50_ms"] <= m["p99_ms"] and m["videos_per_s"] > 0


def test_the_child_refuses_to_run_with_tfvidgen_loaded(tmp_path):
    command = benchmark.serving_child_command(str(tmp_path), calls=1, seconds=0.0)
    command[-1] = "import tfvidgen\n" + command[-1]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "must run without tfvidgen" in result.stderr


def test_a_broken_export_or_workdir_is_an_error_row(tmp_path):
    row = benchmark.serving_row("g3an", "broken", str(tmp_path / "missing"), calls=1,
                                seconds=0.0)
    assert row.startswith("| serving g3an (broken) | error: FileNotFoundError")
    assert "tfvidgen.json" in row and row.endswith("| | |")
    with pytest.raises(RuntimeError, match="FileNotFoundError"):
        benchmark.time_export(str(tmp_path / "missing"), calls=1, seconds=0.0)
    rows = benchmark.bench_serving(0.0, [str(tmp_path / "no_workdir")], calls=1)
    assert len(rows) == 1 and rows[0].startswith(f"| serving ? ({tmp_path / 'no_workdir'}) | "
                                                 f"error: FileNotFoundError")
