"""Evaluation protocol: repeats, bounds, cached real statistics, determinism; the evaluate CLI;
image-to-video scores on records (self-transfer, best-of-K)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import CLASSIFIER_PROTOCOL as PROTOCOL
from tests.helpers import eval_config, eval_gan
from tfvidgen.eval import protocol

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_evaluate_model_reports_repeats_and_bounds_deterministically(trained, tmp_path):
    _, clf, meta = trained
    gan = eval_gan()
    p = protocol.EvalProtocol(num_samples=32, repeats=2, seed=0, classifier=PROTOCOL,
                              classifier_sha256=meta["weights_sha256"])
    real = protocol.real_statistics(p, clf, str(tmp_path))
    assert os.path.isfile(tmp_path / f"real_stats_{p.key()}.npz")
    cached = protocol.real_statistics(p, clf, str(tmp_path))
    np.testing.assert_array_equal(cached["a_features"], real["a_features"])
    assert not np.array_equal(real["a_features"], real["b_features"])    # disjoint real sets
    results = protocol.evaluate_model(gan, clf, p, real, log=lambda *_: None)
    assert {"is", "h_y", "h_y_given_v", "fd", "appearance_preservation"} <= set(results)
    assert "label_accuracy" not in results                                # unconditional
    for name in ("is", "h_y", "h_y_given_v", "fd", "appearance_preservation"):
        r = results[name]
        assert len(r["values"]) == 2 and r["mean"] == np.mean(r["values"])
    assert results["is"]["mathematical_bound"] == 8.0
    # An untrained generator is far from the real-vs-real experimental bound.
    assert results["fd"]["mean"] > 2 * results["fd"]["experimental_bound"]
    assert results["is"]["experimental_bound"] > results["is"]["mean"]
    again = protocol.evaluate_model(gan, clf, p, real, log=lambda *_: None)
    assert again["fd"]["values"] == results["fd"]["values"]
    assert "| fd |" in protocol.markdown_table(results)


def test_an_export_evaluates_like_its_checkpoint(trained, tmp_path):
    from tfvidgen import export
    from tfvidgen.exported import ExportedGenerator
    _, clf, meta = trained
    gan = eval_gan()
    path = export.export_model(gan, {"config": json.loads(eval_config().to_json())},
                               str(tmp_path / "g3an"))
    p = protocol.EvalProtocol(32, 1, 0, PROTOCOL, meta["weights_sha256"])
    real = protocol.real_statistics(p, clf, str(tmp_path / "cache"))
    wanted = ["is", "h_y_given_v", "fd", "appearance_preservation"]
    direct = protocol.evaluate_model(gan, clf, p, real, wanted, log=lambda *_: None)
    served = protocol.evaluate_model(ExportedGenerator(path), clf, p, real, wanted,
                                     log=lambda *_: None)
    for name in wanted:      # equal up to uint8 rounding ties between graph and eager
        np.testing.assert_allclose(served[name]["values"], direct[name]["values"], rtol=1e-3,
                                   atol=1e-3, err_msg=name)


def test_evaluate_cli_writes_results_and_repeats_them(trained_workdir, tmp_path):
    workdir, _ = trained_workdir
    cmd = [sys.executable, "-m", "tfvidgen.evaluate", f"--workdir={workdir}", "--num_samples=16",
           "--repeats=2", "--classifier_steps=60", "--metrics=is,h_y_given_v,fd"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "[classifier] step 60/60" in first.stdout and "| fd |" in first.stdout
    record = json.loads((workdir / "eval" / "metrics.json").read_text())
    assert set(record["results"]) == {"is", "h_y_given_v", "fd"}
    assert record["protocol"]["num_samples"] == 16 and record["step"] == 3
    # Again, from an export of the same checkpoint: cached classifier, the same numbers.
    from tfvidgen import export, train_lib
    model, _, step = train_lib.build_for_inference(str(workdir))
    path = export.export_model(model, {"config": json.loads((workdir / "config.json").read_text()),
                                       "step": step}, str(tmp_path / "g3an"))
    # An export is named instead of the workdir (never beside it); results go beside its
    # versions, and the workdir's classifier is shared through --classifier_dir.
    from_export = [c for c in cmd if not c.startswith("--workdir=")] + [
        f"--saved_model={path}", f"--classifier_dir={workdir / 'eval' / 'classifier'}"]
    second = subprocess.run(from_export, cwd=REPO, capture_output=True, text=True, timeout=600,
                            env=env)
    assert second.returncode == 0 and "[classifier] cached" in second.stdout, second.stderr[-2000:]
    again = json.loads((tmp_path / "g3an" / "eval-1" / "metrics.json").read_text())
    assert again["source"] == path and again["step"] == 3
    both = subprocess.run(cmd + [f"--saved_model={path}"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)
    assert both.returncode == 2
    assert "evaluate: error: give exactly one of --workdir or --saved_model" in both.stderr
    for name, result in record["results"].items():
        np.testing.assert_allclose(again["results"][name]["values"], result["values"],
                                   rtol=1e-3, atol=1e-3, err_msg=name)
    bad = subprocess.run(cmd[:3] + ["--metrics=nope"], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env=env)
    assert bad.returncode == 2 and "--metrics: unknown ['nope']" in bad.stderr


def test_external_feature_model_gives_fd_external(trained, tmp_path):
    """A tiny stand-in SavedModel (per-frame colour statistics) plays the user's I3D."""
    import tensorflow as tf

    class StandIn(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.float32,
                                                     name="videos")])
        def serve(self, videos):
            return {"features": tf.concat([tf.reduce_mean(videos, axis=[2, 3]),
                                           tf.math.reduce_std(videos, axis=[2, 3])], axis=-1)}

    module = StandIn()
    path = str(tmp_path / "i3d_stand_in")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    feature_fn, digest = protocol.load_feature_model(path)
    assert feature_fn(np.zeros((2, 8, 16, 16, 3), np.float32)).shape == (2, 48)
    _, clf, meta = trained
    gan = eval_gan()
    p = protocol.EvalProtocol(16, 1, 0, PROTOCOL, meta["weights_sha256"], digest)
    real = protocol.real_statistics(p, clf, str(tmp_path / "cache"), feature_fn)
    results = protocol.evaluate_model(gan, clf, p, real, ["fd", "fd_external"],
                                      log=lambda *_: None, feature_fn=feature_fn)
    assert set(results) == {"fd", "fd_external"}
    assert results["fd_external"]["mean"] > results["fd_external"]["experimental_bound"] >= 0
    try:
        protocol.load_feature_model(str(tmp_path))
    except FileNotFoundError as e:
        assert "--feature_model" in str(e)
    else:
        raise AssertionError("expected FileNotFoundError")


def _conditional_setup(trained, tmp_path, repeats: int):
    """(untrained conditional G3AN, classifier, 32-video protocol, real statistics)."""
    import dataclasses
    _, clf, meta = trained
    quick = dataclasses.replace(PROTOCOL, steps=60)
    p = protocol.EvalProtocol(32, repeats, 0, quick, meta["weights_sha256"])
    return eval_gan(conditional=True), clf, p, protocol.real_statistics(p, clf, str(tmp_path))


def test_s3_for_a_conditional_model(trained, tmp_path):
    gan, clf, p, real = _conditional_setup(trained, tmp_path, repeats=1)
    results = protocol.evaluate_model(gan, clf, p, real, ["label_accuracy", "s3"],
                                      log=lambda *_: None)
    parts = results["s3"]["parts"]
    assert parts["ReR"] > 0.7 and 0 <= parts["SeR"] <= 1 and 0 <= parts["ReS"] <= 1
    assert results["s3"]["mean"] == np.sqrt(parts["SeR"] / parts["ReR"] * parts["ReS"] / parts["ReR"])
    assert results["s3"]["experimental_bound"] == 1.0 and results["s3"]["mathematical_bound"] is None
    # An untrained generator is far below the real bound on S3 and label accuracy.
    assert results["s3"]["mean"] < 0.8 and results["label_accuracy"]["mean"] < 0.8
    assert "| s3 |" in protocol.markdown_table(results)


def test_label_effect_is_zero_for_a_generator_that_ignores_its_label(trained, tmp_path):
    gan, clf, p, real = _conditional_setup(trained, tmp_path, repeats=2)
    results = protocol.evaluate_model(gan, clf, p, real, ["label_effect"], log=lambda *_: None)
    effect = results["label_effect"]
    # An untrained conditional G3AN: the label enters G_T only, so it moves a video less than
    # redrawn latents do, but it moves it.
    assert len(effect["values"]) == 2 and 0 < effect["mean"] < 1
    assert effect["experimental_bound"] is None and effect["mathematical_bound"] is None
    generate = gan.generate
    gan.generate = lambda latents, **kw: generate(
        {**latents, "label": tf.zeros_like(latents["label"])}, **kw)
    ignored = protocol.evaluate_model(gan, clf, p, real, ["label_effect"], log=lambda *_: None)
    assert ignored["label_effect"]["values"] == [0.0, 0.0]
    unconditional = protocol.evaluate_model(eval_gan(), clf, p, real, ["label_effect"],
                                            log=lambda *_: None)
    assert "label_effect" not in unconditional


def _tiny_records(path, count=3, size=16, length=6):
    """A records dataset with a train and a test split of `count` random lossless videos each
    (labels 0, 1, 2, ...): the test clips are known exactly."""
    from tfvidgen.data import records
    rng = np.random.default_rng(4)
    splits, videos = {}, {}
    for split in ("train", "test"):
        writer = records.ShardWriter(str(path), split, count)
        videos[split] = [rng.integers(0, 256, (length, size, size, 3), dtype=np.uint8)
                         for _ in range(count)]
        for k, frames in enumerate(videos[split]):
            writer.write(records.serialize_video(frames, k % 3, k, f"{split}{k}", "raw"))
        splits[split] = writer.close()
    records.write_manifest(str(path), {"splits": splits, "resolution": size,
                                       "class_names": ["a", "b", "c"],
                                       "identity_names": [f"p{k}" for k in range(count)]})
    return videos


def test_image_to_video_results_on_records_score_self_transfer_and_best_of_k(tmp_path):
    """No renderer: self-transfer reconstruction and best-of-K run on the records' real test
    clips (each test record once, consecutive frames), here for a conditional Dual-MTGAN (the
    labels come from the clips); the best video is the headline, the per-step max secondary."""
    from tests.helpers import tiny_config, tiny_model
    videos = _tiny_records(tmp_path)
    config = tiny_config("dual_mtgan", conditional=True).replace(
        data={"dataset": "records", "data_dir": str(tmp_path), "max_stride": 3,
              "random_flip": True})
    gan = tiny_model(config, num_classes=3)
    log = []
    results = protocol.image_to_video_results(gan, config.data, num_videos=8, best_of=2,
                                              log=log.append)
    expected = {f"{row}_{m}{suffix}" for m in ("psnr", "ssim") for row, suffix in (
        ("self_transfer", ""), ("self_transfer", "_repeat_first_frame"), ("best_of_2", ""),
        ("best_of_2", "_per_step_max"))}
    assert set(results) == expected
    for name, r in results.items():
        assert np.isfinite(r["mean"]) and len(r["per_step"]) == 4, name
    assert "records test split" in results["best_of_2_ssim"]["note"]
    assert results["best_of_2_ssim"]["mean"] <= results["best_of_2_ssim_per_step_max"]["mean"]
    assert any("has 3 videos (asked for 8)" in line for line in log)
    # Frame 0 is the given image: a repeated copy is exact there (~150 dB), not in the mean.
    still = results["self_transfer_psnr_repeat_first_frame"]
    assert still["per_step"][0] > 100
    assert still["mean"] == pytest.approx(np.mean(still["per_step"][1:]))
    # The clips are the 3 test records, once each, 4 consecutive frames, unflipped.
    clips = protocol._image_to_video_test_clips(config.data, 8, protocol._TRANSFER_TEST_SEED,
                                                lambda *_: None)
    assert clips["video"].shape == (3, 4, 16, 16, 3)
    found = []
    for clip in clips["video"]:
        clip8 = np.rint((clip + 1) * 127.5).astype(np.uint8)
        for k, video in enumerate(videos["test"]):
            for start in range(3):
                if np.array_equal(video[start:start + 4], clip8):
                    found.append(k)
    assert sorted(found) == [0, 1, 2]
    np.testing.assert_array_equal(np.sort(clips["label"]), [0, 1, 2])
