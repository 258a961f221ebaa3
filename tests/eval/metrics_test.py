"""Metric maths against hand-computed values."""

import math

import numpy as np
import pytest

from tfvidgen.eval import metrics


def test_perfect_confident_balanced_classifier():
    k = 6
    probs = np.eye(k)[np.arange(60) % k]
    assert metrics.inception_score(probs) == pytest.approx(k)
    assert metrics.marginal_entropy(probs) == pytest.approx(math.log(k))
    assert metrics.conditional_entropy(probs) == pytest.approx(0.0, abs=1e-9)


def test_uniform_predictions_and_mode_collapse():
    uniform = np.full((10, 4), 0.25)
    assert metrics.inception_score(uniform) == pytest.approx(1.0)
    assert metrics.conditional_entropy(uniform) == pytest.approx(math.log(4))
    collapsed = np.eye(4)[np.zeros(10, int)]             # confident but always the same class
    assert metrics.inception_score(collapsed) == pytest.approx(1.0)
    assert metrics.marginal_entropy(collapsed) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="summing to 1"):
        metrics.inception_score(np.ones((2, 3)))


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 8))
    assert metrics.frechet_distance_from_features(features, features) == pytest.approx(0, abs=1e-6)
    mu = np.zeros(3)
    shift = np.array([1.0, 2.0, -2.0])
    eye = np.eye(3)
    assert metrics.frechet_distance(mu, eye, mu + shift, eye) == pytest.approx(9.0)
    # Isotropic a^2 I vs b^2 I: ||d||^2 + n (a - b)^2.
    assert metrics.frechet_distance(mu, 4 * eye, mu + shift, 0.25 * eye) == \
        pytest.approx(9.0 + 3 * (2 - 0.5) ** 2)
    # Sampled shifted Gaussians approach the closed form.
    other = rng.normal(size=(20000, 3)) + shift
    base = rng.normal(size=(20000, 3))
    assert metrics.frechet_distance_from_features(base, other) == pytest.approx(9.0, rel=0.03)


def test_frechet_distance_is_stable_for_singular_covariances():
    rank_deficient = np.random.default_rng(1).normal(size=(5, 16))      # N < D: singular
    value = metrics.frechet_distance_from_features(rank_deficient, rank_deficient + 1.0)
    assert value == pytest.approx(16.0, rel=1e-6)


def test_frechet_distance_clips_round_off_and_refuses_a_non_psd_covariance():
    """One rule: eigenvalues within -1e-6 of the largest are round-off (clipped to 0), a clearly
    negative one is an error naming the matrix."""
    mu, eye = np.zeros(2), np.eye(2)
    almost = np.diag([1.0, -1e-9])                     # a PSD matrix after round-off
    assert metrics.frechet_distance(mu, almost, mu, almost) == pytest.approx(0, abs=1e-9)
    assert metrics.frechet_distance(mu, eye, mu, almost) == pytest.approx(1.0, rel=1e-6)
    not_psd = np.diag([1.0, -0.5])
    with pytest.raises(ValueError, match="first covariance is not positive semi-definite"):
        metrics.frechet_distance(mu, not_psd, mu, eye)
    with pytest.raises(ValueError, match=r"S1\^\(1/2\) S2 S1\^\(1/2\) is not positive"):
        metrics.frechet_distance(mu, eye, mu, not_psd)


def test_s3_and_mean_std():
    assert metrics.s3_score(0.5, 0.5, 1.0) == pytest.approx(0.5)
    assert metrics.s3_score(0.9, 0.9, 0.9) == pytest.approx(1.0)
    assert metrics.mean_std([1.0, 3.0]) == (2.0, 1.0)
    with pytest.raises(ValueError):
        metrics.s3_score(0.5, 0.5, 0.0)


def test_psnr_and_ssim():
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (2, 3, 32, 32, 3)).astype(np.float64)
    assert metrics.psnr(video, video) > 90 and metrics.ssim(video, video) == pytest.approx(1.0)
    noisy = np.clip(video + 16.0 * np.sign(rng.normal(size=video.shape)), 0, 255)
    mse = ((noisy - video) ** 2).mean()
    assert metrics.psnr(noisy, video) == pytest.approx(10 * np.log10(255 ** 2 / mse), rel=0.05)
    noisier = np.clip(video + 64.0 * np.sign(rng.normal(size=video.shape)), 0, 255)
    assert metrics.ssim(noisier, video) < metrics.ssim(noisy, video) < 0.99
