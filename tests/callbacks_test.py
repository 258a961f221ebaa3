"""Hooks of the training loop: time spent between steps (an evaluation) in the progress line."""

import io

from tfvidgen import callbacks


def test_excluded_time_leaves_the_step_time_and_enters_the_eta(monkeypatch):
    clock = iter([0.0, 10.0, 20.0])          # start, first line, second line
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    progress = callbacks.ProgressAndScalars(None, 5, 20, 4, {}, start_step=0, stream=stream)
    progress.exclude(5.0, every=5)           # 5 s of evaluation every 5 steps: 1 s per step
    for step in range(1, 6):
        progress.on_step_end(step, {"d_total": 1.0})
    line = stream.getvalue().strip()
    # 10 s for 5 steps, 5 of them evaluating: 1 s/step; ETA (20 - 5) x (1 + 1) s = 0.5 min
    assert "1.000s/step" in line and "ETA 0.5 min" in line, line
