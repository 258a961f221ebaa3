"""Motion-transfer triples rendered exactly by synthetic_actions: data for image-to-video models.

The renderer knows the answer, so a triple (target image, source video, ground truth) is exact: a
target image y (an actor on a background, in a pose of its own), a source video V (another actor,
background and motion), and V's motion factors rendered with y's actor and background. Everything
is a pure function of (seed, index): evaluation (tfvidgen.eval.transfer) scores against these, and
the training pipeline (pipeline.make_triples_dataset) streams them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfvidgen import viz
from tfvidgen.data import synthetic

__all__ = ["transfer_set", "continuation_set", "transfer_triple"]

_TARGET_SEED_OFFSET = 17       # targets and sources come from different factor streams



def _other_than(excluded: int, draw: int, count: int) -> int:
    """A value in [0, count) other than `excluded`, chosen by `draw`."""
    return (excluded + 1 + draw % (count - 1)) % count


def transfer_triple(seed: int, index: int, frames, resolution: int) -> tuple:
    """Triple `index` of stream `seed` as uint8 (target_image [H, W, 3], source_video and
    ground_truth [T, H, W, 3]) and the source's action label. The target differs from its source
    in actor and background, so copying the source or the target image cannot score well."""
    source = synthetic.sample_factors("synthetic_actions", seed, index)
    target = synthetic.sample_factors("synthetic_actions", seed + _TARGET_SEED_OFFSET, index)
    actor = _other_than(source.actor, target.actor, len(synthetic.ACTORS))
    background = _other_than(source.background, target.background, len(synthetic.BACKGROUNDS))
    target = dataclasses.replace(target, actor=actor, background=background)
    truth = dataclasses.replace(source, actor=actor, background=background)
    return (synthetic.render_actions(target, [0], resolution)[0],
            synthetic.render_actions(source, frames, resolution),
            synthetic.render_actions(truth, frames, resolution), source.action)


def transfer_set(num: int, seed: int, num_frames: int, resolution: int, stride: int = 1) -> dict:
    """`num` motion-transfer triples on synthetic_actions, a pure function of its arguments.

    Returns NumPy arrays in [-1, 1]: target_image [N, H, W, 3], source_video and ground_truth
    [N, T, H, W, 3], and the source's action label [N].
    """
    frames = range(0, num_frames * stride, stride)
    targets, sources, truths, labels = zip(*(transfer_triple(seed, i, frames, resolution)
                                             for i in range(num)))
    return {"target_image": viz.from_uint8(np.stack(targets)), "source_video": viz.from_uint8(np.stack(sources)),
            "ground_truth": viz.from_uint8(np.stack(truths)), "label": np.array(labels, np.int32)}


def continuation_set(num: int, seed: int, num_frames: int, resolution: int,
                     stride: int = 1) -> dict:
    """Test videos for stochastic generation: first_frame [N, H, W, 3] and ground_truth
    [N, T, H, W, 3] (whose frame 0 is first_frame), in [-1, 1]."""
    frames = range(0, num_frames * stride, stride)
    truths = np.stack([synthetic.render_actions(synthetic.sample_factors("synthetic_actions",
                                                                         seed, i),
                                                frames, resolution) for i in range(num)])
    truths = viz.from_uint8(truths)
    return {"first_frame": truths[:, 0], "ground_truth": truths}
