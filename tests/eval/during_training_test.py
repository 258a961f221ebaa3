"""Metrics while training: the curve, scalars and best checkpoint of --eval_every, the same
weights with and without it, resume, and models that are conditional or image-to-video."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_config, tiny_model
from tfvidgen import train_lib
from tfvidgen import workdir as workdir_lib
from tfvidgen.data import pipeline
from tfvidgen.eval import classifier, during_training

# A classifier of 5 steps: its numbers mean nothing, but they are the protocol's numbers.
_EVAL = {"eval_samples": 8, "eval_classifier_steps": 5}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One evaluation cache for the module: the classifier is trained by the first test."""
    return str(tmp_path_factory.mktemp("eval_cache"))


def _scalar_tags(workdir) -> set:
    tags = set()
    for path in glob.glob(os.path.join(workdir, "tensorboard", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags |= {v.tag for v in event.summary.value}
    return tags


def test_eval_every_writes_curve_scalars_best_and_trains_the_same_weights(tmp_path, cache):
    config = tiny_config().replace(
        train={"train_steps": 4, "ema_decay": 0.9},
        runtime={"checkpoint_every": 4, "sample_every": 100, "eval_every": 2,
                 "eval_cache_dir": cache, "workdir": str(tmp_path / "with"), **_EVAL})
    train_lib.run(config)
    with_eval = str(tmp_path / "with")
    curve = during_training.read_curve(with_eval)
    assert [row["step"] for row in curve] == [2, 4]
    for row in curve:
        assert {"fd", "is", "fd_real", "is_real", "wall_time", "eval_seconds"} <= set(row)
        assert np.isfinite(row["fd"]) and row["is"] >= 1.0
    assert {"eval/fd", "eval/is"} <= _scalar_tags(with_eval)
    # The best checkpoint is the lowest FD, a workdir of its own that inference loads.
    best = during_training.read_best(with_eval)
    lowest = min(curve, key=lambda row: row["fd"])
    assert (best["step"], best["fd"]) == (lowest["step"], lowest["fd"])
    clf_protocol = classifier.protocol_for(config.data, pipeline.dataset_info(config.data), 5)
    assert best["classifier_dir"] == classifier.shared_dir(cache, clf_protocol)
    assert os.path.isfile(os.path.join(best["classifier_dir"], classifier.WEIGHTS))
    model, _, step = workdir_lib.load_for_inference(os.path.join(with_eval, "best"))
    assert step == best["step"] and model.ema_generator is not None
    assert len(glob.glob(os.path.join(with_eval, "best", "checkpoints", "*.index"))) == 1

    # Without --eval_every: bit-identical weights (evaluation only reads them).
    without = str(tmp_path / "without")
    train_lib.run(config.replace(runtime={"eval_every": 0, "workdir": without}))
    assert not os.path.exists(os.path.join(without, during_training.CURVE_FILE))
    a = os.path.join(with_eval, "checkpoints", "ckpt-4")
    b = os.path.join(without, "checkpoints", "ckpt-4")
    names = [n for n, _ in tf.train.list_variables(a) if not n.startswith("_CHECKPOINTABLE")]
    assert any(n.startswith("generator/") for n in names)
    assert names == [n for n, _ in tf.train.list_variables(b)
                     if not n.startswith("_CHECKPOINTABLE")]
    for name in names:
        np.testing.assert_array_equal(tf.train.load_variable(a, name),
                                      tf.train.load_variable(b, name), err_msg=name)


def test_resume_drops_curve_lines_after_the_checkpoint_and_skips_steps_done(tmp_path):
    """A run killed after evaluating step 6 but checkpointed at 4 scores 6 again: one line."""
    workdir = tmp_path / "w"
    workdir.mkdir()
    rows = [{"step": s, "fd": 10.0 - s, "is": 1.0} for s in (2, 4, 6)]
    (workdir / during_training.CURVE_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (workdir / "best").mkdir()
    (workdir / "best" / "best.json").write_text(json.dumps({"step": 4, "fd": 0.5}))
    lines, measured = [], []
    hook = during_training.MetricsDuringTraining(None, None, str(workdir), None, every=2,
                                                 total_steps=7, start_step=4, log=lines.append)
    assert [r["step"] for r in during_training.read_curve(str(workdir))] == [2, 4]
    hook.measure = lambda: measured.append(1) or {"fd": 3.0, "is": 1.5, "fd_real": 0.1,
                                                  "is_real": 2.0}
    for step in (4, 5, 6, 7):            # 4 was scored before the kill; 7 is the last step
        hook.on_step_end(step, {})
    assert len(measured) == 2
    assert [r["step"] for r in during_training.read_curve(str(workdir))] == [2, 4, 6, 7]
    assert lines[0].startswith("eval step 6 | fd=3.000 is=1.500 (real: fd=0.100 is=2.000) | "
                               "best fd=0.500 at step 4 |"), lines


@pytest.mark.parametrize("model,params,metrics", [
    ("g3an", {"conditional": True}, {"fd", "is", "label_accuracy"}),
    # Image-to-video: sample_inputs renders the images it animates (as evaluate samples it).
    ("dual_mtgan", {}, {"fd", "is"}),
])
def test_conditional_and_image_to_video_models_are_measured(model, params, metrics, tmp_path,
                                                             cache):
    config = tiny_config(model, **params).replace(
        runtime={"eval_every": 1, "eval_cache_dir": cache, **_EVAL})
    info = pipeline.dataset_info(config.data)
    setup = during_training.prepare(config, info, str(tmp_path), log=lambda *_: None)
    gan = tiny_model(config, info["num_classes"])
    values = during_training.MetricsDuringTraining(
        setup, gan, str(tmp_path), None, 1, 1, 0).measure()
    assert set(values) == metrics | {"fd_real", "is_real"}
    assert all(np.isfinite(v) for v in values.values()), values
