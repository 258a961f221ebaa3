"""Image-to-video evaluation (Dual-MTGAN's protocol): PSNR/SSIM against a ground truth.

- deterministic motion transfer across appearances (synthetic_actions only: the renderer knows
  the answer; the triples are rendered by tfvidgen.data.triples, transfer_set and
  continuation_set are re-exported here): a target image y (an actor on a background, in a pose
  of its own) and a source video V (another actor, background and motion) -> a video of y's actor
  on y's background doing V's motion. Ground truth: V's motion factors rendered with y's actor
  and background. Scored by PSNR and SSIM per time step and on average.
- self-transfer reconstruction (any real test clip, self_transfer_set): a video's own first frame
  with its own motion -> the video itself.
- stochastic generation (any real test clip): the first frame of a test video -> K videos scored
  against the true continuation (the paper: K = 25, best-of-K, not the average). Headline: per
  test video the ONE sample with the highest mean SSIM (the paper shows "the video with the
  highest SSIM"), its PSNR and SSIM per time step; secondary ("per_step_max"): per time step the
  best PSNR and the best SSIM over the K, each maximised on its own (a mix of samples, >= the
  headline).

Models plug in through plain callables over NumPy videos in [-1, 1]:
    transfer_fn(target_images [N, H, W, 3], source_videos [N, T, H, W, 3]) -> [N, T, H, W, 3]
    generate_fn(first_frames [N, H, W, 3], sample_index: int) -> [N, T, H, W, 3]
With with_labels=True (conditional models) each also gets the batch's data["label"] [N] (the
driving / test video's action) as a last argument.
"""

from __future__ import annotations

import time

import numpy as np

from tfvidgen.data.triples import continuation_set, transfer_set  # noqa: F401 (re-exported)
from tfvidgen.eval import metrics

__all__ = ["transfer_set", "continuation_set", "self_transfer_set", "score_videos",
           "motion_transfer_scores", "best_of_k_scores"]


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


def _summary(per_frame: dict, from_frame: int = 0) -> dict:
    """Means over videos per time step (every step), and over videos and steps >= from_frame."""
    out = {}
    for name, values in per_frame.items():
        out[name] = float(values[:, from_frame:].mean())
        out[f"{name}_per_step"] = values.mean(axis=0).tolist()
    return out


def _batches(num: int, batch_size: int):
    return [slice(i, min(i + batch_size, num)) for i in range(0, num, batch_size)]


def self_transfer_set(videos, labels=None) -> dict:
    """Self-transfer triples of real videos [N, T, H, W, 3] in [-1, 1]: each video's own first
    frame as target_image, the video as source_video and as ground_truth (+ label [N])."""
    videos = np.asarray(videos, np.float32)
    out = {"target_image": videos[:, 0], "source_video": videos, "ground_truth": videos}
    if labels is not None:
        out["label"] = np.asarray(labels)
    return out


def _labels(data: dict, part: slice, with_labels: bool) -> tuple:
    return (data["label"][part],) if with_labels else ()


def motion_transfer_scores(transfer_fn, data: dict, batch_size: int = 32, log=print,
                           with_labels: bool = False, from_frame: int = 0) -> dict:
    """PSNR/SSIM (mean and per time step) of transfer_fn's videos against the ground truth;
    with_labels: transfer_fn also gets data["label"] of the batch (the driving videos');
    from_frame: the means leave out the earlier steps (self-transfer: 1, frame 0 is the input
    image: copied exactly, its PSNR is ~150 dB), "per_step" has them all."""
    num = len(data["target_image"])
    videos = []
    for part in _batches(num, batch_size):
        videos.append(np.asarray(transfer_fn(data["target_image"][part],
                                             data["source_video"][part],
                                             *_labels(data, part, with_labels))))
        log(f"[transfer] {part.stop}/{num} videos")
    return _summary(score_videos(np.concatenate(videos), data["ground_truth"]), from_frame)


def best_of_k_scores(generate_fn, data: dict, k: int = 25, batch_size: int = 32,
                     log=print, with_labels: bool = False, from_frame: int = 0) -> dict:
    """Best of k samples per test video, averaged over videos (the module docstring).

    Returns:
      {"psnr", "ssim", "psnr_per_step", "ssim_per_step"} of the best VIDEO (per test video the
      sample with the highest mean SSIM over steps >= from_frame; ties: the earliest),
      "selected" (that sample's index per test video), and "per_step_max": the same four keys
      with PSNR and SSIM maximised over the samples per time step, each on its own. Means are
      over steps >= from_frame (as motion_transfer_scores), "per_step" lists every step.
    """
    num = len(data["first_frame"])
    scores = {"psnr": np.full((k,) + data["ground_truth"].shape[:2], -np.inf),
              "ssim": np.full((k,) + data["ground_truth"].shape[:2], -np.inf)}   # [K, N, T]
    start = time.time()
    for sample in range(k):
        for part in _batches(num, batch_size):
            videos = np.asarray(generate_fn(data["first_frame"][part], sample,
                                            *_labels(data, part, with_labels)))
            for name, values in score_videos(videos, data["ground_truth"][part]).items():
                scores[name][sample, part] = values
        log(f"[best-of-{k}] sample {sample + 1}/{k} ({time.time() - start:.0f}s)")
    selected = scores["ssim"][:, :, from_frame:].mean(axis=2).argmax(axis=0)       # [N]
    rows = np.arange(num)
    best = _summary({name: values[selected, rows] for name, values in scores.items()},
                    from_frame)
    best["selected"] = selected.tolist()
    best["per_step_max"] = _summary({name: values.max(axis=0)
                                     for name, values in scores.items()}, from_frame)
    return best
