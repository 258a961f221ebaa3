"""Serving client: requests decoded the way TF Serving decodes them give the direct videos;
every failure (transport, deadline, a reply that is not a video, a bad flag) is one
`serving_client: error:` line and exit 2, and bad flags fail before anything is sent.

Fake servers listen on 127.0.0.1 only, in daemon threads that stop with the test."""

import errno
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, subprocess_env
from tfvidgen import viz
from tools import serving_client as client


def _call(loaded, signature, inputs):
    fn = loaded.signatures[signature]
    specs = fn.structured_input_signature[1]
    return fn(**{k: tf.constant(np.asarray(v), specs[k].dtype) for k, v in inputs.items()})


def test_grpc_request_round_trips_through_the_signature(exported):  # noqa: F811
    model, path, _ = exported
    loaded = tf.saved_model.load(path)
    inputs = client.latent_inputs([3, 4], {"z_appearance": 8, "z_motion": 4})
    request = client.grpc_request(inputs, "g3an", "serving_default")
    assert request.model_spec.signature_name == "serving_default"
    # TF Serving decodes each TensorProto with the equivalent of tf.make_ndarray.
    decoded = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    for k in inputs:
        np.testing.assert_array_equal(decoded[k], inputs[k])
    served = _call(loaded, "serving_default", decoded)["video"].numpy()
    direct = _call(loaded, "serving_default", inputs)["video"].numpy()
    np.testing.assert_array_equal(served, direct)
    # A response proto as the server builds it decodes back to the same array.
    from tensorflow_serving.apis import predict_pb2
    response = predict_pb2.PredictResponse()
    response.outputs["video"].CopyFrom(tf.make_tensor_proto(served))
    np.testing.assert_array_equal(client.decode_grpc_response(response)["video"], served)


def test_rest_body_round_trips_through_the_signature(exported):  # noqa: F811
    _, path, _ = exported
    loaded = tf.saved_model.load(path)
    body = json.loads(client.rest_body({"seed": np.array([1, 2], np.int64)}, "sample"))
    assert body == {"signature_name": "sample", "inputs": {"seed": [1, 2]}}
    served = _call(loaded, "sample", body["inputs"])["video"].numpy()
    np.testing.assert_array_equal(
        served, loaded.signatures["sample"](seed=tf.constant([1, 2], tf.int64))["video"].numpy())
    payload = json.dumps({"outputs": {"video": served.tolist()}}).encode()
    np.testing.assert_array_equal(client.decode_rest_response(payload)["video"], served)
    # A single-output model answers with an unnamed list.
    np.testing.assert_array_equal(
        client.decode_rest_response(json.dumps({"outputs": served.tolist()}).encode())["video"],
        served)


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_server_is_one_clear_error():
    port = _closed_port()
    with pytest.raises(client.ServingError, match="cannot reach TF Serving"):
        client.predict_rest(f"127.0.0.1:{port}", "g3an", {"seed": [1]}, "sample", timeout=2)
    with pytest.raises(client.ServingError, match="cannot reach TF Serving"):
        client.predict_grpc(f"127.0.0.1:{port}", "g3an", {"seed": np.array([1])}, "sample",
                            timeout=2)


def test_server_error_answer_is_reported():
    class ErrorHandler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):          # noqa: N802 - http.server API
            body = json.dumps({"error": "z_appearance must have width 128"}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), ErrorHandler)
    thread = threading.Thread(target=server.handle_request, daemon=True)   # exactly one request
    thread.start()
    try:
        with pytest.raises(client.ServingError, match="HTTP 400.*must have width 128"):
            client.predict_rest(f"127.0.0.1:{server.server_port}", "g3an", {"seed": [1]},
                                "sample", timeout=10)
    finally:
        thread.join(timeout=10)
        server.server_close()
    with pytest.raises(client.ServingError, match="server error"):
        client.decode_rest_response(json.dumps({"error": "boom"}).encode())


# ---- the command end to end against fake servers ---------------------------------------------
class _FakeServing:
    """An HTTP server on 127.0.0.1 answering every POST with `answer(handler, stop)`, counting
    the connections it accepts. Used as a context manager; its threads stop on exit."""

    def __init__(self, answer):
        self.stop = threading.Event()
        self.connections = 0
        fake, stop = self, self.stop

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):          # noqa: N802 - http.server API
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                answer(self, stop)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address):
                fake.connections += 1
                return True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _reply(body, status=200):
    """An answer: `body` (bytes, or a JSON value) with a Content-Length."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()

    def answer(handler, stop):
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    return answer


def _drip(headers_first: bool):
    """An answer that never completes: one byte every 0.5 s (after sending the headers at once
    when `headers_first`), until the client hangs up or the test ends."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"

    def answer(handler, stop):
        try:
            if headers_first:
                handler.wfile.write(head)
            for byte in (b"" if headers_first else head) + b"{" + b" " * 100000:
                if stop.wait(0.5):
                    return
                handler.wfile.write(bytes([byte]))
        except OSError:
            return
    return answer


def _video(n=2):
    """uint8 [n, 2, 4, 4, 3] with distinct values."""
    return (np.arange(n * 2 * 4 * 4 * 3) % 251).astype(np.uint8).reshape(n, 2, 4, 4, 3)


def _video_with(value):
    """_video(1) as a JSON list with one element set to `value` (values 0..95 otherwise)."""
    video = _video(1).astype(float if isinstance(value, float) else int)
    video.flat[5] = value
    return video.tolist()


def _run(server, output, **overrides):
    """client.run with the tiny model's flags; overrides replace any of them."""
    options = dict(server=server, protocol="rest", model_name="g3an", signature="sample",
                   seeds="0,1", label=None, timeout=5.0, output=str(output))
    options.update(overrides)
    return client.run(**options)


def _one_error(capsys) -> str:
    """The single stderr line of a failed run (asserts there is exactly one, and no traceback)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("serving_client: error: "), err
    return lines[0]


def _leftovers(directory) -> list:
    return sorted(name for name in os.listdir(directory) if "partial" in name or
                  name.startswith("."))


def test_a_video_answer_is_written_atomically_over_the_output(tmp_path, capsys):
    video = _video()
    output = tmp_path / "served.png"
    output.write_bytes(b"an older file")
    with _FakeServing(_reply({"outputs": {"video": video.tolist()}})) as server:
        assert _run(server.address, output) == 0
    assert "wrote 2 videos" in capsys.readouterr().out
    import imageio.v3 as iio
    np.testing.assert_array_equal(iio.imread(output), viz.frame_strip_grid(video))
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("headers_first", [False, True], ids=["whole-answer", "body"])
def test_a_dripping_server_is_cut_off_at_the_timeout(tmp_path, capsys, headers_first):
    """urllib's timeout applied per socket read, so one byte per 0.5 s kept it waiting forever."""
    output = tmp_path / "v.gif"
    with _FakeServing(_drip(headers_first)) as server:
        start = time.monotonic()
        assert _run(server.address, output, timeout=1.0) == 2
        elapsed = time.monotonic() - start
    assert elapsed < 1.0 + 1.5, elapsed
    line = _one_error(capsys)
    assert "no complete answer from http://127.0.0.1" in line and "within --timeout=1s" in line
    assert not output.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("body,message", [
    (b"<html>502 Bad Gateway</html>", "the answer is not JSON"),
    (b"\xff\xfe\x00", "the answer is not JSON"),
    ({"outputs": {"frames": [[1]]}}, "the answer has no 'video' output (outputs: frames)"),
    ({"predictions": []}, "unexpected response without 'outputs'"),
    ({"outputs": {"video": _video_with(300)}},
     "output 'video' has values in [0, 300], outside uint8 [0, 255]"),
    ({"outputs": {"video": _video_with(-1)}},
     "output 'video' has values in [-1, 95], outside uint8 [0, 255]"),
    ({"outputs": {"video": _video_with(float("nan"))}}, "output 'video' has non-finite values"),
    ({"outputs": {"video": [[1, 2], [3]]}}, "output 'video' is not a rectangular array"),
    ({"outputs": {"video": [[1, 2, 3]]}}, "output 'video' has shape [1, 3]; expected"),
    ({"outputs": {"video": _video_with(7.5)}}, "output 'video' has non-integer values"),
], ids=["html", "binary", "no-video", "no-outputs", "above-255", "negative", "nan", "ragged",
        "2-d", "fractional"])
def test_an_answer_that_is_not_a_video_is_one_error_and_keeps_the_output(
        tmp_path, capsys, body, message):
    output = tmp_path / "v.gif"
    output.write_bytes(b"written before")
    with _FakeServing(_reply(body)) as server:
        start = time.monotonic()
        assert _run(server.address, output) == 2
        assert time.monotonic() - start < 5.0
    assert message in _one_error(capsys)
    assert output.read_bytes() == b"written before" and _leftovers(tmp_path) == []


def test_server_error_is_one_line_without_tf_node_annotations(tmp_path, capsys):
    error = ("assertion failed: [z_appearance must be finite : Tensor had NaN values]\n\t "
             "[[{{node VerifyFinite/CheckNumerics}}]]")
    with _FakeServing(_reply({"error": error}, status=400)) as server:
        assert _run(server.address, tmp_path / "v.gif") == 2
    line = _one_error(capsys)
    assert "answered HTTP 400: assertion failed: [z_appearance must be finite" in line
    assert "{{node" not in line


@pytest.mark.parametrize("overrides,message", [
    ({"seeds": "a,b"}, "--seeds='a,b': expected comma-separated integers"),
    ({"seeds": " , "}, "--seeds needs at least one integer"),
    ({"seeds": str(2 ** 63)}, "seeds must fit in int64"),
    ({"output": "v.txt"}, "expected a file name ending in .gif, .mp4, .png"),
    ({"output": "."}, "is a directory"),
    ({"output": "a_file/v.gif"}, "is a file, not a directory"),
    ({"timeout": 0.0}, "--timeout=0.0: must be a positive number"),
    ({"timeout": float("inf")}, "--timeout=inf: must be a positive number"),
    ({"server": "127.0.0.1:99999"}, "--server='127.0.0.1:99999': expected host:port"),
    ({"server": "127.0.0.1:http"}, "expected host:port with a port in 1-65535"),
    ({"server": "127.0.0.1"}, "expected host:port"),
    ({"signature": "serving_default"}, "serving_default needs --metadata=<export directory>"),
    ({"signature": "transfer"}, "transfer needs --metadata=<export directory> of an image"),
    ({"metadata": "no_such_dir"}, "--metadata='no_such_dir': no no_such_dir"),
    ({"num_frames": 0}, "--num_frames=0: must be in [1, 4096]"),
    ({"label": -1}, "--label=-1: must be a non-negative class index"),
], ids=["seeds-letters", "seeds-empty", "seeds-int64", "output-ext", "output-dir",
        "output-parent-file", "timeout", "timeout-inf", "port-range", "port-name", "no-port",
        "no-metadata", "transfer-no-metadata", "metadata-missing", "num-frames", "label"])
def test_bad_flags_fail_in_one_line_before_anything_is_sent(
        tmp_path, capsys, monkeypatch, overrides, message):
    monkeypatch.chdir(tmp_path)                 # relative --output values land here
    (tmp_path / "a_file").write_text("")
    with _FakeServing(_reply({"outputs": {"video": _video().tolist()}})) as server:
        options = {"server": server.address, "output": tmp_path / "v.gif", **overrides}
        assert _run(options.pop("server"), options.pop("output"), **options) == 2
        assert server.connections == 0
    assert message in _one_error(capsys)
    assert not (tmp_path / "v.gif").exists()


def test_a_closed_port_is_one_error(tmp_path, capsys):
    assert _run(f"127.0.0.1:{_closed_port()}", tmp_path / "v.gif", timeout=2.0) == 2
    assert "cannot reach TF Serving at http://127.0.0.1:" in _one_error(capsys)


def test_grpc_deadline_covers_a_server_that_never_answers(tmp_path, capsys):
    """A TCP listener that accepts and says nothing: the gRPC deadline ends the call."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        start = time.monotonic()
        code = _run(f"127.0.0.1:{port}", tmp_path / "v.gif", protocol="grpc", timeout=1.0)
        elapsed = time.monotonic() - start
    finally:
        listener.close()
    assert code == 2 and elapsed < 1.0 + 2.0, elapsed
    line = _one_error(capsys)
    assert "TF Serving at 127.0.0.1:" in line and "gRPC" in line


def test_a_failed_write_leaves_the_existing_output_and_no_temporary(tmp_path, capsys,
                                                                     monkeypatch):
    output = tmp_path / "v.gif"
    output.write_bytes(b"written before")
    real_replace = os.replace

    def disk_full(src, dst):
        if str(dst) == str(output):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", disk_full)
    with _FakeServing(_reply({"outputs": {"video": _video().tolist()}})) as server:
        assert _run(server.address, output) == 2
    assert "no space left on device" in _one_error(capsys)
    assert output.read_bytes() == b"written before" and _leftovers(tmp_path) == []


def test_the_command_line_reports_bad_flags_in_one_line(tmp_path):
    script = os.path.join(REPO, "tools", "serving_client.py")
    for flag, message in (("--seeds=a,b", "expected comma-separated integers"),
                          ("--timeout=soon", "timeout")):
        result = subprocess.run([sys.executable, script, flag, "--server=127.0.0.1:1",
                                 f"--output={tmp_path / 'v.gif'}"],
                                capture_output=True, text=True, timeout=60, env=subprocess_env())
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and lines[0].startswith("serving_client: error: "), result.stderr
        assert message in lines[0]


# ---- inputs by the export's declared roles ---------------------------------------------------
def test_serving_default_inputs_come_from_the_declared_roles(exported):  # noqa: F811
    _, path, _ = exported
    loaded = tf.saved_model.load(path)
    inputs = client._request_inputs("serving_default", "3,4", None, metadata=path)
    assert set(inputs) == {"z_appearance", "z_motion"}           # the tiny G3AN's latents
    assert inputs["z_appearance"].shape == (2, 8) and inputs["z_motion"].shape == (2, 4)
    assert _call(loaded, "serving_default", inputs)["video"].numpy().shape[0] == 2


@pytest.fixture(scope="module")
def dual_export(tmp_path_factory):
    from tests.helpers import tiny_config, tiny_model
    from tfvidgen import export
    config = tiny_config("dual_mtgan")
    model = tiny_model(config)
    base = tmp_path_factory.mktemp("export") / "dual_mtgan"
    return export.export_model(model, {"config": json.loads(config.to_json())}, str(base))


def _media_files(directory):
    import imageio.v3 as iio
    rng = np.random.default_rng(0)
    image = directory / "face.png"
    iio.imwrite(image, rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))   # any size
    video = directory / "motion.gif"
    iio.imwrite(video, rng.integers(0, 256, (6, 20, 20, 3), dtype=np.uint8), extension=".gif")
    return str(image), str(video)


def test_an_image_and_a_video_are_sent_to_transfer_and_sample_frames(dual_export, tmp_path):
    loaded = tf.saved_model.load(dual_export)
    image, video = _media_files(tmp_path)
    sent = client._request_inputs("transfer", "0", None, metadata=dual_export, image=image,
                                  video=video)
    assert sent["image"].shape == (1, 16, 16, 3) and sent["image"].dtype == np.uint8
    assert sent["video"].shape == (1, 4, 16, 16, 3) and sent["video"].dtype == np.uint8
    body = json.loads(client.rest_body(sent, "transfer"))           # as TF Serving decodes it
    served = _call(loaded, "transfer", body["inputs"])["video"].numpy()
    assert served.shape == (1, 4, 16, 16, 3)
    sent = client._request_inputs("sample_frames", "0,1,2", None, metadata=dual_export,
                                  image=image, num_frames=5)
    assert sent["seed"].tolist() == [0, 1, 2] and sent["image"].shape == (3, 16, 16, 3)
    request = client.grpc_request(sent, "dual_mtgan", "sample_frames")
    decoded = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    assert _call(loaded, "sample_frames", decoded)["video"].numpy().shape == (3, 5, 16, 16, 3)
    # sample: the image as uint8 beside the seeds, as the export declares it
    sent = client._request_inputs("sample", "0,1", None, metadata=dual_export, image=image)
    assert sent["image"].dtype == np.uint8 and sent["image"].shape == (2, 16, 16, 3)
    assert _call(loaded, "sample", sent)["video"].numpy().shape == (2, 4, 16, 16, 3)


def test_signatures_the_exports_capabilities_lack_are_refused_before_sending(exported):  # noqa: F811
    _, path, _ = exported                   # a G3AN: fixed length, no transfer
    declared = client.read_metadata(path)["capabilities"]
    assert declared == {"variable_length": False, "image_input": False, "transfer": False,
                        "steer": False}
    for signature, capability in (("sample_frames", "variable_length"),
                                  ("transfer", "transfer")):
        with pytest.raises(ValueError, match=f"--signature={signature}: the export in "
                                             f"--metadata=.* does not have the {capability}"):
            client._request_inputs(signature, "0", None, metadata=path, num_frames=8)


def test_a_file_that_is_not_an_image_is_one_error_naming_image(dual_export, tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    _, video = _media_files(tmp_path)
    assert _run("127.0.0.1:1", tmp_path / "v.gif", signature="transfer", metadata=dual_export,
                image=str(text), video=video) == 2
    assert f"--image='{text}' is not an image file" in _one_error(capsys)
