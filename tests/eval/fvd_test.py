"""The reference FVD path on a stand-in I3D (same signature, random weights) the test saves."""

import dataclasses

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

from tests.helpers import tiny_config, tiny_model
from tfvidgen.eval import fvd, metrics


class _StandIn(tf.Module):
    """I3D-shaped: rgb_input [N, T, 224, 224, 3] float32 in [-1, 1] -> [N, 400]."""

    def __init__(self, output_rank=2):
        super().__init__()
        rng = np.random.default_rng(0)
        self.w = tf.Variable(rng.normal(size=(28 * 28 * 3, 400)).astype(np.float32) / 50)
        self.output_rank = output_rank

    @tf.function(input_signature=[tf.TensorSpec([None, None, 224, 224, 3], tf.float32)])
    def default(self, rgb_input):
        pooled = tf.nn.avg_pool3d(rgb_input, [1, 1, 8, 8, 1], [1, 1, 8, 8, 1], "VALID")
        flat = tf.reshape(tf.reduce_mean(pooled, axis=1), [tf.shape(rgb_input)[0], -1])
        motion = tf.reduce_mean(tf.abs(rgb_input[:, 1:] - rgb_input[:, :-1]), axis=[1, 2, 3, 4])
        logits = tf.matmul(flat, self.w) + motion[:, None]
        if self.output_rank == 3:
            logits = logits[:, None]
        return {"default": logits}


def _save(tmp_path, name="i3d", **kwargs):
    module = _StandIn(**kwargs)
    path = str(tmp_path / name)
    tf.saved_model.save(module, path, signatures={"default": module.default})
    return path


def test_loads_the_network_reads_its_video_input_and_hashes_it(tmp_path):
    network = fvd.load_network(_save(tmp_path))
    assert (network.signature_name, network.input_name, network.size) == \
        ("default", "rgb_input", 224)
    assert len(network.sha256) == 64
    videos = np.random.default_rng(1).integers(0, 256, (3, 4, 16, 16, 3), dtype=np.uint8)
    features = network.features(videos, batch_size=2)
    assert features.shape == (3, 400) and features.dtype == np.float64
    np.testing.assert_allclose(network.features(videos, batch_size=3), features, atol=1e-5)


def _numpy_bilinear(frame, size):
    """Half-pixel-centre bilinear resize (TF2 / TF1 align_corners=False), edge clamped."""
    h, w, _ = frame.shape

    def axis(n_in):
        src = (np.arange(size) + 0.5) * n_in / size - 0.5
        src = np.clip(src, 0, n_in - 1)
        low = np.floor(src).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, src - low

    (y0, y1, fy), (x0, x1, fx) = axis(h), axis(w)
    top = frame[y0][:, x0] * (1 - fx)[None, :, None] + frame[y0][:, x1] * fx[None, :, None]
    bottom = frame[y1][:, x0] * (1 - fx)[None, :, None] + frame[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]


def test_preprocessing_is_the_reference_resize_then_scale():
    videos = np.random.default_rng(2).integers(0, 256, (2, 3, 12, 10, 3), dtype=np.uint8)
    out = fvd.preprocess(videos, 32).numpy()
    assert out.shape == (2, 3, 32, 32, 3) and out.dtype == np.float32
    expected = np.stack([np.stack([_numpy_bilinear(f.astype(np.float64), 32) for f in v])
                         for v in videos]) * 2 / 255 - 1
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert out.min() >= -1 and out.max() <= 1
    flat = fvd.preprocess(np.full((1, 1, 5, 5, 3), 255, np.uint8), 224).numpy()
    np.testing.assert_allclose(flat, 1.0)


def _scipy_fd(f1, f2):
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(root)))


def test_distance_matches_scipy_and_is_zero_for_the_same_set():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(300, 16))
    b = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 1.0
    np.testing.assert_allclose(metrics.frechet_distance_from_features(a, b), _scipy_fd(a, b), rtol=1e-8)
    assert metrics.frechet_distance_from_features(a, a) < 1e-8
    shuffled = a[rng.permutation(len(a))]
    assert metrics.frechet_distance_from_features(a, shuffled) < 1e-8
    # Two draws of one distribution are far closer than two distributions.
    assert metrics.frechet_distance_from_features(a, rng.normal(size=(300, 16))) < 0.1 * metrics.frechet_distance_from_features(a, b)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        metrics.frechet_distance_from_features(a, b[:, :4])


def test_bad_networks_get_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved_model.pb"):
        fvd.load_network(str(tmp_path))

    class NoVideo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 400], tf.float32)])
        def default(self, x):
            return {"out": x}

    module = NoVideo()
    tf.saved_model.save(module, str(tmp_path / "novideo"), signatures={"default": module.default})
    with pytest.raises(ValueError, match="one video input"):
        fvd.load_network(str(tmp_path / "novideo"))
    network = fvd.load_network(_save(tmp_path, "rank3", output_rank=3))
    with pytest.raises(ValueError, match=r"needs features \[N, D\]"):
        network.features(np.zeros((2, 2, 8, 8, 3), np.uint8))


def test_real_features_are_cached_per_protocol_and_a_mismatch_is_refused(tmp_path):
    network = fvd.load_network(_save(tmp_path))
    data = tiny_config().data
    protocol = dataclasses.replace(fvd.protocol_named("fvd256_16f", 8), num_frames=4)
    logged = []
    first = fvd.real_features(network, data, protocol, str(tmp_path / "cache"), logged.append)
    assert first.shape == (8, 400)
    again = fvd.real_features(network, data, protocol, str(tmp_path / "cache"), logged.append)
    np.testing.assert_array_equal(first, again)
    assert any("cached" in line for line in logged)
    with pytest.raises(ValueError, match="another protocol"):
        fvd.real_features(network, dataclasses.replace(data, resolution=32), protocol,
                          str(tmp_path / "cache"))
    too_many = dataclasses.replace(protocol, num_real=1000)
    with pytest.raises(ValueError, match="has 64 videos"):
        fvd.real_features(network, data, too_many, str(tmp_path / "other"))


def test_generated_clips_run_through_the_same_path(tmp_path):
    network = fvd.load_network(_save(tmp_path))
    model = tiny_model(tiny_config())
    protocol = dataclasses.replace(fvd.protocol_named("fvd256_16f", 6), num_frames=4)
    fake = fvd.fake_features(network, model, protocol, batch_size=4, log=lambda *_: None)
    real = fvd.real_features(network, tiny_config().data, protocol, str(tmp_path / "c"),
                             log=lambda *_: None)
    assert fake.shape == real.shape == (6, 400)
    assert metrics.frechet_distance_from_features(fake, real) > 0
    np.testing.assert_allclose(fake, fvd.fake_features(network, model, protocol, 6,
                                                       log=lambda *_: None), atol=1e-5)
    with pytest.raises(ValueError, match="needs clips of 16 frames"):
        fvd.fake_features(network, model, fvd.protocol_named("fvd256_16f", 4))


def test_a_tf1_module_with_the_empty_tag_set_loads_like_hub_modules(tmp_path):
    """TF1 hub-format modules (the reference I3D) are SavedModels tagged with the empty set."""
    path = str(tmp_path / "tf1")
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session() as session:
        x = tf.compat.v1.placeholder(tf.float32, [None, None, 224, 224, 3], name="rgb_input")
        w = tf.compat.v1.get_variable("w", initializer=tf.ones([3, 400]) / 10)
        y = tf.matmul(tf.reduce_mean(x, axis=[1, 2, 3]), w)
        session.run(tf.compat.v1.global_variables_initializer())
        builder = tf.compat.v1.saved_model.Builder(path)
        signature = tf.compat.v1.saved_model.predict_signature_def({"rgb_input": x},
                                                                   {"default": y})
        builder.add_meta_graph_and_variables(session, [], signature_def_map={"default": signature})
        builder.save()
    network = fvd.load_network(path)
    assert (network.signature_name, network.input_name, network.size) == \
        ("default", "rgb_input", 224)
    features = network.features(np.full((2, 3, 8, 8, 3), 255, np.uint8))
    np.testing.assert_allclose(features, np.full((2, 400), 0.3), rtol=1e-5)   # 3 channels of 1 @ w


def test_evaluate_cli_reports_the_reference_fvd_with_its_protocol(tmp_path):
    """A tiny 16-frame G3AN, one training step, then `evaluate --fvd_model` on the stand-in:
    metrics.json holds the FVD with every protocol choice and the network's hash; a 4-frame
    protocol mismatch and a directory without a model are one-line errors."""
    import json
    import subprocess
    import sys

    from tests.helpers import REPO, subprocess_env, train_cmd
    workdir = tmp_path / "w"
    trained = subprocess.run(train_cmd(workdir, "--num_frames=16", "--train_steps=1",
                                       "--checkpoint_every=1", "--sample_every=1"),
                             cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                             timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    network = _save(tmp_path)

    def evaluate(*flags):
        return subprocess.run([sys.executable, "-m", "tfvidgen.evaluate", f"--workdir={workdir}",
                               "--num_samples=32", "--repeats=1", "--classifier_steps=2",
                               "--metrics=is", *flags], cwd=REPO, env=subprocess_env(),
                              capture_output=True, text=True, timeout=600)

    result = evaluate(f"--fvd_model={network}", "--fvd_protocol=fvd256_16f",
                      "--fvd_num_videos=8")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.load(open(workdir / "eval" / "metrics.json"))
    fvd_record = record["fvd"]
    assert fvd_record["value"] > 0 and record["results"]["fvd"]["mean"] == fvd_record["value"]
    assert fvd_record["protocol"]["name"] == "fvd256_16f_n8"
    assert (fvd_record["protocol"]["num_fake"], fvd_record["protocol"]["num_real"],
            fvd_record["protocol"]["num_frames"], fvd_record["protocol"]["stride"]) == (8, 8, 16, 1)
    assert fvd_record["network_sha256"] == fvd.load_network(network).sha256
    assert fvd_record["network_input_size"] == 224 and fvd_record["generator_resolution"] == 16
    assert "| fvd |" in result.stdout

    missing = evaluate(f"--fvd_model={tmp_path / 'nothing'}")
    assert missing.returncode == 2 and "no saved_model.pb" in missing.stderr
