"""--init_from: a new run starts from the network weights of a checkpoint the test writes."""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_config, tiny_model
from tfvidgen import train_lib
from tfvidgen.data import pipeline
from tfvidgen.warm_start import warm_start


def _trained_checkpoint(config, path, num_classes=5):
    model = tiny_model(config, num_classes=num_classes)
    model.train_step(next(iter(pipeline.make_dataset(config.data, 4, 0))))
    model.step.assign_add(1)
    return model, model.checkpoint().save(str(path))


def test_matching_variables_are_loaded_others_kept_and_optimizers_start_fresh(tmp_path):
    config = tiny_config("mvt_tsa", conditional=True)
    source, path = _trained_checkpoint(config, tmp_path / "ckpt")
    target = tiny_model(config, num_classes=7)          # class tables of another shape
    initial = [v.numpy().copy() for v in target.variables]
    report = warm_start(target, path, log=lambda line: None)
    class_tables = 0
    for s, t, before in zip(source.variables, target.variables, initial):
        if s.shape == t.shape:
            np.testing.assert_array_equal(t.numpy(), s.numpy())
        else:                                            # embeddings of 5 vs 7 classes
            class_tables += 1
            np.testing.assert_array_equal(t.numpy(), before)
            assert t.path in report["skipped"]
    assert class_tables == 3                             # G's embedding, both projections
    assert report["loaded"] == len(target.variables) - class_tables
    assert int(target.step) == 0
    assert all(int(o.iterations) == 0 for o in target.optimizers.values())


def test_a_missing_or_unrelated_checkpoint_names_the_flag(tmp_path):
    model = tiny_model(tiny_config("mvt_tsa"))
    with pytest.raises(ValueError, match="--init_from=.*no such checkpoint"):
        warm_start(model, str(tmp_path / "nothing"))
    other = tf.train.Checkpoint(generator=[tf.Variable(tf.zeros([3, 3, 3]))])
    path = other.save(str(tmp_path / "other"))
    with pytest.raises(ValueError, match="--init_from=.*no variable of the checkpoint"):
        warm_start(model, path)


def test_training_starts_from_the_given_checkpoint(tmp_path, capsys):
    config = tiny_config(workdir=str(tmp_path / "w"))          # any model: g3an, the quickest
    source, _ = _trained_checkpoint(config, tmp_path / "source" / "ckpt")
    train_lib.run(config.replace(train={"train_steps": 1,
                                        "init_from": str(tmp_path / "source")}))
    out = capsys.readouterr().out
    assert f"warm start from {tmp_path / 'source' / 'ckpt'}-1: loaded " \
           f"{len(source.variables)} variables" in out
