"""Calls a running TF Serving with a tfvidgen model and writes the returned videos.

  # REST (port 8501), the `sample` signature: reproducible videos from integer seeds
  python tools/serving_client.py --server=localhost:8501 --protocol=rest --model_name=g3an \
      --signature=sample --seeds=0,1,2,3 --output=served.gif
  # gRPC (port 8500), explicit latents (drawn here from --seeds with NumPy)
  python tools/serving_client.py --server=localhost:8500 --protocol=grpc --model_name=g3an \
      --signature=serving_default --seeds=0,1 --z_appearance=128 --z_motion=10 --output=served.mp4

Request builders (`rest_body`, `grpc_request`) and response decoders are plain functions, so tests
can check them against a loaded SavedModel without a server.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
import zlib

import numpy as np

__all__ = ["rest_body", "decode_rest_response", "grpc_request", "decode_grpc_response",
           "predict_rest", "predict_grpc", "latent_inputs", "ServingError"]


class ServingError(RuntimeError):
    """The server was unreachable, timed out, or answered with an error."""


def rest_body(inputs: dict, signature: str) -> bytes:
    """JSON body for POST /v1/models/<name>:predict in the columnar ("inputs") format."""
    return json.dumps({"signature_name": signature,
                       "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}).encode()


def decode_rest_response(payload: bytes) -> dict:
    data = json.loads(payload)
    if "error" in data:
        raise ServingError(f"server error: {data['error']}")
    outputs = data.get("outputs")
    if outputs is None:
        raise ServingError(f"unexpected response without 'outputs': {str(data)[:200]}")
    if not isinstance(outputs, dict):           # a single output comes back unnamed
        outputs = {"video": outputs}
    return {k: np.asarray(v) for k, v in outputs.items()}


def grpc_request(inputs: dict, model_name: str, signature: str):
    """tensorflow_serving PredictRequest with one TensorProto per input."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
    return request


def decode_grpc_response(response) -> dict:
    import tensorflow as tf
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def predict_rest(server: str, model_name: str, inputs: dict, signature: str,
                 timeout: float) -> dict:
    url = f"http://{server}/v1/models/{model_name}:predict"
    request = urllib.request.Request(url, data=rest_body(inputs, signature),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return decode_rest_response(response.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:500]
        raise ServingError(f"{url} answered HTTP {e.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise ServingError(f"cannot reach TF Serving at {url}: {getattr(e, 'reason', e)}") from None


def predict_grpc(server: str, model_name: str, inputs: dict, signature: str,
                 timeout: float) -> dict:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    channel = grpc.insecure_channel(server, options=[
        ("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        response = stub.Predict(grpc_request(inputs, model_name, signature), timeout=timeout)
    except grpc.RpcError as e:
        code = e.code().name if hasattr(e, "code") else "UNKNOWN"
        if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            raise ServingError(f"cannot reach TF Serving at {server} (gRPC {code}): "
                               f"{e.details()}") from None
        raise ServingError(f"TF Serving at {server} answered gRPC {code}: {e.details()}") from None
    finally:
        channel.close()
    return decode_grpc_response(response)


def latent_inputs(seeds: list[int], widths: dict[str, int]) -> dict:
    """Explicit latents for serving_default: N(0, I) from NumPy, one row per seed."""
    out = {}
    for name, width in widths.items():
        out[name] = np.stack([np.random.default_rng([seed, zlib.crc32(name.encode())])
                              .standard_normal(width).astype(np.float32) for seed in seeds])
    return out


def main(argv):
    del argv
    from absl import flags

    from tfvidgen import viz
    f = flags.FLAGS
    seeds = [int(s) for s in f.seeds.split(",") if s.strip()]
    if not seeds:
        print("serving_client: error: --seeds needs at least one integer", file=sys.stderr)
        return 2
    if f.signature == "sample":
        inputs = {"seed": np.asarray(seeds, np.int64)}
    else:
        inputs = latent_inputs(seeds, {"z_appearance": f.z_appearance, "z_motion": f.z_motion})
    if f.label is not None:
        inputs["label"] = np.full([len(seeds)], f.label, np.int32)
    call = predict_rest if f.protocol == "rest" else predict_grpc
    try:
        outputs = call(f.server, f.model_name, inputs, f.signature, f.timeout)
    except ServingError as e:
        print(f"serving_client: error: {e}", file=sys.stderr)
        return 1
    videos = outputs["video"].astype(np.uint8)
    viz.write_video_grid(f.output, videos)
    print(f"wrote {videos.shape[0]} videos {videos.shape[1:]} to {os.path.abspath(f.output)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
    from absl import app, flags
    flags.DEFINE_string("server", "localhost:8501", "host:port of TF Serving (8501 REST, 8500 gRPC).")
    flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "Which API to call.")
    flags.DEFINE_string("model_name", "g3an", "Model name in TF Serving's models.config.")
    flags.DEFINE_enum("signature", "sample", ["sample", "serving_default"], "Signature to call.")
    flags.DEFINE_string("seeds", "0,1,2,3", "Comma-separated integer seeds (one video each).")
    flags.DEFINE_integer("label", None, "Class label for conditional models.")
    flags.DEFINE_integer("z_appearance", 128, "Width of z_appearance (serving_default).")
    flags.DEFINE_integer("z_motion", 10, "Width of z_motion (serving_default).")
    flags.DEFINE_float("timeout", 60.0, "Request timeout in seconds.")
    flags.DEFINE_string("output", "served.gif", "Output .gif, .mp4 or .png.")
    app.run(main)
