"""tools/chaos.py, short: three seeded interruptions (SIGKILL and SIGTERM at random moments) of
a tiny run, restarted each time, end with the uninterrupted run's weights; a SIGTERM during
training is the preemption path (tfvidgen.preemption): one line, exit 143. The long soak is
`python tools/chaos.py --out=DIR --interruptions=20`."""

import json

from tools import chaos


def test_a_short_soak_ends_with_the_uninterrupted_weights(tmp_path):
    result = chaos.soak(str(tmp_path), interruptions=3, seed=2, steps=16,
                        flags=chaos.DEFAULT_FLAGS, timeout=300, max_delay=2.0,
                        log=lambda *_: None)
    events = result["interruptions"]
    assert len(events) == 3 and {e["signal"] for e in events} == {"SIGKILL", "SIGTERM"}
    assert all(e["sent"] for e in events)
    # Seed 2: SIGKILL during start-up, SIGKILL and then SIGTERM during training.
    assert [(e["signal"], e["during"]) for e in events] == [
        ("SIGKILL", "start-up"), ("SIGKILL", "training"), ("SIGTERM", "training")]
    preempted = events[2]
    assert preempted["exit_code"] == 143, preempted
    assert preempted["message"].startswith("train: preempted (SIGTERM) at step "), preempted
    # The preemption saved at the step it names, and the rerun resumed from exactly there.
    saved = int(preempted["message"].split("at step ")[1].split(":")[0])
    assert result["final_resumed_from"] == saved == preempted["last_logged_step"]
    assert result["identical"], result["differing"]
    assert result["variables"] > 20 and result["max_abs_difference"] == 0.0
    assert json.loads((tmp_path / "chaos.json").read_text())["identical"]


def test_the_comparison_finds_a_changed_weight(tmp_path):
    import numpy as np
    import tensorflow as tf
    for name, value in (("a", 1.0), ("b", 1.5)):
        ckpt = tf.train.Checkpoint(w=tf.Variable(np.ones(3, np.float32) * value))
        ckpt.save(str(tmp_path / name / "ckpt"))
    same = chaos.compare_checkpoints(str(tmp_path / "a"), str(tmp_path / "a"))
    other = chaos.compare_checkpoints(str(tmp_path / "a"), str(tmp_path / "b"))
    assert same["identical"] and not other["identical"]
    assert other["max_abs_difference"] == 0.5 and other["differing"] == ["w/.ATTRIBUTES/VARIABLE_VALUE"]
