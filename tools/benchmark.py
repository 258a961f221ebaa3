"""Measures speed (and peak memory) of tfvidgen's moving parts; prints README-ready markdown rows.

  python tools/benchmark.py --what=data          # renderer and input pipeline throughput
  python tools/benchmark.py --what=train         # train-step throughput: precision x jit_compile
  python tools/benchmark.py --what=serving       # each model's export, in plain TensorFlow
  python tools/benchmark.py --what=serving --workdir=runs/quickstart   # trained workdirs
  python tools/benchmark.py --what=eval          # evaluation classifier and optical flow
  python tools/benchmark.py --what=fvd           # reference-FVD path on an I3D-shaped stand-in
  python tools/benchmark.py --what=adaptive_conv # TwoStreamVAN's fusion op vs kernel size and scale

Numbers belong in the README's benchmark table, never in test assertions.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import tfvidgen  # noqa: E402,F401  (oneDNN default before TensorFlow loads)

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

_WHAT = flags.DEFINE_multi_enum("what", ["data"], ["data", "train", "serving", "eval", "fvd",
                                               "adaptive_conv"],
                                "What to measure.")
_WORKDIR = flags.DEFINE_multi_string("workdir", [], "--what=serving: trained workdirs whose "
                                     "exports to measure (repeatable or comma-separated); "
                                     "default: each model's quickstart config, untrained.")
_SERVING_CALLS = flags.DEFINE_integer("serving_calls", 200, "--what=serving: timed batch-1 calls "
                                      "for p50/p99 (at least; more while under --seconds).",
                                      lower_bound=1)
_SECONDS = flags.DEFINE_float("seconds", 10.0, "Minimum measuring time per row.")
_PRECISION = flags.DEFINE_list("precision", ["auto"], "Keras policies for --what=train: auto (this "
                               "machine's choice), float32, mixed_bfloat16.")
_JIT = flags.DEFINE_bool("jit", False, "Also time the small model with jit_compile=True.")
_SETUPS = flags.DEFINE_list("setups", [], "--what=train: only setups whose name contains one of "
                            "these words (e.g. quickstart, paper); default all.")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rate(fn, items_per_call: int, seconds: float) -> float:
    fn()                                   # warm-up (tracing, caches)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 3:
        fn()
        calls += 1
    return calls * items_per_call / (time.perf_counter() - start)


def bench_data(seconds: float) -> list[str]:
    from tfvidgen import viz
    from tfvidgen.config import DataConfig
    from tfvidgen.data import pipeline, synthetic
    from tools import prepare_dataset

    rows = []
    factors = [synthetic.sample_factors("synthetic_actions", 0, i) for i in range(64)]
    counter = iter(range(10 ** 9))
    rate = _rate(lambda: synthetic.render_actions(factors[next(counter) % 64], range(16), 64),
                 1, seconds)
    rows.append(f"| synthetic_actions renderer, 1 core | 64x64x16 | {rate:.0f} clips/s |")
    shapes = [synthetic.sample_factors("synthetic_shapes", 0, i) for i in range(64)]
    rate = _rate(lambda: synthetic.render_shapes(shapes[next(counter) % 64], range(16), 32),
                 1, seconds)
    rows.append(f"| synthetic_shapes renderer, 1 core | 32x32x16 | {rate:.0f} clips/s |")

    for name, res in (("synthetic_actions", 64), ("synthetic_shapes", 32)):
        cfg = DataConfig(dataset=name, resolution=res, num_frames=16, num_videos=4096)
        it = iter(pipeline.make_dataset(cfg, 16, seed=0))
        rate = _rate(lambda: next(it), 16, seconds)
        rows.append(f"| pipeline `{name}` (batch 16) | {res}x{res}x16 | {rate:.0f} elements/s |")

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "videos", "walk")
        os.makedirs(src)
        for i in range(32):
            f = synthetic.sample_factors("synthetic_actions", 1, i)
            viz.write_mp4(os.path.join(src, f"v{i:03d}.mp4"),
                          synthetic.render_actions(f, range(48), 64))
        start = time.perf_counter()
        prepare_dataset.prepare(os.path.join(tmp, "videos"), "class_folders",
                                os.path.join(tmp, "rec"), resolution=64, progress_every=1000)
        rate = 32 / (time.perf_counter() - start)
        rows.append(f"| prepare_dataset (mp4 -> JPEG shards) | 64x64x48 | {rate:.1f} videos/s |")
        cfg = DataConfig(dataset="records", data_dir=os.path.join(tmp, "rec"), resolution=64,
                         num_frames=16, shuffle_buffer=32)
        it = iter(pipeline.make_dataset(cfg, 16, seed=0))
        rate = _rate(lambda: next(it), 16, seconds)
        rows.append(f"| pipeline `records` JPEG (batch 16) | 64x64x16 | {rate:.0f} elements/s |")
    return rows


_TRAIN_SETUPS = {
    # name: (model, resolution, frames, model params, global batch)
    "G3AN quickstart (32x32x8, ch16)": ("g3an", 32, 8, {"base_channels": 16, "d_channels": 16,
                                                        "z_appearance": 32, "z_motion": 8}, 16),
    # The paper configuration, batch 16: how the official PyTorch code is compared.
    "G3AN paper (64x64x16, z_a 128, z_m 10), F-SA on": ("g3an", 64, 16, {}, 16),
    "G3AN paper (64x64x16, z_a 128, z_m 10), F-SA off": ("g3an", 64, 16, {"attention": False},
                                                         16),
}


def _config_setup(name: str) -> tuple:
    """(model, resolution, frames, model params, batch, train steps) of configs/<name>.cfg."""
    from tools import config_file
    values, params = config_file.read(name)
    return (values["model"], int(values["resolution"]), int(values["num_frames"]), params,
            int(values["batch_size"]), int(values["train_steps"]))


for _key in ("inmodegan", "mvt_tsa", "twostreamvan", "dual_mtgan"):
    _TRAIN_SETUPS[f"{_key} quickstart (configs/{_key}_quickstart.cfg)"] = f"{_key}_quickstart"
# The official code's Weizmann configuration, batch 16, on synthetic data of its shape: how the
# official PyTorch code is compared (content, pred and video task rows; shares over its 500k).
_TRAIN_SETUPS["TwoStreamVAN paper (configs/twostreamvan_weizmann.cfg, 64x64x10, 10 classes)"] = (
    "twostreamvan_weizmann")
#: classes of a setup's model (synthetic_actions labels lie in [0, 8))
_SETUP_CLASSES = {"twostreamvan": 10}


def bench_train(seconds: float, precisions: list[str], with_jit: bool) -> list[str]:
    """The traced train step (data excluded) per precision (x jit_compile for the small model);
    for the paper configuration also the time to sample one batch with the generator."""
    import keras
    import tensorflow as tf

    from tfvidgen import models, sources
    from tfvidgen.config import Config, DataConfig, TrainConfig
    from tfvidgen.data import pipeline

    rows = []
    for name, setup in _TRAIN_SETUPS.items():
        if _SETUPS.value and not any(word in name for word in _SETUPS.value):
            continue
        key, res, frames, params, batch_size, *steps = (_config_setup(setup)
                                                        if isinstance(setup, str) else setup)
        horizon = steps[0] if steps else 1000       # the run's steps (configs), else 1000
        paper = "paper" in name
        for precision in precisions:
            for jit in (False, True) if with_jit and not paper else (False,):
                keras.mixed_precision.set_global_policy(precision)
                config = Config(model=key, model_params=params,
                                data=DataConfig(resolution=res, num_frames=frames, num_videos=256,
                                                max_stride=2),
                                train=TrainConfig(batch_size=batch_size)).validate()
                model = models.build(config, _SETUP_CLASSES.get(key, 8) if paper else 8)
                make_data = pipeline.TRAINING_DATA[model.TRAINING_DATA]
                batch = next(iter(make_data(config.data, batch_size, 0,
                                            real_batches=model.real_batches_per_step())))
                # Every distinct phase tuple of the run, with its share of steps.
                schedule = [tuple(model.phases(s)) for s in range(horizon)]
                for phases in dict.fromkeys(schedule):
                    share = schedule.count(phases) / len(schedule)
                    step = tf.function(lambda b, p=phases: model.train_step(b, p),
                                       jit_compile=jit)
                    start = time.perf_counter()
                    step(batch)
                    compile_s = time.perf_counter() - start
                    # At least three timed steps (paper-size steps take seconds each).
                    budget = min(seconds, 5.0) if jit else seconds
                    rate = _rate(lambda: step(batch), batch_size, budget)
                    which = "" if share == 1 else f" [{'+'.join(phases)}: {share:.0%} of steps]"
                    row = (f"| train step {name}{which}, {precision}, jit_compile={jit} | batch "
                           f"{batch_size} | {rate:.1f} videos/s = {batch_size / rate:.2f} s/step "
                           f"(trace+compile {compile_s:.0f} s) |")
                    rows.append(row)
                    print(row, file=sys.stderr, flush=True)
                if paper:
                    labels = (tf.range(batch_size) % 8 if getattr(model.cfg, "conditional", False)
                              else None)
                    latents = sources.seeded_inputs(model, batch_size, 0, labels)
                    generate = tf.function(lambda z: model.generate(z, training=False))
                    rate = _rate(lambda: generate(latents).numpy(), batch_size, budget)
                    rows.append(f"| sample {name}, {precision} | batch {batch_size} | "
                                f"{batch_size / rate:.2f} s per batch = {1 / rate:.3f} s per "
                                f"video |")
                    print(rows[-1], file=sys.stderr, flush=True)
    keras.mixed_precision.set_global_policy("float32")
    return rows


#: the configs whose models --what=serving exports untrained (G3AN's quickstart is quickstart.cfg)
SERVING_CONFIGS = {"g3an": "quickstart", "inmodegan": "inmodegan_quickstart",
                   "mvt_tsa": "mvt_tsa_quickstart", "twostreamvan": "twostreamvan_quickstart",
                   "dual_mtgan": "dual_mtgan_quickstart"}
SERVING_HEADER = ("| export, timed in a process with TensorFlow only | batch 1 latency | batch 16 "
                  "throughput | peak RSS of that process |\n|---|---|---|---|")
#: seconds a serving child may take before its row reports a timeout
SERVING_TIMEOUT = 1800


def _serving_child(repo: str, path: str, calls: int, seconds: float, batch: int) -> None:
    """Times one export as its users run it; executed from its source in a fresh interpreter
    (serving_child_command), so it imports only TensorFlow, NumPy and tools/fuzz_serving.py
    (itself free of tfvidgen), never tfvidgen: a user's server has none.

    The endpoint is `transfer` where the export declares one (Dual-MTGAN: what its users call),
    else `sample`; its inputs are valid values of the declared inputs in the export's
    assets.extra metadata (fuzz_serving's generator). Latency: batch 1, 3 warm-up calls, then at
    least `calls` calls (more while under `seconds`), each until its outputs are NumPy arrays.
    Throughput: batch `batch` (at most max_serving_batch), for at least `seconds`. Prints one
    JSON line; peak RSS is the child's own (VmHWM), loading included."""
    import json
    import os
    import resource
    import sys
    import time

    if "tfvidgen" in sys.modules:        # raised, not `assert`ed: holds under python -O too
        raise AssertionError("the serving child must run without tfvidgen")
    sys.path.insert(0, repo)
    from tools.fuzz_serving import ASSET_FILE, _valid_value

    with open(os.path.join(path, ASSET_FILE)) as f:      # before TensorFlow: fails fast
        meta = json.load(f)
    endpoint = "transfer" if "transfer" in meta["endpoints"] else "sample"
    specs = meta["endpoints"][endpoint]
    batch = min(batch, int(meta["max_serving_batch"]))

    import numpy as np
    import tensorflow as tf

    signature = tf.saved_model.load(path).signatures[endpoint]
    rng = np.random.default_rng(0)

    def inputs(n):
        return {s["name"]: tf.constant(_valid_value(s, n, rng, False), dtype=s["dtype"])
                for s in specs}

    def call(tensors):
        return {k: v.numpy() for k, v in signature(**tensors).items()}

    one = inputs(1)
    for _ in range(3):
        video = call(one)["video"]
    times, start = [], time.perf_counter()
    while len(times) < calls or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        call(one)
        times.append(time.perf_counter() - t0)
    many = inputs(batch)
    call(many)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done < 3:
        call(many)
        done += 1
    rate = done * batch / (time.perf_counter() - start)
    if "tfvidgen" in sys.modules:
        raise AssertionError("loading or calling the export imported tfvidgen")
    try:        # this process's own peak: ru_maxrss keeps the parent's across fork and exec
        with open("/proc/self/status") as f:
            peak_mb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "endpoint": endpoint, "video": list(video.shape[1:]), "calls": len(times),
        "p50_ms": float(np.percentile(times, 50) * 1e3),
        "p99_ms": float(np.percentile(times, 99) * 1e3), "batch": batch,
        "videos_per_s": rate, "peak_rss_mb": peak_mb,
        "tfvidgen_imported": "tfvidgen" in sys.modules}))


def serving_child_command(path: str, calls: int, seconds: float, batch: int = 16) -> list:
    """`python -c <_serving_child's source>` timing the export at `path` (see _serving_child)."""
    import inspect
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    args = (repo, os.path.abspath(path), int(calls), float(seconds), int(batch))
    code = f"{inspect.getsource(_serving_child)}\n_serving_child(*{args!r})\n"
    return [sys.executable, "-c", code]


def time_export(path: str, calls: int, seconds: float, batch: int = 16,
                timeout: float = SERVING_TIMEOUT) -> dict:
    """The serving child's measurements of the export at `path` (see _serving_child).

    The child inherits this environment (oneDNN and log level as the machine line reports them)
    but not PYTHONPATH, and runs from a temporary directory, so nothing of tfvidgen is on its
    path but the editable install, which it must not import.

    Raises:
      RuntimeError: the child failed or timed out; the message is its error.
    """
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with tempfile.TemporaryDirectory() as cwd:
        try:
            out = subprocess.run(serving_child_command(path, calls, seconds, batch), cwd=cwd,
                                 env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"no answer within {timeout:g} s") from None
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        errors = [line.strip() for line in out.stderr.splitlines() if line.strip()]
        raise RuntimeError(errors[-1] if errors else f"exit status {out.returncode}")
    return json.loads(lines[-1])


def _markdown_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")[:300]


def serving_row(model: str, note: str, path: str | None, calls: int, seconds: float,
                error: str | None = None) -> str:
    """The markdown row of `model`'s export at `path` timed by a serving child (`note`: what was
    exported); an error row (the child's error, or `error`) instead of raising."""
    if error is None:
        try:
            m = time_export(path, calls, seconds)
        except (RuntimeError, OSError, ValueError) as e:
            error = str(e)
    if error is not None:
        return f"| serving {model} ({note}) | error: {_markdown_cell(error)} | | |"
    t, h, w, _ = m["video"]
    return (f"| serving {model} `{m['endpoint']}` ({h}x{w}x{t}, {note}) | batch 1: p50 "
            f"{m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms ({m['calls']} calls) | batch "
            f"{m['batch']}: {m['videos_per_s']:.1f} videos/s | {m['peak_rss_mb']:.0f} MB |")


def bench_serving(seconds: float, workdirs: list[str], calls: int = 200) -> list[str]:
    """Latency, throughput and memory of the exports as their users run them: each export timed
    by a fresh process with TensorFlow and NumPy only (_serving_child). Without `workdirs`, every
    model of SERVING_CONFIGS is built with untrained weights (speed does not depend on their
    values) and exported; with them, each workdir's latest checkpoint is. A model or workdir that
    fails to build, export or run gives an error row; the others still run."""
    import gc
    import json

    import keras

    from tfvidgen import export_lib, models
    from tfvidgen import workdir as workdir_lib
    from tfvidgen.config import Config, DataConfig
    from tfvidgen.data import pipeline

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, source in enumerate(workdirs or SERVING_CONFIGS):
            model_name, note = ("?", source) if workdirs else \
                (source, f"untrained weights, configs/{SERVING_CONFIGS[source]}.cfg")
            try:
                if workdirs:
                    model, config, step = workdir_lib.load_for_inference(source)
                    model_name = config.model
                    metadata = {"config": json.loads(config.to_json()), "step": step,
                                "workdir": os.path.abspath(source)}
                else:
                    key, res, frames, params, *_ = _config_setup(SERVING_CONFIGS[source])
                    keras.mixed_precision.set_global_policy("float32")  # as load_for_inference
                    config = Config(model=key, model_params=params,
                                    data=DataConfig(resolution=res, num_frames=frames)).validate()
                    model = models.build(config, pipeline.dataset_info(config.data)["num_classes"],
                                         training=False)
                    metadata = {"config": json.loads(config.to_json()), "step": 0}
                path = export_lib.export_model(model, metadata, os.path.join(tmp, str(i)))
                del model
                gc.collect()
            except Exception as e:       # noqa: BLE001  one row per source, whatever failed
                rows.append(serving_row(model_name, note, None, calls, seconds,
                                        error=f"{type(e).__name__}: {e}"))
            else:
                rows.append(serving_row(model_name, note, path, calls, seconds))
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def bench_eval(seconds: float) -> list[str]:
    """The evaluation classifier's training and inference, and the Horn-Schunck flow estimator."""
    import tensorflow as tf

    from tfvidgen.config import DataConfig
    from tfvidgen.data import pipeline
    from tfvidgen.eval import classifier, flow

    rows = []
    # (resolution, width, batch): `evaluate`'s default classifier at the quickstart size, and
    # the test suite's one.
    for res, width, batch_size in ((32, 32, 32), (16, 16, 16)):
        data = DataConfig(dataset="synthetic_actions", resolution=res, num_frames=8,
                          num_videos=256, max_stride=2)
        batch = next(iter(pipeline.make_dataset(data, batch_size, 0)))
        model = classifier.VideoClassifier(8, 8, width)
        step = classifier.make_train_step(model)
        rate = _rate(lambda: step(batch), batch_size, seconds)
        rows.append(f"| evaluation classifier train step, width {width} | {res}x{res}x8, batch "
                    f"{batch_size} | {rate:.0f} videos/s |")
        videos = batch["video"].numpy()
        rate = _rate(lambda: classifier.predict(model, videos), batch_size, seconds)
        rows.append(f"| evaluation classifier inference, width {width} | {res}x{res}x8, batch "
                    f"{batch_size} | {rate:.0f} videos/s |")
        print(rows[-1], file=sys.stderr, flush=True)
    frames = tf.random.uniform([8, 64, 64, 3], -1, 1, seed=0)
    estimate = tf.function(lambda a, b: flow.horn_schunck(a, b))
    rate = _rate(lambda: estimate(frames[:-1], frames[1:]).numpy(), 7, seconds)
    rows.append(f"| Horn-Schunck flow (3 levels x 60 iterations) | 64x64 frame pairs, batch 7 | "
                f"{rate:.0f} pairs/s |")
    return rows


def bench_fvd(seconds: float) -> list[str]:
    """The FVD feature path (uint8 64x64 clips -> bilinear 224x224 -> network) on a stand-in with
    I3D's signature: 16 frames, [N, T, 224, 224, 3] in, 400 logits out, saved and reloaded from
    disk like a user's network. The stand-in is far cheaper than I3D: this times the protocol's
    own cost (resize, batching, loading), not I3D's."""
    import keras
    import tensorflow as tf

    from tfvidgen.eval import fvd

    net = keras.Sequential([keras.layers.Conv3D(16, (3, 7, 7), (2, 4, 4), activation="relu"),
                            keras.layers.Conv3D(64, 3, (2, 4, 4), activation="relu"),
                            keras.layers.GlobalAveragePooling3D(), keras.layers.Dense(400)])
    net(tf.zeros([1, 16, 224, 224, 3]))
    module = tf.Module()
    module.net = net
    module.default = tf.function(lambda rgb_input: {"logits": net(rgb_input)}, input_signature=[
        tf.TensorSpec([None, None, 224, 224, 3], tf.float32, name="rgb_input")])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures={"default": module.default})
        network = fvd.load_network(tmp)
        clips = np.random.default_rng(0).integers(0, 256, (16, 16, 64, 64, 3), dtype=np.uint8)
        rate = _rate(lambda: fvd.preprocess(clips, 224).numpy(), len(clips), seconds)
        rows.append(f"| FVD preprocessing (bilinear resize, [-1, 1]) | 16x64x64 -> 16x224x224 "
                    f"| {rate:.1f} clips/s |")
        rate = _rate(lambda: network.features(clips, batch_size=16), len(clips), seconds)
        rows.append(f"| FVD features, I3D-shaped stand-in (2 conv3d + dense), batch 16 | "
                    f"16x224x224 | {rate:.1f} clips/s |")
    return rows


_ADAPTIVE_MEMORY = """
import sys, tensorflow as tf
from tfvidgen.layers import adaptive_conv
n, jit = int(sys.argv[1]), sys.argv[2] == "1"
shapes = [(16, s, s, c) for s, c in %s]
maps = [tf.random.normal(shape) for shape in shapes]
kernels = [(tf.random.normal([*shape[:3], n]), tf.random.normal([*shape[:3], n]))
           for shape in shapes]
inputs = maps + [k for pair in kernels for k in pair]      # gradients for maps and kernels
def status(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith(field + ":")) / 1024
@tf.function
def step():
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        loss = tf.add_n([tf.reduce_sum(adaptive_conv.adaptive_separable_conv(h, v, w, jit=jit))
                         for h, (v, w) in zip(maps, kernels)])
    return tape.gradient(loss, inputs)
# TensorFlow keeps freed buffers, so the first call is the one whose growth shows the working
# set (it includes tracing and, for XLA, compiling)
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                         # resets the peak (VmHWM) to the current RSS
[g.numpy() for g in step()]
print(status("VmHWM") - before)
"""


def bench_adaptive_conv(seconds: float, timing: bool = True) -> list[str]:
    """TwoStreamVAN's fusion op at the four Weizmann-size scales (batch 16, gf_dim 16: the maps
    G_c fuses), kernel sizes 3/5/7: forward and forward+backward, XLA-compiled (training) and
    plain (the exported path); peak memory of all four scales' forward+backward per process."""
    import subprocess

    import tensorflow as tf

    from tfvidgen.layers import adaptive_conv

    scales = [(8, 16), (16, 128), (32, 32), (64, 3)]          # (side, channels) at gf_dim 16
    rows = []
    for n in (3, 5, 7) if timing else ():
        for side, channels in scales:
            h = tf.random.normal([16, side, side, channels])
            w_v, w_h = (tf.random.normal([16, side, side, n]) for _ in range(2))
            for jit in (True, False):
                forward = tf.function(
                    lambda h=h, w_v=w_v, w_h=w_h, jit=jit:
                    adaptive_conv.adaptive_separable_conv(h, w_v, w_h, jit=jit))

                def forward_backward(h=h, w_v=w_v, w_h=w_h, jit=jit):
                    with tf.GradientTape() as tape:
                        tape.watch([h, w_v, w_h])
                        out = adaptive_conv.adaptive_separable_conv(h, w_v, w_h, jit=jit)
                    return tape.gradient(out, [h, w_v, w_h])
                both = tf.function(forward_backward)
                fwd = 1e3 / _rate(lambda: forward().numpy(), 1, seconds / 4)
                fb = 1e3 / _rate(lambda: [g.numpy() for g in both()], 1, seconds / 4)
                rows.append(f"| adaptive conv n={n}, {side}x{side}x{channels}, batch 16, "
                            f"{'XLA' if jit else 'plain'} | forward {fwd:.2f} ms | "
                            f"forward+backward {fb:.2f} ms |")
                print(rows[-1], file=sys.stderr, flush=True)
    def peak_mb(n, jit):
        out = subprocess.run([sys.executable, "-c", _ADAPTIVE_MEMORY % scales, str(n),
                              str(int(jit))], capture_output=True, text=True, check=True,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                             cwd=os.path.join(os.path.dirname(__file__), ".."))
        return float(out.stdout.split()[-1])
    for n in (3, 5, 7):
        for jit in (True, False):
            rows.append(f"| adaptive conv n={n}, all four scales, forward+backward, "
                        f"{'XLA' if jit else 'plain'} | batch 16 | peak RSS "
                        f"+{peak_mb(n, jit):.0f} MB in the first call (incl. trace/compile) |")
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main(argv):
    del argv
    from tfvidgen import hardware
    precisions = [hardware.resolve_precision(p) for p in _PRECISION.value]
    print(f"# {hardware.describe(_PRECISION.value[0], precisions[0])}")
    print(f"# numpy {np.__version__}")
    if set(_WHAT.value) - {"serving"}:
        print("| what | shape | throughput |")
        print("|---|---|---|")
    if "data" in _WHAT.value:
        for row in bench_data(_SECONDS.value):
            print(row, flush=True)
    if "train" in _WHAT.value:
        for row in bench_train(_SECONDS.value, precisions, _JIT.value):
            print(row, flush=True)
    if "eval" in _WHAT.value:
        for row in bench_eval(_SECONDS.value):
            print(row, flush=True)
    if "fvd" in _WHAT.value:
        for row in bench_fvd(_SECONDS.value):
            print(row, flush=True)
    if "adaptive_conv" in _WHAT.value:
        for row in bench_adaptive_conv(_SECONDS.value):
            print(row, flush=True)
    if "serving" in _WHAT.value:              # last: a table of its own (four columns)
        print(("\n" if set(_WHAT.value) - {"serving"} else "") + SERVING_HEADER, flush=True)
        workdirs = [w for text in _WORKDIR.value for w in text.split(",") if w]
        for row in bench_serving(_SECONDS.value, workdirs, _SERVING_CALLS.value):
            print(row, flush=True)
    print(f"# peak RSS {_peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    app.run(main)
