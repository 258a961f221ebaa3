"""Chaos soak: trains a small model while killing it at random moments, restarting it each time,
and checks that the end result equals an uninterrupted run's, weight for weight.

  python tools/chaos.py --out=/tmp/chaos --interruptions=20 --seed=0
  python tools/chaos.py --out=/tmp/chaos --interruptions=3 -- --model=inmodegan ...  # other flags

Local only and bounded: each training process runs at most --timeout seconds. The run trains a
tiny G3AN on synthetic_shapes (16x16, 4 frames, EMA on, a checkpoint every 4 steps) unless
training flags follow `--`. Interruptions alternate at random (seeded) between SIGKILL (nothing
saved: the rerun resumes from the last checkpoint, possibly one a kill left half written) and
SIGTERM (tfvidgen.preemption: a checkpoint at the current step, exit 143), each sent at a random
moment: during start-up (importing, restoring, tracing) or a random time into training.

Writes <out>/reference (the uninterrupted run), <out>/chaos (the interrupted one) and
<out>/chaos.json (each interruption: signal, delay, exit code, step reached; the step the final
run resumed from; the comparison).
Exit 0 when the final weights are identical, 1 when they differ or a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from tfvidgen import child_env  # noqa: E402  (before TensorFlow: its defaults, quiet start-up)

DEFAULT_FLAGS = ["--model=g3an", "--dataset=synthetic_shapes", "--resolution=16",
                 "--num_frames=4", "--num_videos=64", "--video_length=16", "--batch_size=4",
                 "--model_param=base_channels=4", "--model_param=d_channels=4",
                 "--model_param=z_appearance=8", "--model_param=z_motion=4",
                 "--mixed_precision=float32", "--ema_decay=0.9", "--checkpoint_every=4",
                 "--sample_every=1000", "--log_every=1"]
_IGNORED = ("save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH")     # bookkeeping, not training state

__all__ = ["main", "soak", "compare_checkpoints"]


def _command(workdir: str, flags: list[str], steps: int) -> list[str]:
    return [sys.executable, "-m", "tfvidgen.train", *flags, f"--train_steps={steps}",
            f"--workdir={workdir}"]


def _train(workdir: str, flags: list[str], steps: int) -> subprocess.Popen:
    # This directory, not the checkout: a relative --out means the same place to both sides.
    return subprocess.Popen(_command(workdir, flags, steps), env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _run_to_end(workdir: str, flags: list[str], steps: int, timeout: float) -> tuple[int, str]:
    proc = _train(workdir, flags, steps)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise RuntimeError(f"training did not finish within --timeout={timeout} s; its last "
                           f"lines:\n{out[-2000:]}") from None
    return proc.returncode, out


def _interrupted_run(workdir, flags, steps, timeout, sig, start_up: bool, delay: float) -> dict:
    """One training process, interrupted by `sig` after `delay` s (from its start when
    `start_up`, else from its first training step); returns what happened."""
    proc = _train(workdir, flags, steps)
    lines: list[str] = []
    first_step = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("step "):
                first_step.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    began = time.monotonic()
    if not start_up:
        while not first_step.wait(0.05):
            if proc.poll() is not None or time.monotonic() - began > timeout:
                break
    time.sleep(delay)
    sent = proc.poll() is None
    if sent:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"training did not exit within {timeout} s of {sig.name}; its last "
                           f"lines:\n{''.join(lines[-20:])}") from None
    reader.join(timeout=10)
    steps_seen = [int(ln.split()[1].split("/")[0]) for ln in lines if ln.startswith("step ")]
    return {"signal": sig.name, "during": "start-up" if start_up else "training",
            "delay_s": round(delay, 3), "sent": sent, "exit_code": proc.returncode,
            "last_logged_step": max(steps_seen, default=None),
            "finished": any(ln.startswith("done:") for ln in lines),
            "message": next((ln.strip() for ln in lines if ln.startswith("train:")), None)}


def compare_checkpoints(a_dir: str, b_dir: str) -> dict:
    """{"identical": bool, "max_abs_difference": float, "differing": [names], "variables": n}
    of the newest checkpoints of two checkpoint directories."""
    import numpy as np
    import tensorflow as tf
    a, b = tf.train.latest_checkpoint(a_dir), tf.train.latest_checkpoint(b_dir)
    names_a = {n for n, _ in tf.train.list_variables(a) if not n.startswith(_IGNORED)}
    names_b = {n for n, _ in tf.train.list_variables(b) if not n.startswith(_IGNORED)}
    differing, worst = sorted(names_a ^ names_b), 0.0
    for name in sorted(names_a & names_b):
        x, y = (np.asarray(tf.train.load_variable(path, name)) for path in (a, b))
        if x.shape != y.shape or not np.array_equal(x, y):
            differing.append(name)
            if x.shape == y.shape and x.dtype.kind in "fiu":
                worst = max(worst, float(np.max(np.abs(x.astype(np.float64) - y))))
    return {"identical": not differing, "max_abs_difference": worst, "differing": differing[:20],
            "variables": len(names_a & names_b), "checkpoints": [a, b]}


def soak(out: str, interruptions: int, seed: int, steps: int, flags: list[str],
         timeout: float = 600, max_delay: float = 4.0, log=print) -> dict:
    """The reference run, then `interruptions` interrupted runs and a final one to the end."""
    rng = random.Random(seed)
    reference, chaos = os.path.join(out, "reference"), os.path.join(out, "chaos")
    if not os.path.isfile(os.path.join(reference, "checkpoints", f"ckpt-{steps}.index")):
        code, text = _run_to_end(reference, flags, steps, timeout)
        if code != 0:
            raise RuntimeError(f"the reference run failed (exit {code}):\n{text[-3000:]}")
    log(f"[chaos] reference: {steps} steps in {reference}")
    events, began = [], time.monotonic()
    for k in range(interruptions):
        sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
        start_up = rng.random() < 0.25
        delay = rng.uniform(0.0, max_delay)
        event = _interrupted_run(chaos, flags, steps, timeout, sig, start_up, delay)
        events.append(event)
        log(f"[chaos] {k + 1}/{interruptions}: {event['signal']} {event['delay_s']} s into "
            f"{event['during']} -> exit {event['exit_code']}, last step logged "
            f"{event['last_logged_step']}")
        if event["finished"]:
            log("[chaos] the run finished before this interruption: the rest are skipped")
            break
        if event["exit_code"] not in (0, -signal.SIGKILL, 143, -signal.SIGTERM):
            raise RuntimeError(f"interrupted run {k + 1} failed with exit {event['exit_code']}")
    code, text = _run_to_end(chaos, flags, steps, timeout)
    if code != 0:
        raise RuntimeError(f"the final run failed (exit {code}):\n{text[-3000:]}")
    resumed = [ln for ln in text.splitlines() if ln.startswith("resumed from ")]
    comparison = compare_checkpoints(os.path.join(reference, "checkpoints"),
                                     os.path.join(chaos, "checkpoints"))
    result = {"interruptions": events, "steps": steps, "seed": seed, "flags": flags,
              "final_resumed_from": int(resumed[0].rsplit("at step ", 1)[1]) if resumed else None,
              "seconds": round(time.monotonic() - began, 1), **comparison}
    path = os.path.join(out, "chaos.json")
    with open(path + ".partial", "w") as f:       # complete or absent: renamed when written
        json.dump(result, f, indent=2)
    os.replace(path + ".partial", path)
    log(f"[chaos] {len(events)} interruptions "
        f"({sum(e['signal'] == 'SIGKILL' for e in events)} SIGKILL, "
        f"{sum(e['signal'] == 'SIGTERM' for e in events)} SIGTERM); final weights "
        + ("identical to the uninterrupted run's" if comparison["identical"] else
           f"DIFFER: max |diff| {comparison['max_abs_difference']:.3g} in "
           f"{', '.join(comparison['differing'][:5])}"))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--interruptions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seeds the signals and moments")
    parser.add_argument("--train_steps", type=int, default=80)
    parser.add_argument("--max_delay", type=float, default=4.0,
                        help="longest wait (s) before an interruption")
    parser.add_argument("--timeout", type=float, default=600,
                        help="longest a training process may run (s)")
    parser.add_argument("train_flags", nargs="*", help="after --: training flags (default: a "
                        "tiny G3AN, see the module docstring)")
    args = parser.parse_args(argv)
    if args.interruptions < 0 or args.train_steps < 1:
        parser.error("--interruptions must be >= 0 and --train_steps >= 1")
    os.makedirs(args.out, exist_ok=True)
    try:
        result = soak(args.out, args.interruptions, args.seed, args.train_steps,
                      args.train_flags or DEFAULT_FLAGS, args.timeout, args.max_delay)
    except RuntimeError as e:
        print(f"chaos: error: {e}", file=sys.stderr)
        return 1
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
