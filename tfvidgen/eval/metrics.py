"""Evaluation metrics as pure NumPy functions (natural log), following the TwoStreamVAN appendix
(H(y), H(y|v), IS with a classifier trained per dataset) and the MVT paper (S3).

The caller runs the classifier / feature extractor and passes probabilities or features in
(TF-GAN's split between running a network and the *_from_activations maths).
"""

from __future__ import annotations

import numpy as np

__all__ = ["marginal_entropy", "conditional_entropy", "inception_score", "frechet_distance",
           "frechet_distance_from_features", "s3_score", "mean_std", "psnr", "ssim",
           "frame_psnr", "frame_ssim"]

_EPS = 1e-12


def _probs(probs) -> np.ndarray:
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4) or (p < 0).any():
        raise ValueError("probs must be [N, K] rows of class probabilities summing to 1")
    return p


def marginal_entropy(probs) -> float:
    """H(y) = -sum_y p(y) log p(y) with p(y) = mean_v p(y|v): diversity over classes (higher)."""
    marginal = _probs(probs).mean(axis=0)
    return float(-(marginal * np.log(marginal + _EPS)).sum())


def conditional_entropy(probs) -> float:
    """E_v[H(y|v)]: how confidently each video is classified (lower is better)."""
    p = _probs(probs)
    return float(-(p * np.log(p + _EPS)).sum(axis=1).mean())


def inception_score(probs) -> float:
    """IS = exp(E_v KL(p(y|v) || p(y))) = exp(H(y) - E_v[H(y|v)])."""
    return float(np.exp(marginal_entropy(probs) - conditional_entropy(probs)))


#: eigenvalues down to -ROUND_OFF * (the largest |eigenvalue|) are round-off of a PSD matrix
ROUND_OFF = 1e-6


def _psd_eigh(matrix: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric PSD matrix with round-off's tiny negative eigenvalues
    clipped to 0; a clearly negative one (below -ROUND_OFF * largest) raises: the matrix is not
    PSD (the failure sqrtm shows as an imaginary part)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    top = max(float(np.abs(values).max()), 1e-300)
    if values.min() < -ROUND_OFF * top:
        raise ValueError(f"{what} is not positive semi-definite (eigenvalue {values.min():.3g} "
                         f"of {top:.3g})")
    return np.clip(values, 0, None), vectors


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), in float64.

    The trace of (S1 S2)^(1/2) is that of the symmetric PSD (S1^(1/2) S2 S1^(1/2))^(1/2), through
    eigen-decompositions: no complex parts and no ill-conditioned sqrtm iterations. One rule for
    both decompositions (_psd_eigh): negative eigenvalues within round-off are clipped to 0,
    clearly negative ones raise ValueError.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    values, vectors = _psd_eigh(sigma1, "the first covariance")
    root1 = (vectors * np.sqrt(values)) @ vectors.T
    eigenvalues, _ = _psd_eigh(root1 @ sigma2 @ root1, "S1^(1/2) S2 S1^(1/2)")
    trace_sqrt = np.sqrt(eigenvalues).sum()
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)
    return max(value, 0.0)


def frechet_distance_from_features(features1, features2) -> float:
    """Frechet distance between Gaussians fitted to two feature sets [N, D]."""
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features must be [N, D] with equal D, got {f1.shape} and {f2.shape}")
    if min(len(f1), len(f2)) < 2:
        raise ValueError("need at least 2 feature vectors per set")
    return frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0),
                            np.cov(f2, rowvar=False))


def s3_score(ser: float, res: float, rer: float) -> float:
    """MVT's S3 = sqrt((SeR / ReR) * (ReS / ReR)).

    ser: accuracy on real test videos of a classifier trained on generated videos;
    res: accuracy of the real-trained classifier on generated videos (with their requested labels);
    rer: accuracy of the real-trained classifier on real test videos.
    """
    if rer <= 0:
        raise ValueError("ReR must be > 0")
    return float(np.sqrt(max(ser, 0.0) / rer * max(res, 0.0) / rer))


def mean_std(values) -> tuple[float, float]:
    """Mean and (population) standard deviation over repeats."""
    v = np.asarray(values, np.float64)
    return float(v.mean()), float(v.std())


def frame_psnr(videos, references) -> np.ndarray:
    """PSNR (dB) of every frame of uint8-range videos [..., H, W, 3]: an array of shape [...]
    (Dual-MTGAN's transfer metric, against the renderer's ground truth)."""
    a = np.asarray(videos, np.float64)
    b = np.broadcast_to(np.asarray(references, np.float64), a.shape)
    mse = ((a - b) ** 2).mean(axis=(-3, -2, -1))
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))


def frame_ssim(videos, references) -> np.ndarray:
    """SSIM of every frame (Gaussian window 11, sigma 1.5, as tf.image.ssim): shape [...]."""
    import tensorflow as tf
    a = np.asarray(videos, np.float32)
    b = np.broadcast_to(np.asarray(references, np.float32), a.shape)
    flat = tf.image.ssim(tf.constant(a.reshape(-1, *a.shape[-3:])),
                         tf.constant(b.reshape(-1, *a.shape[-3:])), max_val=255.0)
    return flat.numpy().reshape(a.shape[:-3])


def psnr(videos, references) -> float:
    """Mean PSNR (dB) over frames of uint8-range videos [..., H, W, 3]."""
    return float(frame_psnr(videos, references).mean())


def ssim(videos, references) -> float:
    """Mean SSIM over frames."""
    return float(frame_ssim(videos, references).mean())
