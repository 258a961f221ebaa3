"""Re-measures the values that the test suite's learned-behaviour assertions check, over seeds.

A threshold on a trained model's quality must hold on every numeric backend (oneDNN on or off,
AVX-512 or AVX2 kernels) and every seed, so its margin is measured here, not guessed:

  TF_ENABLE_ONEDNN_OPTS=1 python tools/measure_margins.py --seeds=0,1,2,3,4 > on.jsonl
  TF_ENABLE_ONEDNN_OPTS=0 python tools/measure_margins.py --seeds=0,1,2,3,4 > off.jsonl
  ONEDNN_MAX_CPU_ISA=AVX2 TF_ENABLE_ONEDNN_OPTS=1 python tools/measure_margins.py ...  # AVX2 kernels

One JSON line per seed (the evaluation classifier trained with that protocol seed, and the
identity/ranking/protocol values computed from it); the test files cite the worst values seen.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import tfvidgen  # noqa: E402,F401  (oneDNN default before TensorFlow loads)

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Protocol/model seeds to measure.")
_STEPS = flags.DEFINE_integer("steps", 0, "Classifier training steps (0: the suite's protocol).")


def _measure(seed: int) -> dict:
    import keras

    from tests import helpers
    from tfvidgen import hardware
    from tfvidgen.eval import classifier, metrics, protocol

    p = dataclasses.replace(helpers.CLASSIFIER_PROTOCOL, seed=seed,
                            steps=_STEPS.value or helpers.CLASSIFIER_PROTOCOL.steps)
    helpers.CLASSIFIER_PROTOCOL = p          # the helpers read the module-level protocol
    out = {"seed": seed, "steps": p.steps, "backend": hardware.onednn_state(),
           "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native")}
    with tempfile.TemporaryDirectory() as tmp:
        clf, meta = classifier.train_classifier(p, tmp, log=lambda *_: None)
    out["action_accuracy"] = meta["test_accuracy"]
    out["identity_accuracy"] = meta["identity_test_accuracy"]
    shared, shuffled = helpers.identity_groups()
    out["identity_share_shared"] = helpers.identity_share(clf, shared)
    out["identity_share_shuffled"] = helpers.identity_share(clf, shuffled)

    reference_out = classifier.predict(clf, helpers.real_test_videos(0)[0])
    real, labels = helpers.real_test_videos(96)
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)
    frozen = np.repeat(real[:, :1], real.shape[1], axis=1)
    scores = {name: helpers.set_scores(clf, v, labels, reference_out["features"],
                                       meta["test_accuracy"])
              for name, v in (("real", real), ("noise", noise), ("frozen", frozen))}
    out["scores"] = scores
    out["is_bound"] = metrics.inception_score(reference_out["action"])
    out["h_bound"] = metrics.conditional_entropy(reference_out["action"])

    # The protocol tests: an untrained tiny G3AN against the real bounds (init drawn from `seed`).
    keras.utils.set_random_seed(seed)
    gan = helpers.eval_gan()
    ep = protocol.EvalProtocol(32, 2, 0, p, meta["weights_sha256"])
    with tempfile.TemporaryDirectory() as tmp:
        real_stats = protocol.real_statistics(ep, clf, tmp)
    results = protocol.evaluate_model(gan, clf, ep, real_stats, log=lambda *_: None)
    out["untrained_fd"] = results["fd"]["mean"]
    out["fd_bound"] = results["fd"]["experimental_bound"]
    out["untrained_is"] = results["is"]["mean"]
    out["is_experimental_bound"] = results["is"]["experimental_bound"]
    keras.utils.set_random_seed(seed)
    cgan = helpers.eval_gan(conditional=True)
    quick = dataclasses.replace(p, steps=60)
    ep = protocol.EvalProtocol(32, 1, 0, quick, meta["weights_sha256"])
    with tempfile.TemporaryDirectory() as tmp:
        real_stats = protocol.real_statistics(ep, clf, tmp)
    results = protocol.evaluate_model(cgan, clf, ep, real_stats, ["label_accuracy", "s3"],
                                      log=lambda *_: None)
    out["s3_rer"] = results["s3"]["parts"]["ReR"]
    out["untrained_s3"] = results["s3"]["mean"]
    out["untrained_label_accuracy"] = results["label_accuracy"]["mean"]
    return out


def main(argv):
    del argv
    for seed in _SEEDS.value:
        print(json.dumps(_measure(int(seed))), flush=True)


if __name__ == "__main__":
    app.run(main)
