"""Calls a running TF Serving with a tfvidgen model and writes the returned videos.

  # REST (port 8501), the `sample` signature: reproducible videos from integer seeds
  python tools/serving_client.py --server=localhost:8501 --protocol=rest --model_name=g3an \
      --signature=sample --seeds=0,1,2,3 --output=served.gif
  # gRPC (port 8500), explicit latents (drawn here from --seeds with NumPy): what to send is
  # read from the export's declared inputs (name, shape, role) in --metadata
  python tools/serving_client.py --server=localhost:8500 --protocol=grpc --model_name=g3an \
      --signature=serving_default --seeds=0,1 --metadata=export/g3an/1 --output=served.mp4
  # videos of another length (models with the variable_length capability)
  python tools/serving_client.py --model_name=inmodegan --signature=sample_frames \
      --seeds=0,1 --num_frames=32 --output=long.gif
  # an image-to-video model (Dual-MTGAN): motion transfer and animation of an image
  python tools/serving_client.py --model_name=dual_mtgan --metadata=export/dual_mtgan/1 \
      --signature=transfer --image=face.png --video=smile.mp4 --output=transfer.gif
  python tools/serving_client.py --model_name=dual_mtgan --metadata=export/dual_mtgan/1 \
      --signature=sample_frames --image=face.png --seeds=0,1,2,3 --num_frames=16 \
      --output=anim.gif

Inputs by role (never by name): latent roles (appearance, motion, noise) are drawn from --seeds
at their declared shape; label from --label; image and video roles from --image / --video (any
size: centre-cropped and resized to the model's resolution, as the data pipeline prepares
videos), sent as floats in [-1, 1] to serving_default and as uint8 to sample, sample_frames and
transfer. `sample`, `sample_frames` and `transfer` need --metadata only for image/video inputs
(their size); with it, a signature the export's capabilities do not offer (transfer,
sample_frames) is refused before anything is sent.

Every failure is one line on stderr, `serving_client: error: <what>`, and exit status 2: a bad
flag value (--seeds, --server, --timeout, --output: checked before anything is sent), a server
that cannot be reached, does not answer within --timeout, answers with an error, or answers with
something that is not a video (not JSON, no `video` output, values outside uint8). --timeout
bounds the whole call (connecting, sending, the server's work and reading the answer), not each
socket read. The output is written under a temporary name beside it and renamed when complete,
so an existing file is only ever replaced by a complete new one.

Request builders (`rest_body`, `grpc_request`), response decoders and `video_from_outputs` are
plain functions, and `run()` is the whole command without absl, so tests call them in-process.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import re
import socket
import sys
import threading
import zlib

import numpy as np

__all__ = ["rest_body", "decode_rest_response", "grpc_request", "decode_grpc_response",
           "video_from_outputs", "predict_rest", "predict_grpc", "latent_inputs", "parse_seeds",
           "parse_server", "read_metadata", "run", "ServingError"]

CMD = "serving_client"
_INT64 = np.iinfo(np.int64)


class ServingError(RuntimeError):
    """The server was unreachable, timed out, or answered with an error or a non-video."""


def parse_seeds(text: str) -> list[int]:
    """`--seeds` "0,1,2" -> [0, 1, 2]. Raises ValueError naming the flag."""
    parts = [s.strip() for s in text.split(",") if s.strip()]
    if not parts:
        raise ValueError("--seeds needs at least one integer")
    try:
        seeds = [int(s) for s in parts]
    except ValueError:
        raise ValueError(f"--seeds={text!r}: expected comma-separated integers, e.g. "
                         f"--seeds=0,1,2,3") from None
    if not all(_INT64.min <= s <= _INT64.max for s in seeds):
        raise ValueError(f"--seeds={text!r}: seeds must fit in int64")
    return seeds


def parse_server(server: str) -> tuple[str, int]:
    """`--server` "host:port" (or "[::1]:port") -> (host, port). Raises ValueError naming it."""
    host, sep, port = server.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--server={server!r}: expected host:port with a port in 1-65535, "
                         f"e.g. localhost:8501")
    return host, int(port)


def rest_body(inputs: dict, signature: str) -> bytes:
    """JSON body for POST /v1/models/<name>:predict in the columnar ("inputs") format."""
    return json.dumps({"signature_name": signature,
                       "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}).encode()


def decode_rest_response(payload: bytes) -> dict:
    """The outputs of a REST predict answer, as JSON values (nested lists; video_from_outputs
    checks them). Raises ServingError unless the answer is a JSON object with `outputs` (an
    `error` answer raises with the server's message)."""
    try:
        data = json.loads(payload)
    except ValueError:                          # JSONDecodeError and UnicodeDecodeError
        raise ServingError(f"the answer is not JSON ({len(payload)} bytes: "
                           f"{bytes(payload[:60])!r})") from None
    if not isinstance(data, dict):
        raise ServingError(f"the answer is JSON but not an object: {str(data)[:100]}")
    if "error" in data:
        raise ServingError(f"server error: {data['error']}")
    outputs = data.get("outputs")
    if outputs is None:
        raise ServingError(f"unexpected response without 'outputs': {str(data)[:200]}")
    if not isinstance(outputs, dict):           # a single output comes back unnamed
        outputs = {"video": outputs}
    return outputs


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
    try:
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
    except (TypeError, ValueError) as e:
        raise ServingError(f"the answer has a malformed tensor: {e}") from None


def video_from_outputs(outputs: dict) -> np.ndarray:
    """The `video` output as uint8 [N, T, H, W, 3]. Raises ServingError naming the output when
    it is missing, not a numeric array of that shape, or has values outside uint8 (casting
    would wrap them: 300 -> 44, -1 -> 255)."""
    if "video" not in outputs:
        names = ", ".join(sorted(outputs)) or "none"
        raise ServingError(f"the answer has no 'video' output (outputs: {names}); is "
                           f"--model_name a tfvidgen model?")
    try:
        video = np.asarray(outputs["video"])
    except (ValueError, TypeError):             # ragged nested lists
        raise ServingError("output 'video' is not a rectangular array") from None
    if video.dtype == np.bool_ or not (np.issubdtype(video.dtype, np.integer)
                                       or np.issubdtype(video.dtype, np.floating)):
        raise ServingError(f"output 'video' is not a numeric array (dtype {video.dtype})")
    if video.ndim != 5 or video.shape[-1] != 3 or video.size == 0:
        raise ServingError(f"output 'video' has shape {list(video.shape)}; expected "
                           f"[N, T, H, W, 3]")
    if np.issubdtype(video.dtype, np.floating) and not np.isfinite(video).all():
        raise ServingError("output 'video' has non-finite values; expected uint8 [0, 255]")
    low, high = video.min(), video.max()
    if low < 0 or high > 255:
        raise ServingError(f"output 'video' has values in [{low}, {high}], outside uint8 "
                           f"[0, 255]")
    if np.issubdtype(video.dtype, np.floating) and not (video == np.round(video)).all():
        raise ServingError("output 'video' has non-integer values; expected uint8 [0, 255]")
    return video.astype(np.uint8)


def _server_message(text) -> str:
    """A server's error text without TF's node annotations, cut to a readable length."""
    text = re.sub(r"\[\[\{\{node [^}]*\}\}\]\]", "", str(text))
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:400] + " ..."


def predict_rest(server: str, model_name: str, inputs: dict, signature: str,
                 timeout: float) -> dict:
    """POSTs to TF Serving's REST API; the outputs of its answer.

    `timeout` is a deadline for the whole exchange: a timer shuts the socket down when it
    expires, which wakes whatever connect, send or read is blocked (a per-read socket timeout
    never fires on a server that sends a byte every half second).

    Raises:
      ValueError: `server` is not host:port.
      ServingError: unreachable, no complete answer within `timeout`, HTTP error, not JSON.
    """
    host, port = parse_server(server)
    path = f"/v1/models/{model_name}:predict"
    url = f"http://{server}{path}"
    body = rest_body(inputs, signature)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    expired = threading.Event()

    def expire():
        expired.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    connected = False
    try:
        connection.connect()
        connected = True
        if expired.is_set():                    # expired while connecting: nothing to wake
            raise TimeoutError
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        status = response.status
    except (OSError, http.client.HTTPException) as e:
        if expired.is_set() or isinstance(e, TimeoutError):
            raise ServingError(f"no complete answer from {url} within --timeout={timeout:g}s") \
                from None
        if not connected:
            raise ServingError(f"cannot reach TF Serving at {url}: "
                               f"{getattr(e, 'strerror', None) or e}") from None
        raise ServingError(f"{url} broke off the exchange: {type(e).__name__} {e}") from None
    finally:
        timer.cancel()
        connection.close()
    if expired.is_set():                        # a shut-down socket may read as a short answer
        raise ServingError(f"no complete answer from {url} within --timeout={timeout:g}s")
    if status >= 400:
        try:
            detail = json.loads(payload).get("error", "")
        except (ValueError, AttributeError):
            detail = ""
        detail = detail or payload.decode(errors="replace")
        raise ServingError(f"{url} answered HTTP {status}: {_server_message(detail)}")
    return decode_rest_response(payload)


def predict_grpc(server: str, model_name: str, inputs: dict, signature: str,
                 timeout: float) -> dict:
    """Calls TF Serving's gRPC Predict with `timeout` as the call's deadline (gRPC deadlines
    cover the whole call: connecting, sending, waiting and receiving).

    Raises:
      ValueError: `server` is not host:port.
      ServingError: unreachable, no answer within `timeout`, or an error status.
    """
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    parse_server(server)
    request = grpc_request(inputs, model_name, signature)
    channel = grpc.insecure_channel(server, options=[
        ("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        response = stub.Predict(request, timeout=timeout)
    except grpc.RpcError as e:
        code = e.code().name if hasattr(e, "code") else "UNKNOWN"
        details = _server_message(e.details() if hasattr(e, "details") else e)
        if code == "DEADLINE_EXCEEDED":
            raise ServingError(f"no complete answer from TF Serving at {server} within "
                               f"--timeout={timeout:g}s (gRPC {code})") from None
        if code == "UNAVAILABLE":
            raise ServingError(f"cannot reach TF Serving at {server} (gRPC {code}): "
                               f"{details}") from None
        raise ServingError(f"TF Serving at {server} answered gRPC {code}: {details}") from None
    finally:
        channel.close()
    return decode_grpc_response(response)


def latent_inputs(seeds: list[int], widths: dict) -> dict:
    """Explicit latents for serving_default: N(0, I) from NumPy, one row per seed; a width may
    be an int or a per-example shape."""
    out = {}
    for name, width in widths.items():
        shape = (width,) if isinstance(width, int) else tuple(width)
        out[name] = np.stack([np.random.default_rng([seed, zlib.crc32(name.encode())])
                              .standard_normal(shape).astype(np.float32) for seed in seeds])
    return out


#: declared roles drawn from a seed (models.base.LATENT_ROLES)
LATENT_ROLES = ("appearance", "motion", "noise")
#: signatures taking images/videos as uint8 (serving_default takes the declared floats)
MEDIA_SIGNATURES = ("sample", "sample_frames", "transfer")
#: signature -> the capability (tfvidgen.models.Capabilities, recorded in the export's
#: metadata) an export needs to offer it
SIGNATURE_CAPABILITIES = {"sample_frames": "variable_length", "transfer": "transfer"}


def read_metadata(path: str) -> dict:
    """What an export declares: {"inputs": {name: {"shape": [None, ...], "dtype", "role"}},
    "num_frames": clip length or None, "capabilities": {name: bool} or None (older exports)}. `path` is the SavedModel directory
    (export/<model>/<version>) or its assets.extra/tfvidgen.json."""
    asset = path
    if os.path.isdir(path):
        asset = os.path.join(path, "assets.extra", "tfvidgen.json")
    try:
        with open(asset) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"--metadata={path!r}: no {asset} (give the exported version "
                         f"directory, export/<model>/<version>)") from None
    except ValueError:
        raise ValueError(f"--metadata={path!r}: {asset} is not JSON") from None
    latents = data.get("latents") if isinstance(data, dict) else None
    if not isinstance(latents, dict) or not all(
            isinstance(v, dict) and "role" in v and "shape" in v for v in latents.values()):
        raise ValueError(f"--metadata={path!r}: no declared inputs with roles (exported by an "
                         f"older tfvidgen: export the workdir again)")
    num_frames = (data.get("config") or {}).get("data", {}).get("num_frames")
    return {"inputs": latents, "num_frames": num_frames, "capabilities": data.get("capabilities")}


def _media_file(role: str, path: str | None, resolution: int, num_frames: int) -> np.ndarray:
    """uint8 [H, W, 3] (image) or [T, H, W, 3] (video) of a file, at the model's size."""
    from tfvidgen import media, viz
    flag = f"--{role}"
    if not path:
        raise ValueError(f"this signature needs {flag} (the model takes a {role} input)")
    if role == "image":
        data = media.load_image(path, resolution, flag)
    else:
        data = media.load_video(path, resolution, num_frames, flag)
    return viz.to_uint8(data)


def _request_inputs(signature: str, seeds: str, label, metadata: str | None = None,
                    image: str | None = None, video: str | None = None,
                    num_frames: int | None = None) -> dict:
    """The request's inputs, chosen by the roles the export declares (--metadata): latent roles
    from the seeds (serving_default), a seed per video (sample, sample_frames), image/video
    files."""
    seed_list = parse_seeds(seeds)
    if num_frames is not None and not 1 <= num_frames <= 4096:
        raise ValueError(f"--num_frames={num_frames}: must be in [1, 4096]")
    if label is not None and not 0 <= label <= np.iinfo(np.int32).max:
        raise ValueError(f"--label={label}: must be a non-negative class index")
    declared = read_metadata(metadata) if metadata else {"inputs": {}, "num_frames": None,
                                                         "capabilities": None}
    roles = {name: v["role"] for name, v in declared["inputs"].items()}
    image_name = next((n for n, r in roles.items() if r == "image"), None)
    needed = SIGNATURE_CAPABILITIES.get(signature)
    if needed and declared["capabilities"] is not None \
            and not declared["capabilities"].get(needed, False):
        raise ValueError(f"--signature={signature}: the export in --metadata={metadata!r} "
                         f"does not have the {needed} capability")
    if signature == "serving_default":
        if not metadata:
            raise ValueError("--signature=serving_default needs --metadata=<export directory>: "
                             "the declared inputs say what to send")
        if any(s < 0 for s in seed_list):     # NumPy's seed sequences take non-negative ints
            raise ValueError(f"--seeds={seeds!r}: serving_default draws latents from "
                             f"non-negative seeds")
        inputs = latent_inputs(seed_list, {n: declared["inputs"][n]["shape"][1:]
                                           for n, r in roles.items() if r in LATENT_ROLES})
    elif signature == "transfer":
        inputs = {}
    else:
        inputs = {"seed": np.asarray(seed_list, np.int64)}
    media = ["image"] if image_name else []
    if signature == "transfer":
        if image_name is None:
            raise ValueError(f"--signature={signature} needs --metadata=<export directory> of "
                             f"an image-to-video model (one declaring an image input)")
        media = ["image", "video"]
    if signature == "sample_frames" and num_frames is None:
        raise ValueError("--signature=sample_frames needs --num_frames")
    count = 1 if signature == "transfer" else len(seed_list)
    for role in media:
        resolution = declared["inputs"][image_name]["shape"][-2]
        frames = num_frames or declared["num_frames"] or 16
        data = np.repeat(_media_file(role, image if role == "image" else video, resolution,
                                     frames)[None], count, axis=0)
        if signature not in MEDIA_SIGNATURES:          # declared float inputs in [-1, 1]
            from tfvidgen import viz
            data = viz.from_uint8(data)
        inputs[role if signature in MEDIA_SIGNATURES else image_name] = data
    if signature == "sample_frames":
        inputs["num_frames"] = np.asarray(num_frames, np.int32)
    if label is not None:
        inputs["label"] = np.full([count], label, np.int32)
    return inputs


def run(server: str, protocol: str, model_name: str, signature: str, seeds: str,
        label: int | None, timeout: float, output: str, metadata: str | None = None,
        image: str | None = None, video: str | None = None,
        num_frames: int | None = None) -> int:
    """The whole command (flags as arguments): 0 when `output` was written, else 2 after one
    `serving_client: error:` line on stderr. Bad arguments fail before any request is sent."""
    from tfvidgen import errors, viz

    try:
        inputs = _request_inputs(signature, seeds, label, metadata, image, video, num_frames)
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"--timeout={timeout}: must be a positive number of seconds")
        parse_server(server)
        errors.check_output_file("--output", output, viz.VIDEO_SUFFIXES)
        call = predict_rest if protocol == "rest" else predict_grpc
        videos = video_from_outputs(call(server, model_name, inputs, signature, timeout))
        viz.write_video_grid(output, videos)      # atomic: <output>.partial, then a rename
    except (ValueError, ServingError) as e:
        return errors.fail(CMD, str(e))
    except OSError as e:
        return errors.fail(CMD, f"--output={output!r}: {errors.describe(e) or e}")
    print(f"wrote {videos.shape[0]} videos {videos.shape[1:]} to {os.path.abspath(output)}")
    return 0


def define_flags() -> None:
    """This command's flags (only when run as a program)."""
    from absl import flags
    flags.DEFINE_string("server", "localhost:8501",
                        "host:port of TF Serving (8501 REST, 8500 gRPC).")
    flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "Which API to call.")
    flags.DEFINE_string("model_name", "g3an", "Model name in TF Serving's models.config.")
    flags.DEFINE_enum("signature", "sample",
                      ["sample", "serving_default", "sample_frames", "transfer"],
                      "Signature to call.")
    flags.DEFINE_string("seeds", "0,1,2,3", "Comma-separated integer seeds (one video each).")
    flags.DEFINE_integer("label", None, "Class label for conditional models.")
    flags.DEFINE_string("metadata", None, "The exported version directory (or its "
                        "assets.extra/tfvidgen.json): the declared inputs and their roles.")
    flags.DEFINE_string("image", None, "Image file for a model's image input (any size).")
    flags.DEFINE_string("video", None, "Video file for a model's video input (any size).")
    flags.DEFINE_integer("num_frames", None, "Frames to generate (sample_frames).")
    flags.DEFINE_float("timeout", 60.0, "Deadline in seconds for the whole call (connect, "
                                        "request, server work, answer).")
    flags.DEFINE_string("output", "served.gif", "Output .gif, .mp4 or .png.")


def main(argv):
    del argv
    from absl import flags
    f = flags.FLAGS
    return run(f.server, f.protocol, f.model_name, f.signature, f.seeds, f.label, f.timeout,
               f.output, f.metadata, f.image, f.video, f.num_frames)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")     # gRPC imports TensorFlow
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
    from tfvidgen import errors as _errors
    define_flags()
    _errors.run_app(main, CMD)
