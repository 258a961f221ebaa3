"""Concurrent `export` commands on one --export_base: each gets its own complete version, and a
reader polling the base as TF Serving does (numeric directories only) never sees a partial one.

The suite races 2 processes (each one a TensorFlow start-up on a 2-core machine);
`RACING_EXPORTS=8 python -m pytest tests/racing_exports_test.py` races 8 (the documented long
version)."""

import os
import subprocess
import sys
import threading
import time

import tensorflow as tf

from tests.helpers import REPO, subprocess_env
from tfvidgen import export

RACERS = int(os.environ.get("RACING_EXPORTS", "2"))
_COMPLETE = ("saved_model.pb", os.path.join("variables", "variables.index"), export.ASSET_FILE)


def _poll(base, stop: threading.Event, seen: dict, partial: list) -> None:
    while not stop.is_set():
        for name in os.listdir(base) if os.path.isdir(base) else ():
            if name.isdigit():
                seen[name] = True
                missing = [f for f in _COMPLETE if not os.path.exists(os.path.join(base, name, f))]
                if missing:
                    partial.append((name, missing))
        time.sleep(0.02)


def test_concurrent_exports_get_distinct_complete_versions(trained_run, tmp_path):
    workdir, _ = trained_run
    base = str(tmp_path / "exp")
    stop, seen, partial = threading.Event(), {}, []
    poller = threading.Thread(target=_poll, args=(base, stop, seen, partial), daemon=True)
    poller.start()
    procs = [subprocess.Popen([sys.executable, "-m", "tfvidgen.export", f"--workdir={workdir}",
                               f"--export_base={base}"], cwd=REPO, env=subprocess_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(RACERS)]
    results = [p.communicate(timeout=600) for p in procs]
    stop.set()
    poller.join(timeout=10)
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err[-2000:]
    written = sorted(out.split(" to ")[1].split("\n")[0] for out, _ in results)
    assert written == sorted(os.path.join(base, str(v)) for v in range(1, RACERS + 1))
    assert sorted(os.listdir(base)) == sorted(str(v) for v in range(1, RACERS + 1))  # no .tmp-*
    assert not partial, partial
    assert seen
    for path in written:
        loaded = tf.saved_model.load(path)
        video = loaded.signatures["sample"](seed=tf.constant([3], tf.int64))["video"]
        assert video.dtype == tf.uint8 and video.shape[0] == 1
