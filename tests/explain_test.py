"""tfvidgen.explain: saliency of the discriminators, CAMs of the evaluation classifier, each
model's declared views, and the CLI's outputs and errors."""

import glob
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.cli_helpers import assert_one_error_line
from tests.helpers import (CLASSIFIER_PROTOCOL, REPO, subprocess_env, tiny_config, tiny_model,
                           training_batches)
from tfvidgen import explain, explain_lib, models
from tfvidgen.data import synthetic


class _QuadrantModel:
    """A model whose only discriminator looks at the top-left quadrant of every frame."""

    def __init__(self):
        self.d = keras.Sequential([keras.layers.Conv3D(4, 3, padding="same", activation="relu"),
                                   keras.layers.GlobalAveragePooling3D(), keras.layers.Dense(1)])

    def discriminator_scores(self, videos, labels=None):
        return {"quadrant": self.d(videos[:, :, :8, :8])[:, 0]}


def test_saliency_of_a_discriminator_that_sees_one_quadrant_is_concentrated_there():
    videos = np.random.default_rng(0).uniform(-1, 1, (2, 4, 16, 16, 3)).astype(np.float32)
    maps = explain_lib.discriminator_saliency(_QuadrantModel(), videos, smooth_samples=4)
    quadrant = maps["quadrant"]
    assert quadrant.shape == (2, 4, 16, 16)
    share = quadrant[:, :, :8, :8].sum() / quadrant.sum()
    assert share > 0.9, share


def test_saliency_of_every_discriminator_has_the_video_shape_and_real_values():
    config = tiny_config()
    model = tiny_model(config)
    model.train_step(training_batches(config, 1, model)[0])
    videos = model.generate(model.sample_inputs(2, 0)).numpy()
    maps = explain_lib.discriminator_saliency(model, videos, smooth_samples=3)
    assert set(maps) == {"video_discriminator", "image_discriminator"}
    for name, m in maps.items():
        assert m.shape == videos.shape[:4], name
        assert np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1, name
        assert m.std() > 0.01, name                 # not constant
    # The two discriminators are different networks: different maps.
    assert not np.allclose(maps["video_discriminator"], maps["image_discriminator"])


def test_gradcam_of_the_classifier_is_higher_on_the_actor_than_on_the_background(trained):
    """On 16 synthetic_actions clips with the renderer's figure coverage: the classifier's
    predicted-action Grad-CAM has a higher mean on actor pixels than on background pixels.
    Measured actor/background ratio (16 clips, the 800-step classifier): 1.24 with oneDNN on,
    1.17 with it off (identity head: 1.19 / 1.14); asserted > 1.05."""
    _, classifier, _ = trained
    rng = np.random.default_rng(0)
    clips = [synthetic.render_actions_with_mask(synthetic.sample_action_factors(rng),
                                                range(CLASSIFIER_PROTOCOL.num_frames),
                                                CLASSIFIER_PROTOCOL.resolution)
             for _ in range(16)]
    videos = np.stack([v for v, _ in clips]).astype(np.float32) / 127.5 - 1
    coverage = np.stack([m for _, m in clips])
    maps, predicted = explain_lib.classifier_cam(classifier, videos, "gradcam")
    assert set(maps) == {"action", "identity"} and predicted["action"].shape == (16,)
    action = maps["action"]
    assert action.shape == coverage.shape and np.isfinite(action).all()
    actor, background = action[coverage > 0.5].mean(), action[coverage == 0].mean()
    assert actor > 1.05 * background, (actor, background)


@pytest.mark.parametrize("key", sorted(models.MODELS))
def test_every_declared_view_of_every_model_runs(key):
    model = tiny_model(tiny_config(key))
    for name, (help_, fn) in model.explain_views().items():
        assert help_
        video, panels = fn(model.sample_inputs(2, 3))
        assert video.shape[:2] == (2, model.cfg.num_frames) and panels, name
        for panel, maps in panels.items():
            maps = np.asarray(maps)
            assert maps.shape == tuple(video.shape[:4]), (name, panel)
            assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1, (name, panel)


def test_g3an_attention_view_shows_attention_weights():
    """Temporal: the middle frame's attention over the frames sums to 1 at every pixel.
    Spatial: each frame's map is normalised to a maximum of 1."""
    model = tiny_model(tiny_config())
    for attention in model.generator.attention.temporal, model.generator.attention.spatial:
        attention.gamma.assign(1.0)              # gamma starts at 0: make attention count
    video, panels = model.explain_views()["attention"][1](model.sample_inputs(2, 0))
    np.testing.assert_allclose(panels["temporal"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(panels["spatial"].numpy().max(axis=(2, 3)), 1.0, rtol=1e-6)
    assert panels["temporal"].numpy().std() > 0
    np.testing.assert_array_equal(video.numpy(),
                                  model.generate(model.sample_inputs(2, 0)).numpy())


def test_side_by_side_puts_frames_then_one_overlay_per_panel():
    videos = np.full((2, 3, 4, 5, 3), 100, np.uint8)
    zero, one = np.zeros((2, 3, 4, 5)), np.ones((2, 3, 4, 5))
    grid = explain_lib.side_by_side(videos, {"none": zero, "all": one})
    assert grid.shape == (2, 3, 4, 3 * 5 + 2, 3)
    np.testing.assert_array_equal(grid[..., :5, :], videos)
    np.testing.assert_array_equal(grid[..., 6:11, :], videos)      # zero heat: the frame
    assert not np.array_equal(grid[..., 12:, :], videos)          # full heat: coloured


def _explain(workdir, *flags):
    return subprocess.run([sys.executable, "-m", "tfvidgen.explain", f"--workdir={workdir}",
                           *flags], cwd=REPO, env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)


def test_cli_writes_saliency_and_tensorboard_and_names_bad_requests(trained_workdir, tmp_path):
    workdir, _ = trained_workdir
    out = tmp_path / "saliency.gif"
    result = _explain(workdir, "--view=saliency_d", "--num_videos=2", "--smooth_samples=2",
                      f"--output={out}", "--tensorboard")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "video_discriminator | image_discriminator" in result.stdout
    import imageio.v3 as iio
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 4 and frames.shape[2] == 3 * 16 + 2   # T frames, 3 columns
    assert glob.glob(os.path.join(workdir, "tensorboard", "explain", "events.*"))

    wrong = _explain(workdir, "--view=nonsense", f"--output={tmp_path / 'x.gif'}")
    assert_one_error_line(wrong, "explain")
    assert "--view=nonsense" in wrong.stderr and "saliency_d" in wrong.stderr
    assert "attention" in wrong.stderr
    no_classifier = _explain(workdir, "--view=gradcam_classifier",
                             f"--output={tmp_path / 'y.gif'}")
    assert_one_error_line(no_classifier, "explain")
    assert "python -m tfvidgen.evaluate" in no_classifier.stderr
    assert not (tmp_path / "x.gif").exists() and not (tmp_path / "y.gif").exists()


def test_explain_library_refuses_real_clips_for_generator_views():
    model = tiny_model(tiny_config())
    with pytest.raises(ValueError, match="--real"):
        explain.explain(model, tiny_config(), "attention", 2, 0, real=True)
    with pytest.raises(ValueError, match="has no such view"):
        explain.explain(model, tiny_config(), "motion_masks", 2, 0)
    videos, panels = explain.explain(model, tiny_config(), "saliency_d", 2, 0, real=True,
                                     smooth_samples=2, log=lambda *_: None)
    assert videos.dtype == np.uint8 and videos.shape == (2, 4, 16, 16, 3)
    assert tf.reduce_all(tf.constant([m.shape == (2, 4, 16, 16) for m in panels.values()]))


def test_stacked_rows_are_each_video_then_its_overlays():
    videos = np.stack([np.full((3, 4, 5, 3), v, np.uint8) for v in (10, 200)])
    rows = explain_lib.stacked(videos, {"a": np.zeros((2, 3, 4, 5)), "b": np.ones((2, 3, 4, 5))})
    assert rows.shape == (6, 3, 4, 5, 3)
    np.testing.assert_array_equal(rows[0], videos[0])
    np.testing.assert_array_equal(rows[1], videos[0])          # zero heat: the frame itself
    np.testing.assert_array_equal(rows[3], videos[1])
    assert not np.array_equal(rows[5], videos[1])


@pytest.mark.parametrize("key", sorted(models.MODELS))
def test_every_model_scores_videos_with_each_discriminator_for_saliency(key):
    """saliency_d works for every model: each score is [B] and finite, and its saliency map
    has the video's shape, values in [0, 1] and is not constant."""
    model = tiny_model(tiny_config(key, conditional=True))
    videos = np.random.default_rng(0).uniform(-1, 1, (2, 4, 16, 16, 3)).astype(np.float32)
    labels = np.array([0, 1])
    scores = model.discriminator_scores(tf.constant(videos), tf.constant(labels))
    assert scores
    for name, score in scores.items():
        assert score.shape == (2,) and np.isfinite(score.numpy()).all(), name
    maps = explain_lib.discriminator_saliency(model, videos, labels, smooth_samples=0)
    assert set(maps) == set(scores)
    for name, m in maps.items():
        assert m.shape == (2, 4, 16, 16) and m.min() >= 0 and m.max() <= 1, name
        assert m.std() > 0.01, name
