"""Serving client: requests decoded the way TF Serving decodes them give the direct videos;
transport errors are one clear ServingError."""

import http.server
import json
import socket
import threading

import numpy as np
import pytest
import tensorflow as tf

from tests.export_test import exported  # noqa: F401 - shared module fixture
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
