"""Evaluation classifier: learns synthetic_actions at small size, caches by protocol, and the
metrics it feeds rank obviously bad video sets worse (tests.helpers.CLASSIFIER_PROTOCOL)."""

import dataclasses

import numpy as np

from tfvidgen.data import synthetic
from tfvidgen.eval import classifier, metrics

from tests.helpers import CLASSIFIER_PROTOCOL as PROTOCOL


def test_reaches_high_real_test_accuracy(trained):
    _, _, meta = trained
    assert meta["test_accuracy"] > 0.7, meta           # chance is 1/8
    assert meta["identity_test_accuracy"] > 0.9, meta  # chance is 1/8
    assert meta["test_videos"] == 128 and len(meta["weights_sha256"]) == 64


def test_cached_classifier_is_reused_with_identical_predictions(trained):
    out, model, meta = trained
    messages = []
    again, meta_again = classifier.load_or_train(PROTOCOL, out, log=messages.append)
    assert messages and messages[0].startswith("[classifier] cached")
    assert meta_again == meta
    videos = next(iter(classifier.test_split(PROTOCOL, 4)))["video"].numpy()
    first, second = classifier.predict(model, videos), classifier.predict(again, videos)
    np.testing.assert_allclose(first["action"], second["action"], atol=1e-6)
    assert first["features"].shape == (4, 128) and first["identity"].shape == (4, 8)


def _real(offset, count=96):
    batches = list(classifier.test_split(PROTOCOL, 32).skip(offset // 32).take(count // 32))
    return (np.concatenate([b["video"].numpy() for b in batches]),
            np.concatenate([b["label"].numpy() for b in batches]))


def _scores(clf, videos, labels, real_features, rer):
    out = classifier.predict(clf, videos)
    # S3 with a short SeR schedule (60 steps): enough to rank, not to reach the real bound.
    on_videos = classifier.train_on_arrays(videos, labels, dataclasses.replace(PROTOCOL, steps=60),
                                           log=lambda *_: None)
    res = float((out["action"].argmax(1) == labels).mean())
    return {"h_y_given_v": metrics.conditional_entropy(out["action"]),
            "is": metrics.inception_score(out["action"]),
            "fd": metrics.frechet_distance_from_features(out["features"], real_features),
            "s3": metrics.s3_score(classifier.real_test_accuracy(on_videos, PROTOCOL), res, rer)}


def test_real_videos_beat_noise_and_frozen_videos(trained):
    _, clf, meta = trained
    reference_out = classifier.predict(clf, _real(0)[0])
    reference = reference_out["features"]
    real, labels = _real(96)
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)
    frozen = np.repeat(real[:, :1], real.shape[1], axis=1)          # first frame repeated
    s_real, s_noise, s_frozen = (_scores(clf, v, labels, reference, meta["test_accuracy"])
                                 for v in (real, noise, frozen))
    # Another real set scores near the experimental bound (the metrics of the reference set).
    bound_is = metrics.inception_score(reference_out["action"])
    bound_h = metrics.conditional_entropy(reference_out["action"])
    assert abs(s_real["is"] - bound_is) < 0.15 * bound_is, (s_real, bound_is)
    assert abs(s_real["h_y_given_v"] - bound_h) < 0.15, (s_real, bound_h)
    for bad in (s_noise, s_frozen):
        assert s_real["fd"] < bad["fd"] / 2, (s_real, bad)
        assert s_real["is"] > bad["is"] + 1, (s_real, bad)
        assert s_real["h_y_given_v"] < bad["h_y_given_v"] - 0.1, (s_real, bad)
        assert s_real["s3"] > bad["s3"] + 0.2, (s_real, bad)


def _identity_share(clf, videos, per_group):
    ids = classifier.predict(clf, videos)["identity"].argmax(1).reshape(-1, per_group)
    return float((ids[:, 1:] == ids[:, :1]).mean())


def test_identity_share_is_near_one_for_a_shared_actor_and_near_chance_when_shuffled(trained):
    _, clf, _ = trained
    rng = np.random.default_rng(3)
    shared, shuffled = [], []
    for group in range(16):
        base = synthetic.sample_factors("synthetic_actions", 99, group)
        for k in range(4):
            motion = synthetic.sample_factors("synthetic_actions", 98, group * 4 + k)
            same = dataclasses.replace(motion, actor=base.actor, background=base.background)
            other = dataclasses.replace(same, actor=int(rng.integers(len(synthetic.ACTORS))))
            for target, factors in ((shared, same), (shuffled, other)):
                frames = synthetic.render_actions(factors, range(0, 16, 2), 16)
                target.append(frames.astype(np.float32) / 127.5 - 1.0)
    high, low = _identity_share(clf, np.stack(shared), 4), _identity_share(clf, np.stack(shuffled), 4)
    chance = 1 / len(synthetic.ACTORS)
    assert high > 0.9 and low < chance + 0.15, (high, low)
