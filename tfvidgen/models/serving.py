"""The serving endpoints every model exports, built from its declarations, and their input
validation.

Common endpoints (endpoint_inputs / endpoints): serving_default (every declared input), sample and
latents (seed int64 [B] + the declared inputs not drawn from it), sample_frames on
variable_length models (sample's inputs + a scalar int32 num_frames), then the model's
extra_endpoints(). Every output is {"video": uint8 [B, T, H, W, 3]} but `latents`'.

Inputs are checked in the graph (core ops only, so any TF Serving runs the checks) and a bad one
answers InvalidArgument naming it, never a video: its shape (rank and sizes), one batch size in
[1, max_batch] across the inputs, integers in their declared range (labels in [0,
num_classes)), floats finite with |value| <= their bound. The signatures therefore declare no
shapes (TensorSpec(None)): the runtime does not enforce a declared shape, and a wrong rank used
to fail deep inside the graph with an error that named no input.
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from tfvidgen import pixels
from tfvidgen.layers import noise

__all__ = ["endpoint_inputs", "endpoints", "seed_inputs", "num_frames_input", "example_arguments",
           "checked_inputs", "signature_of", "video_output"]


def seed_inputs(model) -> list:
    """The `sample` endpoint's inputs: seed int64 [B], then (by name) the model's declared
    inputs not drawn from it, images as uint8 [B, R, R, 3]."""
    from tfvidgen.models.base import Input
    given = [dataclasses.replace(i, dtype="uint8", bound=None) if i.role == "image" else i
             for i in sorted(model.inputs(), key=lambda i: i.name) if i.salt is None]
    return [Input("seed", "control", (), "int64"), *given]     # no range: any int64 is a seed


def num_frames_input(model):
    """The scalar int32 `num_frames` of variable-length endpoints: [min_serving_frames,
    max_serving_frames]."""
    from tfvidgen.models.base import Input
    return Input("num_frames", "num_frames", (), "int32",
                 int_range=(model.min_serving_frames, model.max_serving_frames + 1),
                 per_request=True)


def endpoint_inputs(model) -> dict:
    """{endpoint: [Input] in signature order} of every endpoint of `model`."""
    seed, *given = seed_inputs(model)
    out = {"serving_default": sorted(model.inputs(), key=lambda i: i.name),
           "sample": [seed, *given],
           "latents": [seed, *[i for i in given if i.role != "image"]]}
    if model.CAPABILITIES.variable_length:
        out["sample_frames"] = [seed, *given, num_frames_input(model)]
    out.update({name: inputs for name, (inputs, _) in model.extra_endpoints().items()})
    return out


def endpoints(model) -> dict:
    """{name: (function, input_signature)} of `model`'s endpoints (export.py saves them):

    serving_default: every declared input -> the video
    sample:          seed int64 [B] (+ the given inputs: label, image uint8) -> the same, latents
                     drawn in-graph with stateless RNG
    latents:         seed int64 [B] (+ label) -> the latents `sample` uses for those seeds, so
                     clients can fix, mix or interpolate them and call serving_default
    sample_frames:   (variable_length) sample's inputs + num_frames int32 scalar in
                     [min_serving_frames, max_serving_frames] -> a video that long
    and extra_endpoints(). Every function checks its inputs first (checked_inputs)."""
    declared = endpoint_inputs(model)

    def drawn(inputs, num_frames=None):
        latents = model.latents_from_seeds(noise.seeds_from_ints(inputs["seed"]),
                                           inputs.get("label"), num_frames)
        for i in model.inputs():
            if i.role == "image" and i.name in inputs:      # `latents` takes none
                latents[i.name] = pixels.from_uint8(inputs[i.name])
        return latents

    functions = {"serving_default": lambda inputs: model.generate(inputs),
                 "sample": lambda inputs: model.generate(drawn(inputs)),
                 "latents": drawn}
    if model.CAPABILITIES.variable_length:
        functions["sample_frames"] = lambda inputs: model.generate(
            drawn(inputs, inputs["num_frames"]), num_frames=inputs["num_frames"])
    functions.update({name: fn for name, (_, fn) in model.extra_endpoints().items()})

    def endpoint(name):
        def run(*args):
            with model.serving_context():
                out = functions[name](model.checked_inputs(declared[name], args))
                return out if name == "latents" else video_output(out)
        return run, signature_of(declared[name])

    return {name: endpoint(name) for name in functions}


def example_arguments(model, endpoint: str, batch_size: int = 2, seed: int = 0) -> dict:
    """Valid arguments {name: NumPy value} of `model`'s `endpoint` (tests, a serving client's
    example request): latents drawn for seeds seed, seed+1, ..., labels 0, 1, ..., num_frames the
    trained length, other integers counting up inside their range, images/videos a smooth
    pattern, other floats 1 (a neutral scale)."""
    labels = tf.range(batch_size) % model.cfg.num_classes
    drawn = model.latents_from_seeds(
        noise.seeds_from_ints(tf.range(batch_size, dtype=tf.int64) + seed),
        labels if model.cfg.conditional else None)
    out = {}
    for i in endpoint_inputs(model)[endpoint]:
        shape = [*([] if i.per_request else [batch_size]), *i.shape]
        if i.name in drawn and i.role != "label":
            value = drawn[i.name]
        elif i.role == "num_frames":
            value = tf.fill(shape, model.cfg.num_frames)
        elif i.role == "label":
            value = tf.broadcast_to(tf.reshape(labels, [-1] + [1] * len(i.shape)), shape)
        elif i.dtype == "uint8" or i.role in ("image", "video"):
            pattern = 100 * tf.sin(tf.cast(tf.range(math.prod(shape)), tf.float32) * 0.01 + seed)
            value = (tf.cast(127.5 + pattern, tf.uint8) if i.dtype == "uint8"
                     else pattern / 127.5)
        elif i.dtype.startswith("int"):
            low, high = i.int_range or (seed, seed + batch_size)
            value = low + tf.range(math.prod(shape)) % (high - low)
        else:
            value = tf.ones(shape)
        out[i.name] = tf.reshape(tf.cast(value, i.dtype), shape).numpy()
    return out


def checked_inputs(declared: list, args, max_batch: int, num_classes: int,
                   max_latent: float) -> dict:
    """{name: value} of `args` (in `declared` order, base.Input each), passed on only once every
    check passed: shape, one batch size in [1, max_batch], and each input's value range (labels
    in [0, num_classes), floats within their bound, else max_latent)."""
    checked = {}
    for spec, value in zip(declared, args):
        shape = spec.spec.shape
        check = _assert_shape(spec.name, value, shape, batched=not spec.per_request)
        with tf.control_dependencies([check]):
            if spec.per_request and not spec.shape:
                # Not ensure_shape: a fully known expected shape let grappler refuse a wrong one
                # statically, before the assert could name the input. Padding makes the first
                # element exist whatever the shape (the assert then fails).
                flat = tf.reshape(tf.identity(value), [-1])
                checked[spec.name] = tf.pad(flat, [[0, 1]])[0]
            else:
                checked[spec.name] = tf.ensure_shape(tf.identity(value), shape)
    first, *others = [spec.name for spec in declared if not spec.per_request]
    batch = tf.shape(checked[first])[0]
    deps = [tf.debugging.assert_positive(batch, message=f"{first}: the batch must not be empty"),
            tf.debugging.assert_less_equal(batch, max_batch, message=(
                f"{first}: batch size must be at most {max_batch}"))]
    for name in others:
        deps.append(tf.debugging.assert_equal(tf.shape(checked[name])[0], batch, message=(
            f"{name} must have the same batch size as the other inputs")))
    for spec in declared:
        value = checked[spec.name]
        if spec.role == "label":
            low, high = spec.int_range or (0, num_classes)
            deps += _int_range_checks(spec.name, value, low, high)
        elif spec.int_range is not None:
            deps += _int_range_checks(spec.name, value, *spec.int_range)
        elif value.dtype.is_floating:
            bound = max_latent if spec.bound is None else spec.bound
            # The bound is tested on CheckNumerics' output, so a NaN or inf is always reported as
            # such (a data dependency orders the two; asserts side by side don't).
            finite = tf.debugging.assert_all_finite(value, f"{spec.name} must be finite")
            largest = tf.reduce_max(tf.abs(finite))
            deps.append(tf.debugging.assert_less_equal(
                largest, tf.constant(bound, largest.dtype),
                message=f"{spec.name} must have |values| <= {bound:g}"))
    with tf.control_dependencies(deps):
        return {name: tf.identity(value) for name, value in checked.items()}


def video_output(video) -> dict:
    """{"video": uint8} of a video in [-1, 1], the output of every video endpoint."""
    # The inputs are checked; this is the last guard: NaN cast to uint8 is 0, so a generator
    # that overflowed anyway would answer with a plausible black video.
    video = tf.debugging.assert_all_finite(tf.cast(video, tf.float32),
                                           "the generated video is not finite")
    return {"video": pixels.to_uint8(video)}


def signature_of(declared: list) -> list:
    """The serving signature of inputs `declared` (in order): TensorSpec(None) of each dtype."""
    # No shapes: the graph checks them and names the input (see the module docstring).
    return [tf.TensorSpec(None, tf.as_dtype(i.dtype), name=i.name) for i in declared]


def _int_range_checks(name: str, value, low: int, high: int) -> list:
    in_range = f"{name} must be in [{low}, {high})"
    return [tf.debugging.assert_greater_equal(value, tf.cast(low, value.dtype), message=in_range),
            tf.debugging.assert_less(value, tf.cast(high, value.dtype), message=in_range)]


def _assert_shape(name: str, value, shape: tf.TensorShape, batched: bool = True):
    """Assert op: `value` has `shape` (None dims: any size), with a message naming the input."""
    actual = tf.shape(value)
    sizes = [-1 if d is None else d for d in shape.as_list()]
    # The rank test guards the size test (which cannot broadcast across ranks). It is a cond
    # because grappler does not fold a cond: when the caller's shapes were known, a plain
    # `rank == r` test was folded and ops after the assert (EnsureShape, MatMul) failed first,
    # with errors that named no input (TF 2.21, signatures called from Python).
    ok = tf.cond(tf.equal(tf.size(actual), len(sizes)),
                 lambda: tf.reduce_all((actual == sizes) | tf.equal(sizes, -1)),
                 lambda: tf.constant(False))
    # Parentheses, not brackets, in the message: one-line error reporters cut the assertion's
    # text at its first "]" (tfvidgen.errors).
    layout = ", ".join("batch" if i == 0 and batched else ("any" if d < 0 else str(d))
                       for i, d in enumerate(sizes))
    return tf.debugging.Assert(ok, [f"{name} must have shape ({layout}), got shape", actual])
