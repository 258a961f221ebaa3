"""Image-to-video evaluation against the renderer's ground truth (Dual-MTGAN's protocol).

synthetic_actions knows the answer, so both of Dual-MTGAN's tasks are scored exactly (the
triples are rendered by tfvidgen.data.triples; transfer_set and continuation_set are
re-exported here):
- deterministic motion transfer: a target image y (an actor on a background, in a pose of its own)
  and a source video V (another actor, background and motion) -> a video of y's actor on y's
  background doing V's motion. Ground truth: V's motion factors rendered with y's actor and
  background. Scored by PSNR and SSIM per time step and on average.
- stochastic generation: the first frame of a test video -> K videos; per time step the best PSNR
  and the best SSIM over the K against the true continuation (the paper: K = 25, best-of-K, not
  the average).

Models plug in through plain callables over NumPy videos in [-1, 1]:
    transfer_fn(target_images [N, H, W, 3], source_videos [N, T, H, W, 3]) -> [N, T, H, W, 3]
    generate_fn(first_frames [N, H, W, 3], sample_index: int) -> [N, T, H, W, 3]
"""

from __future__ import annotations

import time

import numpy as np

from tfvidgen.data.triples import continuation_set, transfer_set  # noqa: F401 (re-exported)
from tfvidgen.eval import metrics

__all__ = ["transfer_set", "continuation_set", "score_videos", "motion_transfer_scores",
           "best_of_k_scores"]


def _to_uint8_range(videos: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(videos, np.float32), -1.0, 1.0) + 1.0) * 127.5


def score_videos(videos, ground_truth) -> dict:
    """PSNR and SSIM of every frame: {"psnr": [N, T], "ssim": [N, T]} for videos in [-1, 1]."""
    videos, ground_truth = np.asarray(videos), np.asarray(ground_truth)
    if videos.shape != ground_truth.shape:
        raise ValueError(f"generated videos have shape {videos.shape}, the ground truth "
                         f"{ground_truth.shape}")
    a, b = _to_uint8_range(videos), _to_uint8_range(ground_truth)
    return {"psnr": metrics.frame_psnr(a, b), "ssim": metrics.frame_ssim(a, b)}


def _summary(per_frame: dict) -> dict:
    """Means over videos per time step, and over everything."""
    out = {}
    for name, values in per_frame.items():
        out[name] = float(values.mean())
        out[f"{name}_per_step"] = values.mean(axis=0).tolist()
    return out


def _batches(num: int, batch_size: int):
    return [slice(i, min(i + batch_size, num)) for i in range(0, num, batch_size)]


def motion_transfer_scores(transfer_fn, data: dict, batch_size: int = 32, log=print) -> dict:
    """PSNR/SSIM (mean and per time step) of transfer_fn's videos against the ground truth."""
    num = len(data["target_image"])
    videos = []
    for part in _batches(num, batch_size):
        videos.append(np.asarray(transfer_fn(data["target_image"][part],
                                             data["source_video"][part])))
        log(f"[transfer] {part.stop}/{num} videos")
    return _summary(score_videos(np.concatenate(videos), data["ground_truth"]))


def best_of_k_scores(generate_fn, data: dict, k: int = 25, batch_size: int = 32,
                     log=print) -> dict:
    """Best PSNR and best SSIM over k samples per test video and time step (each maximised on
    its own, as in the paper), averaged over videos: mean and per time step."""
    num = len(data["first_frame"])
    best = {"psnr": np.full(data["ground_truth"].shape[:2], -np.inf),
            "ssim": np.full(data["ground_truth"].shape[:2], -np.inf)}
    start = time.time()
    for sample in range(k):
        for part in _batches(num, batch_size):
            videos = np.asarray(generate_fn(data["first_frame"][part], sample))
            for name, values in score_videos(videos, data["ground_truth"][part]).items():
                best[name][part] = np.maximum(best[name][part], values)
        log(f"[best-of-{k}] sample {sample + 1}/{k} ({time.time() - start:.0f}s)")
    return _summary(best)
