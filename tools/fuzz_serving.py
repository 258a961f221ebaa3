"""Fuzzes every signature of an exported tfvidgen SavedModel, as a serving client would hit it.

  python tools/fuzz_serving.py --saved_model=export/g3an/1 [--examples=200] [--seed=0]

Needs only TensorFlow, NumPy and hypothesis (not tfvidgen: it checks the export alone, as a TF
Serving binary would load it). The endpoints and their inputs (per-example shape, dtype, the
range the graph enforces) are read from the export's assets.extra/tfvidgen.json.

Each endpoint gets --examples requests, drawn by hypothesis from a valid request (batch 1-3, values
in range) changed by up to two of: an empty or over-limit batch, a missing or an extra input, a
rank one higher or lower, a size off by one (one input's batch included), NaN, +-Inf, a huge
value, a negative or out-of-range value (ints: the declared range's ends, floats: over the bound),
and on the REST path a wrong JSON type (a fraction or a string for an int, a string for a float,
a ragged list). Every request is sent two ways:
  - directly to the loaded signature (what a gRPC Predict with the signature's dtypes reaches),
  - as a REST JSON body, in the "inputs" (columnar) form and, where it applies (no per-request
    input), the "instances" (row) form, decoded the way TF Serving decodes it (`decode_rest`:
    the body's inputs must be the signature's, values must convert to its dtypes).
The answer must be either a uint8 video of the declared shape (its batch the request's, its
length the requested num_frames or the declared one; a latents endpoint: finite values) or an
InvalidArgument (a decoding error) naming an input of the request. Any other exception, a wrong
shape or dtype, a non-finite value, or a bad request answered with a video fails; a request
running over --deadline seconds counts as a hang. Prints the cases tried per endpoint; exit 0
when all passed, 1 with the first failing (shrunk) request otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

__all__ = ["RequestError", "decode_rest", "fuzz_saved_model", "main"]

# tfvidgen.export.ASSET_FILE, spelled out: this tool must not import tfvidgen (see above);
# tests/tools/fuzz_serving_test.py checks the two agree.
ASSET_FILE = os.path.join("assets.extra", "tfvidgen.json")
_VALUE_MUTATIONS = ("nan", "inf", "neg_inf", "huge", "negative", "out_of_range")
_SHAPE_MUTATIONS = ("missing", "extra", "rank_up", "rank_down", "size")
_JSON_MUTATIONS = ("json_fraction", "json_string", "json_ragged")


class RequestError(ValueError):
    """A REST body TF Serving would refuse while decoding it (INVALID_ARGUMENT)."""


# ---- REST decoding, as TF Serving does it ------------------------------------------------------
def _convert(name: str, value, dtype: np.dtype) -> np.ndarray:
    try:
        loose = np.array(value, dtype=object)
    except ValueError:
        raise RequestError(f"{name}: ragged list (rows of different lengths)") from None
    if loose.dtype == object and any(isinstance(v, list) for v in loose.reshape(-1)):
        raise RequestError(f"{name}: ragged list (rows of different lengths)")
    flat = loose.reshape(-1)
    if dtype.kind in "iu":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
            raise RequestError(f"{name}: expected integers of {dtype.name}")
        info = np.iinfo(dtype)
        if any(not info.min <= v <= info.max for v in flat):
            raise RequestError(f"{name}: value out of range for {dtype.name}")
    elif not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        raise RequestError(f"{name}: expected numbers of {dtype.name}")
    return np.array(value, dtype=dtype)


def decode_rest(body: dict, inputs: list[dict]) -> dict:
    """{input name: array of its dtype} from a Predict REST body ("inputs": columnar, or
    "instances": one object per example), or RequestError naming the input."""
    dtypes = {i["name"]: np.dtype(i["dtype"]) for i in inputs}
    if not isinstance(body, dict) or len({"inputs", "instances"} & set(body)) != 1:
        raise RequestError("the body must have exactly one of 'inputs' and 'instances'")
    if "inputs" in body:
        given = body["inputs"]
        if not isinstance(given, dict):
            if len(dtypes) != 1:
                raise RequestError(f"'inputs' must name the inputs {sorted(dtypes)}")
            given = {next(iter(dtypes)): given}
    else:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise RequestError("'instances' must be a non-empty list")
        if not all(isinstance(r, dict) for r in rows):
            if len(dtypes) != 1:
                raise RequestError(f"each instance must name the inputs {sorted(dtypes)}")
            rows = [{next(iter(dtypes)): r} for r in rows]
        keys = set(rows[0])
        for r in rows:
            if set(r) != keys:
                odd = sorted(keys ^ set(r))
                raise RequestError(f"{odd[0]}: not in every instance")
        given = {k: [r[k] for r in rows] for k in keys}
    for name in sorted(set(given) - set(dtypes)):
        raise RequestError(f"{name}: not an input of this signature (inputs: {sorted(dtypes)})")
    for name in sorted(set(dtypes) - set(given)):
        raise RequestError(f"{name}: missing input")
    return {name: _convert(name, given[name], dtypes[name]) for name in dtypes}


# ---- requests ----------------------------------------------------------------------------------
def _valid_value(spec: dict, batch: int, rng: np.random.Generator, small_frames: bool):
    shape = tuple(spec["shape"]) if spec["per_request"] else (batch, *spec["shape"])
    dtype = np.dtype(spec["dtype"])
    if spec["role"] == "num_frames":
        low, high = spec["int_range"]
        value = low + 1 if small_frames else min(high - 1, low + 5)
        return np.full(shape, value, dtype)
    if "int_range" in spec:
        return rng.integers(*spec["int_range"], size=shape).astype(dtype)
    if dtype.kind == "u":
        return rng.integers(0, 256, size=shape).astype(dtype)
    if dtype.kind == "i":                    # seeds: any int64
        return rng.integers(-2 ** 62, 2 ** 62, size=shape, dtype=np.int64).astype(dtype)
    bound = min(spec.get("bound", 3.0), 3.0)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _rank_up(value: np.ndarray) -> np.ndarray:
    return value[..., None]


def _rank_down(value: np.ndarray) -> np.ndarray:
    if value.ndim > 1:
        return value[..., 0]
    # a vector becomes a scalar (an empty one: a zero)
    return value.reshape(-1)[:1].reshape(()) if value.size else np.zeros((), value.dtype)


def _one_element_more(value: np.ndarray) -> np.ndarray:
    """The last axis one longer (the batch axis of a per-example scalar); a scalar: two values."""
    if value.ndim == 0:
        return np.stack([value, value])
    return np.concatenate([value, np.take(value, [0], axis=-1)], axis=-1)


_SHAPE_CHANGES = {"rank_up": _rank_up, "rank_down": _rank_down, "size": _one_element_more}


def _bad_value(how: str, value: np.ndarray, spec: dict, bound: float) -> np.ndarray:
    """`value` with its first element replaced by the `how` value: floats NaN, +-Inf, 1e30, a
    negative, twice the bound; ints (no NaN or Inf) the dtype's ends, -1, the range's end."""
    if value.dtype.kind == "f":
        new = {"nan": np.nan, "inf": np.inf, "neg_inf": -np.inf, "huge": 1e30,
               "negative": -abs(float(value.reshape(-1)[0])), "out_of_range": 2 * bound}[how]
    else:
        info = np.iinfo(value.dtype)
        high = spec.get("int_range", (None, info.max))[1]
        new = {"nan": info.max, "inf": info.max, "huge": info.max, "neg_inf": info.min,
               "negative": max(-1, int(info.min)), "out_of_range": min(high, info.max)}[how]
    flat = value.reshape(-1).copy()
    flat[0] = new
    return flat.reshape(value.shape).astype(value.dtype)


def _mutate(arrays: dict, specs: dict, how: str, name: str, bound_of) -> None:
    """Changes the request `arrays` in place by mutation `how` of input `name`."""
    if how == "missing":
        del arrays[name]
    elif how == "extra":
        arrays["unexpected_input"] = np.zeros([1], np.float32)
    elif how in _SHAPE_CHANGES:
        arrays[name] = _SHAPE_CHANGES[how](arrays[name])
    else:
        arrays[name] = _bad_value(how, arrays[name], specs[name], bound_of(specs[name]))


def _must_refuse(arrays: dict, specs: dict, max_batch: int, bound_of) -> bool:
    """The oracle: whether a server must refuse these inputs (whatever changed them)."""
    if set(arrays) != set(specs):
        return True
    batches = set()
    for name, value in arrays.items():
        spec = specs[name]
        per_example = list(value.shape) if spec["per_request"] else list(value.shape[1:])
        if per_example != list(spec["shape"]) or (not spec["per_request"] and value.ndim == 0):
            return True
        if not spec["per_request"]:
            batches.add(value.shape[0])
        if value.dtype.kind == "f":
            if not np.isfinite(value).all() or np.abs(value).max(initial=0) > bound_of(spec):
                return True
        elif "int_range" in spec:
            low, high = spec["int_range"]
            if value.size and (value.min() < low or value.max() >= high):
                return True
    return len(batches) != 1 or not 1 <= batches.pop() <= max_batch


# ---- the property ------------------------------------------------------------------------------
def _check_answer(endpoint: str, arrays: dict, outputs: dict, video_shape: list, batch: int):
    for key, value in outputs.items():
        value = np.asarray(value)
        assert value.shape[:1] == (batch,), f"{endpoint}: {key} batch {value.shape} != {batch}"
        if key == "video":
            assert value.dtype == np.uint8, f"{endpoint}: video dtype {value.dtype}"
            frames = arrays.get("num_frames")
            expected = [batch, int(frames) if frames is not None else video_shape[1],
                        *video_shape[2:]]
            assert list(value.shape) == expected, f"{endpoint}: video {value.shape} != {expected}"
        elif value.dtype.kind == "f":
            assert np.isfinite(value).all(), f"{endpoint}: non-finite {key}"


def _names_an_input(message: str, names) -> bool:
    return any(n in message for n in names)


def fuzz_saved_model(path: str, examples: int = 100, seed: int = 0, deadline: float = 60.0,
                     log=print) -> dict:
    """Fuzzes every endpoint of the export at `path`; returns {endpoint: {way: cases}}.
    Raises hypothesis's shrunk failing example (an AssertionError, an ExceptionGroup of several
    distinct ones, or the unexpected exception itself)."""
    import tensorflow as tf
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    loaded = tf.saved_model.load(path)
    with open(os.path.join(path, ASSET_FILE)) as f:
        asset = json.load(f)
    max_batch, max_latent = int(asset["max_serving_batch"]), float(asset["max_serving_latent"])
    counts: dict = {}
    # Every signature is fuzzed: one without a declaration would be an endpoint no test reaches.
    undeclared = sorted(set(loaded.signatures) - set(asset["endpoints"]))
    if undeclared:
        raise AssertionError(f"{path}: signatures {undeclared} have no declaration in "
                             f"{ASSET_FILE}: their inputs cannot be fuzzed")

    def bound_of(spec):
        return float(spec.get("bound", max_latent))

    for endpoint, inputs in sorted(asset["endpoints"].items()):
        signature = loaded.signatures[endpoint]
        video_shape = (signature.structured_outputs["video"].shape.as_list()
                       if "video" in signature.structured_outputs else None)
        specs = {i["name"]: i for i in inputs}
        per_request = any(i["per_request"] for i in inputs)
        tally = counts.setdefault(endpoint, {"direct": 0, "rest_inputs": 0,
                                             "rest_instances": 0, "refused": 0, "videos": 0})

        @st.composite
        def requests(draw):
            batch = draw(st.sampled_from([1, 1, 2, 3, 0, max_batch + 1]))
            rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
            small = draw(st.booleans()) or batch > 3
            arrays = {i["name"]: _valid_value(i, batch, rng, small) for i in inputs}
            mutations = [("empty_batch" if batch == 0 else "over_batch", None)] \
                if batch in (0, max_batch + 1) else []
            for _ in range(draw(st.integers(0, 2))):
                how = draw(st.sampled_from(_SHAPE_MUTATIONS + _VALUE_MUTATIONS
                                           + _JSON_MUTATIONS))
                name = draw(st.sampled_from(sorted(arrays)))
                if name not in specs or any(m[0] == "missing" and m[1] == name
                                            for m in mutations):
                    continue
                if how in _JSON_MUTATIONS:
                    mutations.append((how, name))          # applied to the JSON body only
                    continue
                if arrays[name].size == 0 and how in _VALUE_MUTATIONS + ("size",):
                    continue                               # nothing to change in it
                _mutate(arrays, specs, how, name, bound_of)
                mutations.append((how, name))
            return batch, arrays, mutations

        def send_direct(arrays):
            if set(arrays) != set(specs):      # the client API cannot send these (gRPC: REST)
                return None
            tensors = {k: tf.constant(v, dtype=specs[k]["dtype"]) for k, v in arrays.items()}
            return signature(**tensors)

        def json_body(arrays, mutations, form):
            values = {k: v.tolist() for k, v in arrays.items()}
            for how, name in mutations:
                if how not in _JSON_MUTATIONS or name not in values:
                    continue
                if how == "json_fraction":
                    values[name] = _replace_first(values[name], 0.5)
                elif how == "json_string":
                    values[name] = _replace_first(values[name], "1")
                elif isinstance(values[name], list) and values[name] and \
                        isinstance(values[name][0], list):
                    values[name][0] = values[name][0] + values[name][0][:1]
                else:
                    values[name] = [values[name], [values[name]]]
            if form == "inputs":
                return json.dumps({"inputs": values})
            batch = {len(v) if isinstance(v, list) else -1 for v in values.values()}
            if per_request or len(batch) != 1 or batch == {0} or -1 in batch:
                return None
            size = batch.pop()
            return json.dumps({"instances": [{k: v[b] for k, v in values.items()}
                                             for b in range(size)]})

        def judge(result, error, names, must_refuse, batch, arrays, how):
            if error is not None:
                message = str(getattr(error, "message", error))
                assert isinstance(error, (tf.errors.InvalidArgumentError, RequestError)), \
                    f"{endpoint} ({how}): {type(error).__name__}: {message[:500]}"
                assert _names_an_input(message, names), \
                    f"{endpoint} ({how}): the error names no input of {sorted(names)}: " \
                    f"{message[:500]}"
                tally["refused"] += 1
                return
            assert not must_refuse, f"{endpoint} ({how}): a bad request was answered"
            batch = next(v.shape[0] for k, v in arrays.items() if not specs[k]["per_request"])
            _check_answer(endpoint, arrays, {k: v.numpy() for k, v in result.items()},
                          video_shape, batch)
            tally["videos"] += 1

        @settings(max_examples=examples, deadline=deadline * 1000, database=None,
                  derandomize=False, suppress_health_check=list(HealthCheck), print_blob=False)
        @given(requests())
        def prop(request):
            batch, arrays, mutations = request
            names = set(arrays) | set(specs)
            must_refuse = _must_refuse(arrays, specs, max_batch, bound_of)
            json_only = any(m[0] in _JSON_MUTATIONS for m in mutations)
            how = ", ".join(f"{m}({n})" if n else m for m, n in mutations) or "valid"
            if not json_only:
                result = error = None
                try:
                    result = send_direct(arrays)
                except tf.errors.OpError as e:
                    error = e
                if result is not None or error is not None:
                    tally["direct"] += 1
                    judge(result, error, names, must_refuse, batch, arrays, how)
            for form in ("inputs", "instances"):
                body = json_body(arrays, mutations, form)
                if body is None:
                    continue
                tally[f"rest_{form}"] += 1
                result = error = None
                try:
                    decoded = decode_rest(json.loads(body), inputs)
                    result = signature(**{k: tf.constant(v) for k, v in decoded.items()})
                except (RequestError, tf.errors.OpError) as e:
                    error = e
                judge(result, error, names, must_refuse or json_only, batch, arrays, how)

        # Seeded through hypothesis's own random (derandomize would fix one stream for all).
        from hypothesis import seed as hypothesis_seed
        hypothesis_seed(seed)(prop)()
        log(f"[fuzz] {endpoint}: {tally['direct']} direct + {tally['rest_inputs']} REST "
            f"'inputs' + {tally['rest_instances']} REST 'instances' requests; "
            f"{tally['videos']} answered with a video, {tally['refused']} refused naming an input")
    return counts


def _replace_first(value, new):
    if isinstance(value, list):
        if not value:
            return [new]
        return [_replace_first(value[0], new)] + value[1:]
    return new


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saved_model", required=True,
                        help="export version directories, comma-separated")
    parser.add_argument("--examples", type=int, default=100, help="requests per endpoint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=60.0,
                        help="seconds one request may take before it counts as a hang")
    args = parser.parse_args(argv)
    paths = [p for p in args.saved_model.split(",") if p]
    for path in paths:
        if not os.path.isfile(os.path.join(path, ASSET_FILE)):
            print(f"fuzz_serving: error: --saved_model={path}: no {ASSET_FILE} (not a tfvidgen "
                  f"export, or one older than the endpoint declarations)", file=sys.stderr)
            return 2
    counts = {}
    try:
        for path in paths:
            print(f"[fuzz] {path}", flush=True)
            counts[path] = fuzz_saved_model(path, args.examples, args.seed, args.deadline)
    except Exception as e:       # noqa: BLE001  hypothesis: AssertionError or an ExceptionGroup
        detail = "; ".join(str(x) for x in getattr(e, "exceptions", [e]))
        print(f"fuzz_serving: FAILED: {type(e).__name__}: {detail}"[:4000], file=sys.stderr)
        return 1
    # The exports alone answered: nothing of tfvidgen was needed (or loaded) to serve them.
    assert "tfvidgen" not in sys.modules
    print(json.dumps(counts, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
