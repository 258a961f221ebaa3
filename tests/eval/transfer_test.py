"""Image-to-video evaluation: PSNR/SSIM rank transfers sensibly, best-of-K takes the best video
(and reports the per-step maximum beside it), labels reach conditional callables."""

import numpy as np
import pytest

from tfvidgen.data import triples as triples_lib
from tfvidgen.eval import transfer

FRAMES, SIZE = 6, 32


@pytest.fixture(scope="module")
def triples():
    return transfer.transfer_set(12, seed=5, num_frames=FRAMES, resolution=SIZE, stride=2)


def test_triple_rendering_is_reexported_from_data():
    # Evaluation scripts importing the sets from here keep working after the move to data.
    assert transfer.transfer_set is triples_lib.transfer_set
    assert transfer.continuation_set is triples_lib.continuation_set


def test_perfect_transfer_scores_the_maximum(triples):
    scores = transfer.motion_transfer_scores(lambda image, video: triples["ground_truth"][
        _rows(triples["target_image"], image)], triples, batch_size=5, log=lambda *_: None)
    assert scores["psnr"] > 100 and scores["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert len(scores["psnr_per_step"]) == FRAMES


def _rows(all_images, batch):
    """Indices of a batch of target images in the full set (transfer_fn sees batches)."""
    return [int(np.argmin(np.abs(all_images - image).sum(axis=(1, 2, 3)))) for image in batch]


def test_copying_the_source_or_freezing_the_target_scores_worse_than_a_near_miss(triples):
    log = []
    # A near miss: the right video, slightly noisy.
    noise = np.random.default_rng(0).normal(0, 0.02, triples["ground_truth"].shape)
    near = transfer.motion_transfer_scores(
        lambda image, video: triples["ground_truth"][_rows(triples["target_image"], image)]
        + noise[_rows(triples["target_image"], image)], triples, log=log.append)
    copy_source = transfer.motion_transfer_scores(lambda image, video: video, triples,
                                                  log=lambda *_: None)
    frozen_target = transfer.motion_transfer_scores(
        lambda image, video: np.repeat(image[:, None], video.shape[1], axis=1), triples,
        log=lambda *_: None)
    assert log == ["[transfer] 12/12 videos"]
    for bad in (copy_source, frozen_target):
        assert near["psnr"] > bad["psnr"] + 5 and near["ssim"] > bad["ssim"] + 0.2, (near, bad)


def test_score_videos_rejects_a_shape_mismatch(triples):
    with pytest.raises(ValueError, match="shape"):
        transfer.score_videos(triples["source_video"][:, :2], triples["ground_truth"])


def test_best_of_k_headline_is_one_best_video_and_the_per_step_maximum_is_secondary():
    """Sample 0 is exact in the first half of the clip, sample 1 in the second half and closer
    overall: the headline is sample 1's own curve, the per-step maximum mixes the two."""
    data = transfer.continuation_set(3, seed=2, num_frames=FRAMES, resolution=SIZE)
    truth, half = data["ground_truth"], FRAMES // 2
    rng = np.random.default_rng(0)
    noise = {0: rng.normal(0, 0.5, truth.shape), 1: rng.normal(0, 0.1, truth.shape)}

    def rows(first_frames):
        return [int(np.argmin(np.abs(data["first_frame"] - f).sum(axis=(1, 2, 3))))
                for f in first_frames]

    def two_halves(first_frames, sample):
        videos = truth[rows(first_frames)].copy()
        exact = slice(0, half) if sample == 0 else slice(half, None)
        noisy = slice(half, None) if sample == 0 else slice(0, half)
        videos[:, noisy] += noise[sample][rows(first_frames)][:, noisy]
        return videos

    best = transfer.best_of_k_scores(two_halves, data, k=2, batch_size=2, log=lambda *_: None)
    assert best["selected"] == [1, 1, 1]
    own = transfer.score_videos(two_halves(data["first_frame"], 1), truth)
    np.testing.assert_allclose(best["ssim_per_step"], own["ssim"].mean(axis=0))
    np.testing.assert_allclose(best["psnr"], own["psnr"].mean())
    step_max = best["per_step_max"]
    assert step_max["ssim_per_step"][0] == pytest.approx(1.0, abs=1e-5)      # sample 0's half
    assert step_max["ssim_per_step"][-1] == pytest.approx(1.0, abs=1e-5)     # sample 1's half
    assert best["ssim_per_step"][0] < 0.99 and step_max["ssim"] > best["ssim"]
    # from_frame=1: the means (and the choice) leave out frame 0, "per_step" keeps it.
    later = transfer.best_of_k_scores(two_halves, data, k=2, log=lambda *_: None, from_frame=1)
    assert len(later["psnr_per_step"]) == FRAMES
    assert later["psnr"] == pytest.approx(np.mean(later["psnr_per_step"][1:]))
    assert later["per_step_max"]["ssim"] == pytest.approx(
        np.mean(later["per_step_max"]["ssim_per_step"][1:]))


def test_labels_reach_the_callables_when_asked():
    data = transfer.continuation_set(3, seed=3, num_frames=FRAMES, resolution=SIZE)
    data["label"] = np.array([4, 5, 6])
    seen = []

    def generate(first_frames, sample, labels):
        seen.append(list(labels))
        return np.repeat(first_frames[:, None], FRAMES, axis=1)

    transfer.best_of_k_scores(generate, data, k=1, batch_size=2, log=lambda *_: None,
                              with_labels=True)
    own = transfer.self_transfer_set(data["ground_truth"], data["label"])
    np.testing.assert_array_equal(own["target_image"], data["first_frame"])
    transfer.motion_transfer_scores(lambda image, video, labels: seen.append(list(labels))
                                    or video, own, batch_size=2, log=lambda *_: None,
                                    with_labels=True)
    assert seen == [[4, 5], [6], [4, 5], [6]]


def test_best_of_k_takes_the_best_sample_per_step():
    data = transfer.continuation_set(4, seed=1, num_frames=FRAMES, resolution=SIZE)
    np.testing.assert_array_equal(data["first_frame"], data["ground_truth"][:, 0])
    truth = data["ground_truth"]

    def frozen(first_frames, sample):
        return np.repeat(first_frames[:, None], FRAMES, axis=1)

    def noisy(first_frames, sample):          # sample 2 is the truth, the others are noisy
        rows = [int(np.argmin(np.abs(data["first_frame"] - f).sum(axis=(1, 2, 3))))
                for f in first_frames]
        scale = 0.0 if sample == 2 else 0.3
        return truth[rows] + np.random.default_rng(sample).normal(0, scale, truth[rows].shape)

    still = transfer.best_of_k_scores(frozen, data, k=2, log=lambda *_: None)
    # The first frame is exact; later frames drift away from it as the actor moves.
    assert still["psnr_per_step"][0] > 100 and still["psnr_per_step"][-1] < 40
    one = transfer.best_of_k_scores(noisy, data, k=1, log=lambda *_: None)
    three = transfer.best_of_k_scores(noisy, data, k=3, log=lambda *_: None)
    assert one["psnr"] < 20 and three["psnr"] > 100 and three["ssim"] == pytest.approx(1, abs=1e-5)
