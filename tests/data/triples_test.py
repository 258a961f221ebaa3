"""Triple rendering: deterministic, and the ground truth is the source's motion on the target."""

import dataclasses

import numpy as np
import pytest

from tfvidgen import viz
from tfvidgen.data import synthetic, triples

FRAMES, SIZE = 6, 32


@pytest.fixture(scope="module")
def rendered():
    return triples.transfer_set(12, seed=5, num_frames=FRAMES, resolution=SIZE, stride=2)


def test_transfer_set_is_deterministic_and_target_differs_from_source(rendered):
    again = triples.transfer_set(12, seed=5, num_frames=FRAMES, resolution=SIZE, stride=2)
    for key in rendered:
        np.testing.assert_array_equal(rendered[key], again[key])
    assert rendered["target_image"].shape == (12, SIZE, SIZE, 3)
    assert rendered["source_video"].shape == rendered["ground_truth"].shape == (12, FRAMES, SIZE,
                                                                               SIZE, 3)
    for i in range(12):
        source = synthetic.sample_factors("synthetic_actions", 5, i)
        # The ground truth is the source's motion with another actor and background: re-render
        # it from the source factors and recover which actor/background it used.
        matches = [(a, b) for a in range(len(synthetic.ACTORS))
                   for b in range(len(synthetic.BACKGROUNDS))
                   if np.array_equal(viz.from_uint8(synthetic.render_actions(
                       dataclasses.replace(source, actor=a, background=b), range(0, 12, 2),
                       SIZE)), rendered["ground_truth"][i])]
        assert len(matches) == 1 and matches[0] != (source.actor, source.background)
        assert matches[0][0] != source.actor and matches[0][1] != source.background
        assert rendered["label"][i] == source.action


def test_one_triple_matches_the_set(rendered):
    target, source, truth, label = triples.transfer_triple(5, 3, range(0, 12, 2), SIZE)
    np.testing.assert_array_equal(viz.from_uint8(target), rendered["target_image"][3])
    np.testing.assert_array_equal(viz.from_uint8(source), rendered["source_video"][3])
    np.testing.assert_array_equal(viz.from_uint8(truth), rendered["ground_truth"][3])
    assert label == rendered["label"][3]
