"""Every checkpointed value after 3 steps of the tiny G3AN (default, conditional, EMA) trained
through train_lib.run in float32: the behaviour-preservation record of the contract-v2 port.

  PYTHONPATH=. python tools/g3an_fingerprint.py OUT.npz [--compare OTHER.npz]

Keys are the checkpoint's own names, so a renamed or reordered item shows up as a difference.
"""
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tfvidgen  # noqa: E402,F401  (oneDNN default before TensorFlow loads)

import numpy as np  # noqa: E402


def fingerprint() -> dict:
    import tensorflow as tf
    from tests.helpers import tiny_config
    from tfvidgen import train_lib
    out = {}
    for variant, params, train in (("default", {}, {}), ("conditional", {"conditional": True}, {}),
                                   ("ema", {}, {"ema_decay": 0.9})):
        with tempfile.TemporaryDirectory() as tmp:
            config = tiny_config(workdir=os.path.join(tmp, "w"), **params).replace(
                train={"train_steps": 3, **train}, runtime={"checkpoint_every": 3})
            train_lib.run(config)
            path = tf.train.latest_checkpoint(os.path.join(tmp, "w", "checkpoints"))
            for name, _ in tf.train.list_variables(path):
                if name != "_CHECKPOINTABLE_OBJECT_GRAPH":
                    out[f"{variant}:{name}"] = np.asarray(tf.train.load_variable(path, name))
    return out


def compare(a: dict, b: dict) -> int:
    if set(a) != set(b):
        print("different checkpoint keys:", sorted(set(a) ^ set(b))[:20])
        return 1
    worst = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64))))
                if a[k].size and a[k].dtype.kind in "fiu" else 0.0 for k in a)
    bitwise = all(a[k].tobytes() == b[k].tobytes() for k in a)
    print(f"{len(a)} checkpoint values; bitwise identical: {bitwise}; max |diff| {worst:.3g}")
    return 0 if bitwise or worst <= 1e-6 else 1


if __name__ == "__main__":
    values = fingerprint()
    np.savez(sys.argv[1], **values)
    if "--compare" in sys.argv:
        other = dict(np.load(sys.argv[sys.argv.index("--compare") + 1], allow_pickle=False))
        sys.exit(compare(other, values))
    print(f"wrote {len(values)} values to {sys.argv[1]}")
