"""Synthetic datasets: determinism, factor semantics, value ranges and learnable classes."""

import dataclasses

import numpy as np
import pytest

from tfvidgen.data import synthetic as syn


def _factors(**overrides):
    base = syn.ActionFactors(action=5, actor=0, background=0, phase=0.1, speed=1.0,
                             amplitude=0.9, start_x=0.5, direction=1)
    return dataclasses.replace(base, **overrides)


def _centroids(coverage):
    """Per-frame (x, y) centroid of the figure coverage, in pixels: [T, 2]."""
    t, h, w = coverage.shape
    ys, xs = np.mgrid[0:h, 0:w]
    mass = coverage.sum(axis=(1, 2))
    return np.stack([(coverage * xs).sum(axis=(1, 2)) / mass,
                     (coverage * ys).sum(axis=(1, 2)) / mass], axis=1)


def test_same_seed_same_video_and_factors():
    a = syn.sample_factors("synthetic_actions", 3, 17)
    b = syn.sample_factors("synthetic_actions", 3, 17)
    assert a == b
    assert syn.sample_factors("synthetic_actions", 4, 17) != a
    np.testing.assert_array_equal(syn.render_actions(a), syn.render_actions(b))


@pytest.mark.parametrize("dataset,size", [("synthetic_actions", 64), ("synthetic_shapes", 32)])
def test_shapes_dtype_and_range(dataset, size):
    videos = np.stack([syn.render(dataset, syn.sample_factors(dataset, 0, i), range(16), size)
                       for i in range(8)])
    assert videos.shape == (8, 16, size, size, 3) and videos.dtype == np.uint8
    assert videos.min() >= 0 and videos.max() <= 255 and videos.std() > 10
    # Something moves in every video.
    assert all(np.abs(np.diff(v.astype(np.int16), axis=0)).mean() > 0.05 for v in videos)


def test_every_factor_is_drawn_over_its_range():
    fs = [syn.sample_factors("synthetic_actions", 0, i) for i in range(400)]
    assert {f.action for f in fs} == set(range(len(syn.ACTIONS)))
    assert {f.actor for f in fs} == set(range(len(syn.ACTORS)))
    assert {f.background for f in fs} == set(range(len(syn.BACKGROUNDS)))
    assert len(syn.ACTIONS) >= 6 and len(syn.ACTORS) >= 8 and len(syn.BACKGROUNDS) >= 4


def test_background_changes_only_background_pixels():
    video_a, cover_a = syn.render_actions_with_mask(_factors(background=0), range(16))
    video_b, cover_b = syn.render_actions_with_mask(_factors(background=4), range(16))
    np.testing.assert_array_equal(cover_a, cover_b)
    inside = cover_a == 1.0
    np.testing.assert_array_equal(video_a[inside], video_b[inside])
    outside = cover_a == 0.0
    assert np.abs(video_a[outside].astype(int) - video_b[outside]).mean() > 20


def test_other_actor_same_motion_keeps_silhouette_positions():
    # Actors 0 and 6 have the same body size (thickness differs): same skeleton, other look.
    _, cover_a = syn.render_actions_with_mask(_factors(actor=0), range(32))
    video_b, cover_b = syn.render_actions_with_mask(_factors(actor=6), range(32))
    # Thicker limbs shift the vertical centroid a little (the head does not grow); x is unchanged.
    np.testing.assert_allclose(_centroids(cover_a)[:, 0], _centroids(cover_b)[:, 0], atol=0.5)
    np.testing.assert_allclose(_centroids(cover_a)[:, 1], _centroids(cover_b)[:, 1], atol=1.5)
    # Every actor (other sizes too) follows the same trajectory: walk moves right by the same amount.
    for actor in range(len(syn.ACTORS)):
        _, cover = syn.render_actions_with_mask(_factors(actor=actor), range(32))
        travel = _centroids(cover)[-1, 0] - _centroids(cover)[0, 0]
        assert travel == pytest.approx(_centroids(cover_a)[-1, 0] - _centroids(cover_a)[0, 0],
                                       abs=1.5)
    video_a = syn.render_actions(_factors(actor=0), range(32))
    assert np.abs(video_a.astype(int) - video_b).mean() > 1.0      # but the pixels differ


def test_other_action_same_actor_changes_motion():
    masks = {a: syn.render_actions_with_mask(_factors(action=a), range(24))[1]
             for a in range(len(syn.ACTIONS))}
    for a in masks:
        for b in masks:
            if a < b:
                union = np.maximum(masks[a], masks[b]).sum()
                changed = np.abs(masks[a] - masks[b]).sum() / union
                assert changed > 0.1, (syn.ACTIONS[a], syn.ACTIONS[b], changed)


def test_render_is_continuous_in_time_so_strided_clips_match():
    f = _factors(action=2)
    full = syn.render_actions(f, range(32))
    np.testing.assert_array_equal(syn.render_actions(f, range(3, 32, 4)), full[3::4])


def _motion_features(video):
    """Motion-energy image (mean |frame difference|) pooled to 8x8, normalised: a tiny feature."""
    gray = video.astype(np.float32).mean(-1)
    energy = np.abs(np.diff(gray, axis=0)).mean(0)
    h = energy.shape[0] // 8
    pooled = energy.reshape(8, h, 8, h).mean(axis=(1, 3)).reshape(-1)
    return pooled / (np.linalg.norm(pooled) + 1e-6)


def test_action_classes_are_learnable_by_nearest_centroid():
    fs = [syn.sample_factors("synthetic_actions", 11, i) for i in range(480)]
    x = np.stack([_motion_features(syn.render_actions(f, range(0, 32, 2), 32)) for f in fs])
    y = np.array([f.action for f in fs])
    train, test = slice(0, 320), slice(320, None)
    centroids = np.stack([x[train][y[train] == k].mean(0) for k in range(len(syn.ACTIONS))])
    pred = np.argmin(((x[test][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    accuracy = (pred == y[test]).mean()
    assert accuracy > 0.5, accuracy         # chance is 1/8
