r"""Times tfvidgen against the official PyTorch codes of G3AN, TwoStreamVAN and MVT-TSA in one run,
on this machine, under one protocol, and writes one markdown table (official s | tfvidgen s and
the ratio official/ours, per precision | peak RSS | other processes' CPU load), and a second one:
our distance to the machine's limit (dense-math FLOPs per second against this machine's measured
matmul / Conv3D peak).

  python tools/official_benchmark.py --references=DIR \
      --torch_python=/path/to/torch/venv/bin/python \
      [--rows=g3an_fsa,g3an,twostreamvan,mvt_tsa] [--tasks=train,sample] \
      [--precision=auto,float32] [--warmup=1 --iters=3] [--out=FILE.md --json=FILE.json]

A full run takes on the order of an hour on 2 cores. Short runs: the command above (--references,
--torch_python) with e.g. the following, a few minutes each (the peak, under a minute, is part of
every run):
  --rows=g3an --tasks=train --precision=float32 --iters=1      # G3AN F-SA off: training only
  --rows=twostreamvan --tasks=pred                             # one TwoStreamVAN task
  --rows=g3an_fsa,mvt_tsa --tasks=sample --quiet_wait=60       # sampling of two rows

Why one command: timings from different days, machines or loads cannot be compared; here both
sides run in the same run, one measurement after the other (never two at once), each in its own
child process (peak RSS per measurement; the official codes' generic module names never share an
interpreter), after waiting for the machine to be quiet (--quiet_wait), and each records how much
CPU other processes used while it measured.

Rows (the same configuration on both sides):
  g3an_fsa, g3an  G3AN paper configuration, F-SA on / off: 64x64x16, z_a 128, z_m 10, ch 64,
                  batch 16, with the official code's (2+1)D D_V on our side too
                  (video_discriminator=2+1, not our default, the paper's 3D D_V): a training
                  iteration and sampling one batch of 16.
  twostreamvan    TwoStreamVAN, the official Weizmann configuration (configs/twostreamvan_
                  weizmann.cfg, 10 classes), batch 16: one row per training task (official
                  recons / pred / video = our content / pred / video phase tuples) and sampling.
  mvt_tsa         MVT-TSA, the official configuration (configs/mvt_tsa_ucf128.cfg: 128x128x16,
                  ch 64 in G and D, 2 D steps per G step, 101 classes), batch 2 (the smallest the
                  official code trains: its GRU BatchNorm fails at 1): a training iteration and
                  sampling one batch.
Official side: tools/official_reference.py run by --torch_python (see its docstring). tfvidgen
side: this script with this repository's Python (--child), our model built for the row's
configuration, random in-memory data, `model.train_step(batch, phases)` traced with tf.function,
`model.generate(latents, training=False)` traced for sampling; once per --precision (`auto` as
tfvidgen.hardware.resolve_precision resolves it; two values resolving to the same policy share one
measurement). Both: median of --iters after --warmup iterations (our first call traces), --threads
threads (torch.set_num_threads; TF intra- and inter-op threads; OMP/MKL). --tasks keeps only
some measurements: train, sample (every row's), or recons, pred, video (TwoStreamVAN's train
measurements).

Distance to the machine's limit: before the rows (after the quiet wait, in its own child, the
rows' thread count) the peak child times a float32 matmul (2048^3) and a Conv3D typical of these
models ([16, 8, 32, 32, 128] -> 128 channels, 3x3x3) forward, and the same in bfloat16 where the
CPU has it natively (tfvidgen.hardware) or a column runs mixed_bfloat16: GFLOP/s each. Every
tfvidgen measurement counts the dense-math FLOPs (conv + matmul, forward and backward) of its
traced function from the graph (dense_flops: 2 x MACs of convs, their backprops and matmuls from
static shapes; elementwise ops, pruned ops and while-loop bodies not counted: sampling through a
rollout loop is not counted) and reports FLOPs / its median time as a share of the Conv3D peak of
its precision. Goal: at least 70% on the conv-heavy steps.

Getting the official codes (plain source trees, nothing of theirs is copied into this
repository; they are imported at run time, unmodified):
  DIR/g3an-project  github wyhsirius/g3an-project
  DIR/TwoStreamVAN  github sunxm2357/TwoStreamVAN
  DIR/tsb-gan       github amunozgarza/tsb-gan (MVT / MVT-TSA)
e.g. `git clone --bare https://github.com/<owner>/<name> x.git`, then
  git --git-dir=x.git archive HEAD | tar -x -C DIR/<name>
  git --git-dir=x.git rev-parse HEAD > DIR/<name>/.source_commit    # optional: the report names it
(g3an-project: add `-- . ':(exclude)evaluation/stats'` to the archive when a mirror lacks those
FID statistics blobs; they are not needed.)
The torch environment, separate from tfvidgen's (CPU torch; a bare `pip install torch` pulls
several GB of CUDA packages):
  python3 -m venv /path/to/torch/venv
  /path/to/torch/venv/bin/pip install torch==2.13.0 numpy
torchvision, tensorboardX, OpenCV and the like are not needed (stubbed; see the report's
deviations).

Output: markdown to --out (default stdout), the raw records (every iteration time) to --json;
--report_from=FILE.json re-renders the markdown of an earlier run. Progress lines (which
measurement, ETA) go to stderr. A failed or timed-out (--timeout) child shows its error in its
row and the run goes on. Exit 2 with one `official_benchmark: error:` line for a bad flag or input
(a missing references directory or tree, a torch Python that cannot import torch, an unknown
row or task), before anything is measured.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO)

#: the user's oneDNN switch, before tfvidgen sets its default in this process: children get the
#: user's, so that their tfvidgen decides (and reports) as it would in a run of its own
_USER_ONEDNN = os.environ.get("TF_ENABLE_ONEDNN_OPTS")

import tfvidgen  # noqa: E402  (oneDNN default before TensorFlow loads)

from tfvidgen import errors, hardware  # noqa: E402
from tools import official_reference as reference  # noqa: E402

__all__ = ["ROWS", "TASKS", "Row", "Measurement", "plan", "check_request", "tfvidgen_setup",
           "dense_flops", "prepare_tfvidgen", "count_flops", "measure_tfvidgen", "measure_peak",
           "render_report", "main"]

CMD = "official_benchmark"
#: environment variables that cap either side's instruction set (e.g. to run as an AVX2-only CPU
#: would on an AVX-512 one): recorded in the report when set
ISA_VARS = (*hardware.ISA_CAP_VARS, "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
            "XLA_FLAGS")
PRECISIONS = ("auto", "float32", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class Row:
    title: str
    tree: str                   # source tree under --references
    repository: str             # where it comes from (github)
    official_model: str         # official_reference.py --model
    batch: int
    setup: tuple | str          # (model, resolution, frames, model params) or a configs/ name
    num_classes: int
    tasks: tuple = ()           # official training tasks timed separately (TwoStreamVAN)


ROWS = {
    "g3an_fsa": Row("G3AN paper (64x64x16, z_a 128, z_m 10, ch 64, the code's (2+1)D D_V), "
                    "F-SA on", "g3an-project", "wyhsirius/g3an-project", "g3an_fsa", 16,
                    ("g3an", 64, 16, {"video_discriminator": "2+1"}), 1),
    "g3an": Row("G3AN paper (64x64x16, z_a 128, z_m 10, ch 64, the code's (2+1)D D_V), F-SA off",
                "g3an-project", "wyhsirius/g3an-project", "g3an", 16,
                ("g3an", 64, 16, {"attention": False, "video_discriminator": "2+1"}), 1),
    "twostreamvan": Row("TwoStreamVAN Weizmann (64x64x10, 10 classes)", "TwoStreamVAN",
                        "sunxm2357/TwoStreamVAN", "twostreamvan", 16, "twostreamvan_weizmann",
                        10, reference.TSVAN_TASKS),
    "mvt_tsa": Row("MVT-TSA (128x128x16, ch 64, 101 classes)", "tsb-gan",
                   "amunozgarza/tsb-gan", "mvt_tsa", 2, "mvt_tsa_ucf128", 101),
}
#: --tasks values: a phase of every row, or one official TwoStreamVAN training task
TASKS = ("train", "sample") + reference.TSVAN_TASKS
#: official TwoStreamVAN task -> our curriculum task, the prefix of its phase names
OUR_TASK = {"recons": "content", "pred": "pred", "video": "video"}
#: rough seconds per iteration on 2 AVX2 EPYC cores, (official, tfvidgen): the ETA only
_PER_ITERATION = {("g3an_fsa", "train"): (48, 17), ("g3an_fsa", "sample"): (13, 4),
                  ("g3an", "train"): (24, 9), ("g3an", "sample"): (5, 2),
                  ("twostreamvan", "train"): (30, 10), ("twostreamvan", "sample"): (5, 3),
                  ("mvt_tsa", "train"): (100, 60), ("mvt_tsa", "sample"): (15, 8)}
_START_UP = (5, 40)        # seconds to start, import and build (tfvidgen: and trace), per child
_QUIET_SHARE = 0.10        # other processes' CPU share below which the machine counts as quiet


@dataclasses.dataclass(frozen=True)
class Measurement:
    row: str
    phase: str                  # train | sample
    task: str | None = None     # official TwoStreamVAN task of a train measurement

    @property
    def label(self) -> str:
        row = ROWS[self.row]
        if self.phase == "sample":
            return f"{row.title}: sample {row.batch} videos"
        if self.task:
            return f"{row.title}: train, official {self.task} / ours {OUR_TASK[self.task]} task"
        return f"{row.title}: train iteration"


def plan(rows, tasks=None) -> list[Measurement]:
    """The measurements of `rows`, in order: each training task, then sampling; with `tasks`
    (TASKS names) only those whose phase (train, sample) or TwoStreamVAN task (recons, pred,
    video) is among them."""
    out = []
    for key in rows:
        tasks_of_row = ROWS[key].tasks or (None,)
        out += [Measurement(key, "train", task) for task in tasks_of_row]
        out.append(Measurement(key, "sample"))
    if tasks:
        out = [m for m in out if m.phase in tasks or m.task in tasks]
    return out


def log(message: str) -> None:
    print(f"{CMD}: {message}", file=sys.stderr, flush=True)


# ---- checks before measuring ----------------------------------------------------------------
def check_request(references: str, torch_python: str, rows, precisions, tasks=()) -> dict:
    """Raises ValueError naming the flag for anything that would fail later; returns the torch
    environment's versions."""
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        raise ValueError(f"--rows: unknown row {', '.join(map(repr, unknown)) or '(none given)'}"
                         f" (known: {','.join(ROWS)})")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"--tasks: unknown {', '.join(map(repr, unknown))} (known: "
                         f"{','.join(TASKS)}; TwoStreamVAN's recons, pred, video are its train "
                         f"measurements)")
    if tasks and not plan(rows, tasks):
        raise ValueError(f"--tasks={','.join(tasks)}: no measurement of --rows={','.join(rows)} "
                         f"(recons, pred, video are TwoStreamVAN's)")
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        raise ValueError(f"--precision: unknown {', '.join(map(repr, bad)) or '(none given)'} "
                         f"(known: {','.join(PRECISIONS)})")
    if not references:
        raise ValueError("--references: give the directory holding the official source trees")
    if not os.path.isdir(references):
        raise ValueError(f"--references={references}: no such directory")
    for key in rows:
        row = ROWS[key]
        if not os.path.isdir(os.path.join(references, row.tree)):
            raise ValueError(f"--references={references}: no {row.tree}/ in it (row {key} needs "
                             f"github {row.repository} there; see --help)")
    if not torch_python:
        raise ValueError("--torch_python: give the Python of an environment with torch and numpy")
    probe = ("import json, platform, numpy, torch; print(json.dumps({'torch': torch.__version__,"
             " 'numpy': numpy.__version__, 'python': platform.python_version()}))")
    try:
        done = subprocess.run([torch_python, "-c", probe], capture_output=True, text=True,
                              timeout=300, env=_torch_env(1))
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ValueError(f"--torch_python={torch_python}: not runnable ({e})") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["exit status %d" % done.returncode])[-1]
        raise ValueError(f"--torch_python={torch_python}: cannot import torch and numpy ({last})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def source_commit(tree: str) -> str | None:
    """The commit of an extracted tree: <tree>/.source_commit, else git, else None."""
    try:
        with open(os.path.join(tree, ".source_commit")) as f:
            return f.read().strip() or None
    except OSError:
        pass
    try:
        done = subprocess.run(["git", "-C", tree, "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if done.returncode == 0:
            return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return None


# ---- dense-math FLOPs of a traced graph -----------------------------------------------------
#: what FLOP counts mean wherever they are shown
FLOPS_DEFINITION = ("dense-math FLOPs (conv + matmul, forward and backward) counted from the "
                    "traced graph")
_CONV_OPS = frozenset({
    "Conv2D", "Conv3D", "DepthwiseConv2dNative",
    "Conv2DBackpropInput", "Conv2DBackpropInputV2", "Conv2DBackpropFilter",
    "Conv2DBackpropFilterV2", "Conv3DBackpropInput", "Conv3DBackpropInputV2",
    "Conv3DBackpropFilter", "Conv3DBackpropFilterV2", "DepthwiseConv2dNativeBackpropInput",
    "DepthwiseConv2dNativeBackpropFilter"})
_MATMUL_OPS = frozenset({"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"})
_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
_LOOP_OPS = frozenset({"While", "StatelessWhile"})
_BRANCH_OPS = frozenset({"If", "StatelessIf", "Case", "StatelessCase"})


def _static(shape) -> list | None:
    """The dims of a TensorShape, None unless every one is known."""
    if shape.rank is None:
        return None
    dims = shape.as_list()
    return None if any(d is None for d in dims) else dims


def _product(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _einsum_macs(op) -> tuple:
    """(MACs, None) of a two-operand Einsum with an explicit output, else (0, why skipped).
    MACs = output elements x the product of the summed (contracted) dims."""
    equation = op.get_attr("equation")
    equation = equation.decode() if isinstance(equation, bytes) else equation
    equation = equation.replace(" ", "")
    if len(op.inputs) != 2 or "->" not in equation:
        return 0, f"Einsum {equation!r} (not a two-operand einsum with an explicit output)"
    operands, output = equation.split("->")
    sizes = {}
    for spec, tensor in zip(operands.split(","), op.inputs):
        dims = _static(tensor.shape)
        if dims is None:
            return 0, f"Einsum {equation!r} (unknown static shape)"
        left, ellipsis, right = spec.partition("...")
        if ellipsis and "..." not in output:
            return 0, f"Einsum {equation!r} (an ellipsis summed over)"
        pairs = list(zip(left, dims)) + (list(zip(right, dims[len(dims) - len(right):]))
                                         if ellipsis else [])
        for letter, size in pairs:
            sizes[letter] = max(sizes.get(letter, 1), size)
    out_dims = _static(op.outputs[0].shape)
    if out_dims is None:
        return 0, f"Einsum {equation!r} (unknown static shape)"
    summed = [size for letter, size in sizes.items() if letter not in output]
    return _product(out_dims) * _product(summed), None


def _op_macs(op) -> tuple:
    """(MACs, None) of one conv or matmul op from its static shapes, or (0, why skipped).

    Convolutions (forward, input and filter backprops alike): the output gradient's elements
    (for the forward op: its output) x the kernel volume x the kernel's input channels, i.e.
    output-gradient spatial size x kernel volume x C_in x C_out; depthwise: x the kernel volume
    only. The kernel's shape is the op's output for a filter backprop, its second input
    otherwise; the output gradient is the third input of a backprop."""
    kind = op.type
    if kind in _CONV_OPS:
        forward = "Backprop" not in kind
        kernel = _static((op.outputs[0] if "BackpropFilter" in kind else op.inputs[1]).shape)
        gradient = _static((op.outputs[0] if forward else op.inputs[2]).shape)
        if kernel is None or gradient is None:
            return 0, f"{kind} {op.name} (unknown static shape)"
        per_output = kernel[:-2] if kind.startswith("Depthwise") else kernel[:-1]
        return _product(gradient) * _product(per_output), None
    if kind in _MATMUL_OPS:
        left, out = _static(op.inputs[0].shape), _static(op.outputs[0].shape)
        if left is None or out is None:
            return 0, f"{kind} {op.name} (unknown static shape)"
        transposed = op.get_attr("transpose_a" if kind == "MatMul" else "adj_x")
        return _product(out) * (left[-2] if transposed else left[-1]), None
    if kind == "Einsum":
        return _einsum_macs(op)
    return 0, None


def _find_function(graph, name: str, root):
    """A function called from `graph` by name: in graph, its outer graphs, or root."""
    while graph is not None:
        found = getattr(graph, "_functions", {}).get(name)
        if found is not None:
            return found
        graph = getattr(graph, "outer_graph", None)
    return getattr(root, "_functions", {}).get(name)


def _live_operations(graph) -> list:
    """The operations of a graph that run: those its outputs, control outputs and stateful ops
    depend on (TensorFlow prunes the rest when it runs a function, e.g. the filter gradient of a
    conv whose weights are not being trained), in graph order."""
    roots = ([t.op for t in getattr(graph, "outputs", [])]
             + list(getattr(graph, "control_outputs", [])))
    operations = graph.get_operations()
    roots += [op for op in operations if op._is_stateful]
    live, todo = set(), roots
    while todo:
        op = todo.pop()
        if op not in live:
            live.add(op)
            todo += [t.op for t in op.inputs] + list(op.control_inputs)
    return [op for op in operations if op in live]


def _branch_functions(op) -> list:
    """Names of the functions a while loop (cond, body) or a conditional (branches) runs."""
    if op.type in _LOOP_OPS:
        return [op.get_attr("cond").name, op.get_attr("body").name]
    if op.type in ("If", "StatelessIf"):
        return [op.get_attr("then_branch").name, op.get_attr("else_branch").name]
    return [branch.name for branch in op.get_attr("branches")]


def dense_flops(graph) -> dict:
    """Dense-math FLOPs of one run of a traced graph (e.g.
    `fn.get_concrete_function(args).graph`), counted from static shapes: 2 x MACs of Conv2D,
    Conv3D, their BackpropInput(V2) / BackpropFilter(V2) ops (each the MACs of the forward conv:
    output-gradient spatial size x kernel volume x C_in x C_out; Conv2DTranspose is a
    Conv2DBackpropInput), DepthwiseConv2dNative and its backprops, MatMul, BatchMatMul(V2/V3) and
    two-operand Einsum. Functions called from the graph (PartitionedCall,
    StatefulPartitionedCall) are counted per call. Not counted: elementwise ops, reductions,
    normalisation, optimizer updates, and the bodies of while loops and conditionals (their
    trip count or branch is not static); loops and conditionals whose functions hold dense
    math are returned so that a caller can say so (those without, e.g. a tf.map_fn of
    per-example random draws, cost no dense FLOPs and are only tallied). Ops that do not run
    (nothing the graph returns or updates depends on them, e.g. the filter gradients of a
    discriminator in a generator step, which TensorFlow's gradient functions emit and its
    runtime prunes) are not counted either: their FLOPs are "pruned_flops". Within a called
    function every op its outputs need is counted, even if the caller uses only some outputs.

    Returns {"flops", "by_op" (op type -> FLOPs), "while_loops", "conditionals" (with dense
    math inside: not counted), "control_flow_without_dense_math", "calls", "pruned_flops",
    "skipped" (ops not counted: unknown shapes, unsupported einsum)}."""
    keys = ("while_loops", "conditionals", "control_flow_without_dense_math", "calls",
            "pruned_flops")
    memo = {}

    def function_totals(g, name, stack, caller):
        if name not in memo:
            function = _find_function(g, name, graph)
            if function is None or name in stack:
                memo[name] = {"by_op": {}, **dict.fromkeys(keys, 0),
                              "skipped": [f"{caller} of {name} (its function not found)"]}
            else:
                memo[name] = walk(function.graph, stack | {name})
        return memo[name]

    def walk(g, stack):
        totals = {"by_op": {}, **dict.fromkeys(keys, 0), "skipped": []}

        def add(other):
            for key, value in other["by_op"].items():
                totals["by_op"][key] = totals["by_op"].get(key, 0) + value
            for key in keys:
                totals[key] += other[key]
            totals["skipped"] += [s for s in other["skipped"] if s not in totals["skipped"]]

        live = _live_operations(g)
        alive = set(live)
        for op in g.get_operations():
            if op not in alive:
                totals["pruned_flops"] += 2 * _op_macs(op)[0]
                continue
            if op.type in _LOOP_OPS or op.type in _BRANCH_OPS:
                inside = [function_totals(g, name, stack, op.type)
                          for name in _branch_functions(op)]
                dense = any(t["by_op"] or t["while_loops"] or t["conditionals"] for t in inside)
                kind = "while_loops" if op.type in _LOOP_OPS else "conditionals"
                totals[kind if dense else "control_flow_without_dense_math"] += 1
            elif op.type in _CALL_OPS:
                totals["calls"] += 1
                add(function_totals(g, op.get_attr("f").name, stack, op.type))
            else:
                macs, skipped = _op_macs(op)
                if macs:
                    totals["by_op"][op.type] = totals["by_op"].get(op.type, 0) + 2 * macs
                if skipped and skipped not in totals["skipped"]:
                    totals["skipped"].append(skipped)
        return totals

    result = walk(graph, frozenset())
    return {"flops": sum(result["by_op"].values()), **result}


def conv_share(count: dict) -> float | None:
    """The share of a dense_flops() count in convolutions."""
    if not count or not count.get("flops"):
        return None
    return sum(v for k, v in count["by_op"].items() if k in _CONV_OPS) / count["flops"]


# ---- the tfvidgen side (runs in a child) ----------------------------------------------------
def _read_config(name: str) -> tuple:
    """(model, resolution, frames, model params, TrainConfig fields) of configs/<name>.cfg."""
    from tools import config_file
    values, params = config_file.read(name)
    train = {k: float(values[k]) for k in ("g_lr", "d_lr", "beta1", "beta2", "ema_decay")
             if k in values}
    return (values["model"], int(values["resolution"]), int(values["num_frames"]), params, train)


def tfvidgen_setup(row_key: str, overrides: dict | None = None) -> dict:
    """Our configuration of a row: model, resolution, frames, params, train, batch, classes.
    `overrides` (tests: a tiny size) replaces any of them; its "params" update the params."""
    row = ROWS[row_key]
    if isinstance(row.setup, str):
        model, resolution, frames, params, train = _read_config(row.setup)
    else:
        (model, resolution, frames, params), train = row.setup, {}
    setup = {"model": model, "resolution": resolution, "frames": frames, "params": dict(params),
             "train": train, "batch": row.batch, "num_classes": row.num_classes}
    overrides = dict(overrides or {})
    setup["params"].update(overrides.pop("params", {}))
    unknown = set(overrides) - set(setup)
    if unknown:
        raise ValueError(f"--child_overrides: unknown keys {sorted(unknown)}")
    setup.update(overrides)
    return setup


def _random_batch(model, config, num_classes: int):
    """A training batch of the model's structure (the pipeline's first batch, fully read so no
    prefetching runs while timing) with random contents: floats uniform in [-1, 1], labels
    uniform over the classes."""
    import tensorflow as tf

    from tfvidgen.data import pipeline
    make_data = pipeline.TRAINING_DATA[model.TRAINING_DATA]
    dataset = make_data(config.data, config.train.batch_size, 0,
                        real_batches=model.real_batches_per_step())
    batch = list(dataset.take(1))[0]
    out = {}
    for i, (key, value) in enumerate(sorted(batch.items())):
        seed = tf.constant([0, i], tf.int64)
        if value.dtype.is_floating:
            value = tf.random.stateless_uniform(value.shape, seed, -1.0, 1.0, value.dtype)
        elif key in ("label", "target_label"):
            value = tf.random.stateless_uniform(value.shape, seed, 0, num_classes, value.dtype)
        out[key] = value
    return out


def _our_phases(model, task: str | None, horizon: int = 50000) -> tuple:
    """The phase tuple timed for a measurement: model.phases(0), or for an official
    TwoStreamVAN task the first distinct model.phases(step) tuple of our mapped task."""
    if task is None:
        return tuple(model.phases(0))
    seen = set()
    for step in range(horizon):
        phases = tuple(model.phases(step))
        if phases not in seen:
            seen.add(phases)
            if phases[0].split("_", 1)[0] == OUR_TASK[task]:
                return phases
    raise ValueError(f"no {OUR_TASK[task]} phases in the first {horizon} steps "
                     f"(seen: {sorted(seen)})")


def _count(layer) -> int:
    import numpy as np
    return int(sum(np.prod(v.shape) for v in layer.trainable_weights))


def model_params(model) -> dict:
    """Trainable parameters of our model's networks: G and D_<name> per discriminator."""
    params = {"G": _count(model.generator)}
    for attribute, network in model.networks().items():
        if network.role == "discriminator" and getattr(model, attribute, None) is not None:
            params["D_" + attribute.replace("_discriminator", "")] = _count(
                getattr(model, attribute))
    return params


def prepare_tfvidgen(row_key: str, phase: str, task: str | None, precision: str,
                     overrides: dict | None = None) -> dict:
    """Our model for a measurement, built under the global Keras policy of `precision` (a fresh
    process's business: it sets that policy), and the traced function timed: {"setup",
    "policy", "model", "function" (a tf.function), "args" (its arguments), "phases", "start"}.
    Nothing runs yet: the first call of `function(*args)` traces."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tfvidgen import models, sources
    from tfvidgen.config import Config, DataConfig, TrainConfig

    setup = tfvidgen_setup(row_key, overrides)
    policy = hardware.resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    batch_size, classes = setup["batch"], setup["num_classes"]
    config = Config(model=setup["model"], model_params=setup["params"],
                    data=DataConfig(resolution=setup["resolution"], num_frames=setup["frames"],
                                    num_videos=256, max_stride=2),
                    train=TrainConfig(batch_size=batch_size, **setup["train"])).validate()
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    model = models.build(config, classes)
    if phase == "train":
        phases = _our_phases(model, task)
        args = (_random_batch(model, config, classes),)
        function = tf.function(lambda b: model.train_step(b, phases))
    else:
        phases = None
        labels = (np.arange(batch_size) % classes if getattr(model.cfg, "conditional", False)
                  else None)
        args = (sources.seeded_inputs(model, batch_size, 0, labels),)
        function = tf.function(lambda z: model.generate(z, training=False))
    return {"setup": setup, "policy": policy, "model": model, "function": function,
            "args": args, "phases": phases, "start": start}


def count_flops(prepared: dict, phase: str) -> dict:
    """dense_flops() of a prepared measurement's traced function (traces it if no call has).
    Sampling through a while loop (a rollout) is not counted: "flops" None and "not_counted"
    says why; a train step with one counts the rest (a lower bound) and says so in "note"."""
    graph = prepared["function"].get_concrete_function(*prepared["args"]).graph
    count = dense_flops(graph)
    loops = count["while_loops"]
    if loops and phase == "sample":
        count.update(flops=None, not_counted=f"the sampling graph has {loops} while loop(s) (a "
                     f"rollout): not counted")
    elif loops or count["conditionals"]:
        parts = [f"{n} {what}" for n, what in ((loops, "while loop(s)"),
                                                (count["conditionals"], "conditional(s)")) if n]
        count["note"] = f"lower bound: {' and '.join(parts)} not counted"
    return count


def measure_tfvidgen(row_key: str, phase: str, task: str | None, precision: str, warmup: int,
                     iters: int, threads: int, overrides: dict | None = None) -> dict:
    """Times our model for a measurement (in a fresh process: it sets TF's thread pools and the
    global Keras policy); returns the record official_reference.py prints, plus ours: the
    measured function's dense-math FLOP count (count_flops, after the timing) among them."""
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    prepared = prepare_tfvidgen(row_key, phase, task, precision, overrides)
    setup, policy, model = prepared["setup"], prepared["policy"], prepared["model"]
    function, args = prepared["function"], prepared["args"]
    batch_size, classes = setup["batch"], setup["num_classes"]
    record = {"phases": None if prepared["phases"] is None else list(prepared["phases"])}
    if phase == "train":
        call = lambda: [v.numpy() for v in tf.nest.flatten(function(*args))]  # noqa: E731
    else:
        call = lambda: function(*args).numpy()  # noqa: E731
    record.update(reference.time_calls(call, warmup, iters))
    try:
        record["flops"] = count_flops(prepared, phase)
    except Exception as e:  # noqa: BLE001  (the timing stands without a count)
        record["flops"] = {"flops": None, "not_counted": f"count failed: {type(e).__name__}: "
                                                         f"{e}"}
    params = model_params(model)
    size = f"{setup['resolution']}x{setup['resolution']}x{setup['frames']}"
    record.update({
        "side": "tfvidgen", "row": row_key, "phase": phase, "task": task,
        "precision_requested": precision, "precision": policy, "batch": batch_size,
        "warmup": warmup, "iters": iters, "threads": threads, "params": params,
        "config": (f"{setup['model']} {size}, "
                   + (f"{classes} classes, " if getattr(model.cfg, "conditional", False) else "")
                   + f"batch {batch_size}, params "
                   f"{json.dumps(setup['params'], sort_keys=True)}, train "
                   f"{json.dumps(setup['train'], sort_keys=True)}"),
        "peak_rss_mib": reference.peak_rss_mib(),
        "wall_s": time.perf_counter() - prepared["start"],
        "tensorflow": tf.__version__, "keras": keras.__version__})
    return record


# ---- this machine's peak (runs in a child) ---------------------------------------------------
#: the kernels timed for the peak: kind -> (shape text, input shapes); FLOPs by dense_flops
PEAK_KERNELS = {
    "matmul": ("[2048, 2048] x [2048, 2048]", ([2048, 2048], [2048, 2048])),
    "conv3d": ("[16, 8, 32, 32, 128] -> 128 channels, kernel 3x3x3, stride 1, SAME, forward",
               ([16, 8, 32, 32, 128], [3, 3, 3, 128, 128])),
}
#: Keras policy of a measurement -> the dtype of the peak it is compared with
PEAK_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16"}


def peak_dtypes(policies) -> list:
    """float32, and bfloat16 where the CPU has it natively or a column's policy uses it."""
    wanted = ["float32"]
    if hardware.cpu_info().native_bfloat16 or any(
            PEAK_DTYPE.get(p) == "bfloat16" for p in policies):
        wanted.append("bfloat16")
    return wanted


def measure_peak(dtypes, warmup: int, iters: int, threads: int, scale: float = 1.0) -> dict:
    """This machine's dense-math throughput: PEAK_KERNELS timed per dtype (a fresh process:
    it sets TF's thread pools), median of `iters` after max(1, warmup) (the first call
    traces); FLOPs counted by dense_flops on each kernel's traced graph. `scale` (tests)
    shrinks the first input's leading dimension. A kernel that fails (e.g. no bfloat16 Conv3D
    kernel) records its error."""
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)

    kernels = {"matmul": lambda x, w: tf.matmul(x, w)[0, 0],
               "conv3d": lambda x, w: tf.nn.conv3d(x, w, [1] * 5, "SAME")[0, 0, 0, 0, 0]}
    peaks = []
    for dtype in dtypes:
        for kind, (text, shapes) in PEAK_KERNELS.items():
            entry = {"kind": kind, "dtype": dtype, "shape": text}
            try:
                shapes = [[max(1, int(shapes[0][0] * scale))] + shapes[0][1:], shapes[1]]
                args = [tf.cast(tf.random.stateless_uniform(shape, [0, i], -1.0, 1.0), dtype)
                        for i, shape in enumerate(shapes)]
                function = tf.function(kernels[kind])
                flops = dense_flops(function.get_concrete_function(*args).graph)["flops"]
                entry.update(reference.time_calls(lambda: function(*args).numpy(),
                                                  max(1, warmup), iters))
                entry.update(ok=True, flops=flops, gflops_s=flops / entry["median"] / 1e9,
                             best_gflops_s=flops / entry["min"] / 1e9)
            except Exception as e:  # noqa: BLE001  (the other kernels still run)
                entry.update(ok=False, error=f"{type(e).__name__}: "
                             f"{' '.join(str(e).split())[:300]}")
            peaks.append(entry)
    return {"side": "peak", "threads": threads, "peaks": peaks, "scale": scale,
            "onednn": hardware.onednn_state(), "tensorflow": tf.__version__,
            "peak_rss_mib": reference.peak_rss_mib()}


def probe(precisions) -> dict:
    """This environment's versions, the machine line and what each precision resolves to."""
    import keras
    import numpy as np
    import tensorflow as tf

    resolved = {p: hardware.resolve_precision(p) for p in precisions}
    auto = hardware.resolve_precision("auto")
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0], "machine": hardware.describe("auto", auto),
            "resolved": resolved}


def _child_main(spec: str, precision: str, warmup: int, iters: int, threads: int,
                overrides: str) -> int:
    """--child: prints one JSON line (stdout holds nothing else: other output goes to stderr)."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if spec == "probe":
        record = probe(precision.split(","))
    elif spec == "peak":
        scale = json.loads(overrides).get("scale", 1.0) if overrides else 1.0
        record = measure_peak(precision.split(","), warmup, iters, threads, scale)
    else:
        row, phase, *task = spec.split("/")
        record = measure_tfvidgen(row, phase, task[0] if task else None, precision, warmup,
                                  iters, threads, json.loads(overrides) if overrides else None)
    out.write(json.dumps(record) + "\n")
    out.flush()
    return 0


# ---- running children -----------------------------------------------------------------------
def _thread_vars(threads: int) -> dict:
    return {v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                       "OPENBLAS_NUM_THREADS")}


def _user_env() -> dict:
    """This process's environment with the user's oneDNN switch (unset if they set none)."""
    env = dict(os.environ)
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    if _USER_ONEDNN is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = _USER_ONEDNN
    return env


def _tfvidgen_env(threads: int | None = None) -> dict:
    """A tfvidgen child's environment: this checkout importable, the thread variables."""
    env = {**_user_env(), "PYTHONPATH": tfvidgen.child_env()["PYTHONPATH"]}
    return {**env, **(_thread_vars(threads) if threads else {})}


def _torch_env(threads: int) -> dict:
    """The official side's environment: the user's, without this checkout on PYTHONPATH."""
    env = _user_env()
    env.pop("PYTHONPATH", None)
    return {**env, **_thread_vars(threads)}


def wait_for_quiet(max_wait: float, window: float = 3.0) -> tuple:
    """Waits until other processes use < 10 % of the CPUs over `window` s, at most max_wait s;
    returns (seconds waited, last busy share). Nothing of ours runs meanwhile."""
    start, share = time.perf_counter(), None
    while max_wait > 0:
        _, busy0, _ = reference.cpu_snapshot()
        time.sleep(window)
        _, busy1, _ = reference.cpu_snapshot()
        if busy0 is None or busy1 is None:
            break
        share = (busy1 - busy0) / os.sysconf("SC_CLK_TCK") / (window * (os.cpu_count() or 1))
        waited = time.perf_counter() - start
        if share < _QUIET_SHARE or waited >= max_wait:
            break
        if waited < 2 * window:
            log(f"machine busy ({share:.0%} of the CPUs used by other processes): waiting up "
                f"to {max_wait:.0f} s")
    waited = time.perf_counter() - start
    if waited >= 2 * window and share is not None:
        log(f"waited {waited:.0f} s; other processes now use {share:.0%} of the CPUs")
    return waited, share


def _kill_group(process) -> None:
    """SIGKILL to the process group of a child this script started (the child and anything it
    started)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_child(command: list, env: dict, timeout: float, quiet_wait: float) -> dict:
    """Runs one measuring child (in its own process group, killed on timeout); its JSON record
    with ok/error, or ok False and the error."""
    waited, busy = wait_for_quiet(quiet_wait)
    start = time.perf_counter()
    outcome = {"quiet_wait_s": waited, "busy_before": busy}
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                                   stderr=stderr, start_new_session=True)
        try:
            stdout, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            outcome.update(ok=False, error=f"timeout after {timeout:.0f} s")
        except BaseException:
            _kill_group(process)
            process.wait()
            raise
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace").strip().splitlines()[-20:]
    outcome["child_wall_s"] = time.perf_counter() - start
    if "error" in outcome:
        return outcome
    lines = [line for line in stdout.decode(errors="replace").splitlines()
             if line.startswith("{")]
    if process.returncode == 0 and lines:
        outcome.update(json.loads(lines[-1]), ok=True)
        return outcome
    for line in tail:
        print(f"    | {line}", file=sys.stderr)
    last = next((line for line in reversed(tail) if line.strip()), "no output")
    outcome.update(ok=False, error=f"exit {process.returncode}: {last.strip()}")
    return outcome


def _official_command(torch_python, references, m: Measurement, warmup, iters, threads):
    command = [torch_python, os.path.join(REPO, "tools", "official_reference.py"),
               f"--model={ROWS[m.row].official_model}", f"--phase={m.phase}",
               f"--references={os.path.abspath(references)}", f"--batch={ROWS[m.row].batch}",
               f"--warmup={warmup}", f"--iters={iters}", f"--threads={threads}"]
    return command + ([f"--task={m.task}"] if m.task else [])


def _tfvidgen_command(m: Measurement, precision, warmup, iters, threads):
    spec = "/".join(filter(None, [m.row, m.phase, m.task]))
    return [sys.executable, os.path.abspath(__file__), f"--child={spec}",
            f"--child_precision={precision}", f"--warmup={warmup}", f"--iters={iters}",
            f"--threads={threads}"]


class _Eta:
    """Remaining time from rough per-iteration costs, scaled by how the run has gone so far."""

    def __init__(self, jobs: list, warmup: int, iters: int):
        self.estimates = [self._estimate(job, warmup, iters) for job in jobs]
        self.done_estimate = self.done_actual = 0.0

    @staticmethod
    def _estimate(job, warmup, iters):
        measurement, side = job[0], job[1]
        index = 0 if side == "official" else 1
        return (_START_UP[index] + (warmup + iters)
                * _PER_ITERATION[(measurement.row, measurement.phase)][index])

    def finished(self, index: int, seconds: float) -> None:
        self.done_estimate += self.estimates[index]
        self.done_actual += seconds

    def remaining(self, index: int) -> str:
        scale = (min(4.0, max(0.25, self.done_actual / self.done_estimate))
                 if self.done_estimate else 1.0)
        seconds = scale * sum(self.estimates[index:])
        return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def run_all(measurements, torch_python, references, policies, warmup, iters, threads, timeout,
            quiet_wait) -> list:
    """Every measurement's official child, then one tfvidgen child per distinct policy."""
    jobs = []
    for m in measurements:
        jobs.append((m, "official", None))
        jobs += [(m, "tfvidgen", policy) for policy in policies]
    eta = _Eta(jobs, warmup, iters)
    records = {m: {"official": None, "tfvidgen": {}} for m in measurements}
    tf_env = _tfvidgen_env(threads)
    for i, (m, side, policy) in enumerate(jobs):
        what = f"{m.label} / {side}" + (f" {policy}" if policy else "")
        log(f"[{i + 1}/{len(jobs)}] {what}: starting (ETA {eta.remaining(i)})")
        start = time.perf_counter()
        if side == "official":
            record = run_child(_official_command(torch_python, references, m, warmup, iters,
                                                 threads), _torch_env(threads), timeout,
                               quiet_wait)
            records[m]["official"] = record
        else:
            record = run_child(_tfvidgen_command(m, policy, warmup, iters, threads), tf_env,
                               timeout, quiet_wait)
            records[m]["tfvidgen"][policy] = record
        eta.finished(i, time.perf_counter() - start)
        result = (f"median {record['median']:.2f} s" if record["ok"]
                  else f"FAILED: {record['error']}")
        log(f"[{i + 1}/{len(jobs)}] {what}: {result} ({time.perf_counter() - start:.0f} s)")
    return [{"row": m.row, "phase": m.phase, "task": m.task, "label": m.label,
             "batch": ROWS[m.row].batch, **records[m]} for m in measurements]


TFVIDGEN_NOTES = """\
tfvidgen side
- Our model is built from the row's configuration (G3AN: the model's defaults, which are the
  paper's, except `video_discriminator="2+1"`; configs/twostreamvan_weizmann.cfg;
  configs/mvt_tsa_ucf128.cfg at the batch above), a
  training batch of the pipeline's structure with random contents (floats uniform in [-1, 1],
  labels uniform) is held in memory, and `model.train_step(batch, phases)` and
  `model.generate(latents, training=False)` are traced with tf.function. TF intra- and inter-op
  threads = the thread count; each measurement in a fresh process (peak RSS includes the Python
  and TensorFlow baseline).
- G3AN: D_V is the official code's (2+1)D stack (`video_discriminator="2+1"`: Conv3d (1,4,4)
  stride (1,2,2) then unpadded (4,1,1) per level, ch 64..512, 8.35M parameters), not our
  default, the paper's 3D D_V (11.03M), so that both sides train the same architecture: D_V
  and D_I counts match exactly; G has 5,888 parameters (0.03%) fewer than the official one: the
  official G3 modules' conv biases right before a BatchNorm, which cancels them (ours have
  none).
- TwoStreamVAN: each official task is compared with the step of our curriculum task of that name
  (content for recons): the first distinct `model.phases(step)` tuple of the task, at step 0 with
  the equilibrium gate open, as on the official side.
- MVT-TSA: a real batch of 2 for each of the 2 D steps (fresh real data per D step, as in the
  official loop), no gradient accumulation on either side.
"""


# ---- the report ------------------------------------------------------------------------------
def _cell_text(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _seconds(record: dict | None) -> str:
    if not record:
        return "not run"
    if not record.get("ok"):
        return "failed: " + _cell_text(record.get("error", "?"))
    if len(record["times"]) - record["warmup"] > 1:
        return f"{record['median']:.2f} ({record['min']:.2f}–{record['max']:.2f})"
    return f"{record['median']:.2f}"


def _ratio(official: dict | None, ours: dict | None) -> str:
    """official median / ours, "" when either failed."""
    if not (official and official.get("ok") and ours and ours.get("ok")) or not ours["median"]:
        return ""
    return f"{official['median'] / ours['median']:.2f}x"


def task_mix(video_share: float) -> dict:
    """TwoStreamVAN's training-run shares of its tasks under the code's curriculum (ours is the
    same): content with p = content_probability, else video with p = video_share, else pred."""
    from tfvidgen.models.twostreamvan_config import TwoStreamVANConfig
    motion = 1.0 - TwoStreamVANConfig.content_probability
    return {"recons": TwoStreamVANConfig.content_probability, "video": motion * video_share,
            "pred": motion * (1.0 - video_share)}


def _task_mix_lines(columns, task_results) -> list:
    """Per precision, the mean iteration time of a TwoStreamVAN training run at the video-task
    ramp's start and end (task_mix), both sides, and its ratio: what a run's speed-up is."""
    from tfvidgen.models.twostreamvan_config import TwoStreamVANConfig as C
    by_task = {r["task"]: r for r in task_results}
    if set(by_task) != set(task_mix(0.0)):
        return []
    lines = []
    for when, share in (("start", C.video_task_start), ("end", C.video_task_end)):
        mix = task_mix(share)

        def mean(pick):
            records = {t: pick(r) for t, r in by_task.items()}
            if not all(rec and rec.get("ok") for rec in records.values()):
                return None
            return sum(mix[t] * rec["median"] for t, rec in records.items())

        official = mean(lambda r: r["official"])
        cells = []
        for c in dict.fromkeys(c["policy"] for c in columns):
            ours = mean(lambda r: r["tfvidgen"].get(c))
            if official and ours:
                cells.append(f"{c} {ours:.2f} s ({official / ours:.2f}x)")
        if official and cells:
            shares = ", ".join(f"{t} {mix[t]:.2f}" for t in ("recons", "pred", "video"))
            lines.append(f"- TwoStreamVAN training run at the video-task ramp's {when} "
                         f"(task shares {shares}): mean iteration official {official:.2f} s, "
                         f"tfvidgen " + ", ".join(cells))
    return lines + [""] if lines else []


def _rss(record: dict | None) -> str:
    return f"{record['peak_rss_mib']:.0f}" if record and record.get("ok") else "–"


def _load(record: dict | None) -> str:
    if not record or not record.get("ok") or "other_load" not in record:
        return "–"
    return f"{record['other_load']:.0%}"


def _peak_rate(peak: dict | None, kind: str, dtype: str | None) -> float | None:
    """GFLOP/s of one peak kernel of a run's peak record, None if not measured."""
    for entry in (peak or {}).get("peaks", []):
        if entry["kind"] == kind and entry["dtype"] == dtype and entry.get("ok"):
            return entry["gflops_s"]
    return None


def _limit_section(meta: dict, results: list) -> list:
    """The "distance to the machine's limit" section: the peak kernels, then per measurement
    and precision our FLOPs, achieved GFLOP/s and share of the Conv3D peak."""
    peak = meta.get("peak")
    lines = ["## Distance to the machine's limit", ""]
    if not peak:
        lines += ["Not measured in this run (no peak record).", ""]
    elif not peak.get("ok"):
        lines += [f"This machine's peak: failed: {_cell_text(peak.get('error', '?'))}", ""]
    else:
        lines += [f"This machine's peak, measured in this run before the rows (its own process, "
                  f"{peak['threads']} threads, {peak.get('onednn', 'oneDNN ?')}; TensorFlow "
                  f"kernels; GFLOP/s = FLOPs / median of the measured calls, best call in "
                  f"brackets):", "",
                  "| kernel | precision | shape | GFLOP per call | median s | GFLOP/s | other "
                  "load |", "|---|---|---|---|---|---|---|"]
        for entry in peak["peaks"]:
            if entry.get("ok"):
                cells = [f"{entry['flops'] / 1e9:.1f}", f"{entry['median']:.3f}",
                         f"{entry['gflops_s']:.0f} ({entry['best_gflops_s']:.0f})",
                         _load(entry)]
            else:
                cells = ["–", "failed: " + _cell_text(entry.get("error", "?")), "–", "–"]
            lines.append(f"| {entry['kind']} | {entry['dtype']} | {entry['shape']} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"FLOPs = {FLOPS_DEFINITION} of our measured function (its tf.function concrete "
              "graph, static shapes: 2 x MACs of Conv2D / Conv3D and their input and filter "
              "backprops, each the MACs of its forward conv, depthwise convs, MatMul, "
              "BatchMatMul, two-operand Einsum; functions called from the graph included; "
              "elementwise ops, normalisation and optimizer updates not counted, nor ops "
              "TensorFlow prunes because nothing needs them, e.g. D's filter gradients in the G "
              "step; while-loop bodies with dense math not counted: sampling through a rollout "
              "loop is not counted, a train step with one is a lower bound). Achieved = FLOPs / "
              "our median time; share = achieved / this run's Conv3D peak of the same "
              "precision (float32: float32, mixed_bfloat16: bfloat16); conv = the convolutions' "
              "part of the FLOPs; 3x needs = the share of that peak our FLOPs would need to run "
              "in a third of the official median (above 100%: 3x is out of reach at this FLOP "
              "count on this machine). Goal: at least 70% on the conv-heavy steps.", "",
              "| what | precision | dense GFLOP | conv | median s | achieved GFLOP/s | share of "
              "the Conv3D peak | 3x needs | note |", "|---|---|---|---|---|---|---|---|---|"]
    policies = list(dict.fromkeys(c["policy"] for c in meta["precision_columns"]))
    for result in results:
        for policy in policies:
            record = result["tfvidgen"].get(policy)
            cells = [_cell_text(result["label"]), policy]
            if not record or not record.get("ok"):
                lines.append("| " + " | ".join(cells + ["–"] * 6) + " | measurement "
                             + ("failed" if record else "not run") + " |")
                continue
            count = record.get("flops") or {}
            flops = count.get("flops")
            note = count.get("not_counted") or count.get("note") or (
                "" if count else "not counted (no FLOP count in the record)")
            if count.get("skipped"):
                note = "; ".join(filter(None, [note, "skipped: " + ", ".join(count["skipped"])]))
            if flops:
                rate = flops / record["median"] / 1e9
                conv_rate = _peak_rate(peak, "conv3d", PEAK_DTYPE.get(policy))
                share = conv_share(count)
                official = result["official"]
                needed = (3 * flops / official["median"] / 1e9 / conv_rate
                          if conv_rate and official and official.get("ok") else None)
                cells += [f"{flops / 1e9:.1f}", f"{share:.0%}" if share is not None else "–",
                          f"{record['median']:.2f}", f"{rate:.1f}",
                          f"{rate / conv_rate:.0%}" if conv_rate else "– (no peak)",
                          f"{needed:.0%}" if needed is not None else "–"]
            else:
                cells += ["–", "–", f"{record['median']:.2f}", "–", "–", "–"]
            lines.append("| " + " | ".join(cells + [_cell_text(note)]) + " |")
    lines.append("")
    return lines


def render_report(payload: dict) -> str:
    """The markdown report of a run's JSON payload ({"meta", "results"})."""
    meta, results = payload["meta"], payload["results"]
    columns = meta["precision_columns"]           # [{"requested", "policy"}]
    first_column = {}
    for c in columns:
        first_column.setdefault(c["policy"], c["requested"])
    names = [f"{c['requested']} → {c['policy']}" if c["requested"] != c["policy"]
             else c["requested"] for c in columns]
    lines = ["# tfvidgen against the official PyTorch codes", "",
             "Generated by `python tools/official_benchmark.py` (tools/README.md); both sides "
             "measured in this one run, one process per measurement, one at a time.", "",
             f"- date: {meta['date']} (whole run {meta['elapsed_s'] / 60:.0f} min)",
             f"- machine: {meta['machine']}",
             f"- CPU (/proc/cpuinfo): {meta['cpu']}, {meta['cpus']} logical CPUs",
             *(["- instruction set capped on both sides: " + ", ".join(
                 f"{k}={v}" for k, v in meta["isa_env"].items())] if meta.get("isa_env") else []),
             f"- tfvidgen side: TensorFlow {meta['tensorflow']}, Keras {meta['keras']}, numpy "
             f"{meta['numpy']}, Python {meta['python']}",
             f"- official side: torch {meta['torch']['torch']}, numpy {meta['torch']['numpy']}, "
             f"Python {meta['torch']['python']}"]
    for key, tree in meta["references"].items():
        lines.append(f"- reference `{tree['tree']}` (github {tree['repository']}): commit "
                     f"{tree['commit'] or 'unknown'}")
    lines += [f"- protocol: median wall time of {meta['iters']} iterations after "
              f"{meta['warmup']} warm-up(s) (min–max in brackets), seconds; {meta['threads']} "
              f"threads on both sides; random in-memory data; ours traced with tf.function (its "
              f"first call traces); a child that did not finish within {meta['timeout']:.0f} s "
              f"failed",
              "- precisions: " + ", ".join(
                  f"`{c['requested']}` = {c['policy']}" for c in columns) + " (resolved by "
              "tfvidgen.hardware.resolve_precision; columns with one policy share one "
              "measurement)",
              *([f"- measurements: only --tasks={','.join(meta['tasks'])}"]
                if meta.get("tasks") else []),
              "- ratio = official median / tfvidgen median (above 1: tfvidgen is faster); "
              "other load = share of the machine's CPU used by other processes while the "
              "measured iterations ran (0% = clean)", ""]
    header = (["what", "batch", "official s"] + [f"tfvidgen {n}: s, official/ours" for n in names]
              + ["peak RSS MiB official / " + " / ".join(names),
                 "other load official / " + " / ".join(names)])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        official = result["official"]
        ours = [result["tfvidgen"].get(c["policy"]) for c in columns]
        cells = [_cell_text(result["label"]), str(result["batch"]), _seconds(official)]
        for c, record in zip(columns, ours):
            cell, ratio = _seconds(record), _ratio(official, record)
            if ratio:
                cell += f", {ratio}"
            if first_column[c["policy"]] != c["requested"]:
                cell += f" (= {first_column[c['policy']]})"
            cells.append(cell)
        cells.append(" / ".join([_rss(official)] + [_rss(r) for r in ours]))
        cells.append(" / ".join([_load(official)] + [_load(r) for r in ours]))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")

    mapped = [r for r in results if r["task"]]
    if mapped:
        lines += ["TwoStreamVAN tasks, official → ours (our phase tuple, the distinct "
                  "`model.phases(step)` tuple of that task; the official task is its "
                  "`optimize_*_parameters()` sequence with the gate open):", ""]
        for r in mapped:
            phases = next((rec["phases"] for rec in r["tfvidgen"].values()
                           if rec and rec.get("ok") and rec.get("phases")), None)
            lines.append(f"- `{r['task']}` → `{OUR_TASK[r['task']]}`"
                         + (f": {' + '.join(phases)}" if phases else ""))
        lines.append("")
        lines += _task_mix_lines(columns, mapped)

    lines += _limit_section(meta, results)
    lines += ["## Configurations and parameter counts", ""]
    for r in results:
        records = [("official", r["official"])] + [
            (f"tfvidgen {p}", rec) for p, rec in r["tfvidgen"].items()]
        for side, rec in records:
            if rec and rec.get("ok"):
                params = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in rec["params"].items())
                phases = f"; phases {' + '.join(rec['phases'])}" if rec.get("phases") else ""
                lines.append(f"- {_cell_text(r['label'])}, {side}: {rec['config']}; {params}"
                             f"{phases}")
    lines += ["", "## Every iteration (seconds, warm-ups first)", ""]
    for r in results:
        records = [("official", r["official"])] + [
            (f"tfvidgen {p}", rec) for p, rec in r["tfvidgen"].items()]
        for side, rec in records:
            if rec and rec.get("ok"):
                own = (f"; own CPU {rec['own_cpu_s']:.1f} s per measured iteration"
                       if "own_cpu_s" in rec else "")
                lines.append(f"- {_cell_text(r['label'])}, {side}: "
                             + ", ".join(f"{t:.2f}" for t in rec["times"]) + own)
            elif rec:
                lines.append(f"- {_cell_text(r['label'])}, {side}: failed: "
                             f"{_cell_text(rec.get('error', '?'))}")
    stubs = sorted({s for r in results if r["official"] and r["official"].get("ok")
                    for s in r["official"].get("stubbed_modules", [])})
    trees = ["general"] + list(dict.fromkeys(ROWS[r["row"]].tree for r in results))
    lines += ["", "## Deviations from the references (and why)", ""]
    lines += [reference.DEVIATIONS[tree] for tree in trees]
    if stubs:
        lines += [f"Stub modules the official processes imported: {', '.join(stubs)}.", ""]
    lines.append(TFVIDGEN_NOTES)
    return "\n".join(lines)


# ---- entry point -----------------------------------------------------------------------------
def define_flags() -> None:
    from absl import flags
    flags.DEFINE_string("references", None, "Directory holding the official source trees "
                        "g3an-project/, TwoStreamVAN/, tsb-gan/ (see the module docstring).")
    flags.DEFINE_string("torch_python", None, "Python of a separate environment with torch "
                        "(CPU) and numpy: runs tools/official_reference.py.")
    flags.DEFINE_list("rows", list(ROWS), f"Rows to measure, out of {','.join(ROWS)}.")
    flags.DEFINE_list("tasks", [], f"Only these measurements of the rows (default: all), out of "
                      f"{','.join(TASKS)}: a phase of every row, or one of TwoStreamVAN's "
                      f"official training tasks (its train measurements).")
    flags.DEFINE_list("precision", ["auto", "float32"], "tfvidgen's Keras policies, one "
                      "column each: auto (this machine's choice), float32, mixed_bfloat16.")
    flags.DEFINE_integer("warmup", 1, "Warm-up iterations per measurement (not counted).",
                         lower_bound=0)
    flags.DEFINE_integer("iters", 3, "Measured iterations per measurement (median).",
                         lower_bound=1)
    flags.DEFINE_integer("threads", 2, "CPU threads of each side.", lower_bound=1)
    flags.DEFINE_float("timeout", 1200.0, "Seconds allowed per child process.", lower_bound=1)
    flags.DEFINE_float("quiet_wait", 300.0, "Before each child, wait up to this many seconds "
                       "for other processes to use < 10% of the CPUs (0: do not wait).",
                       lower_bound=0)
    flags.DEFINE_string("out", "", "Markdown report file (default: stdout).")
    flags.DEFINE_string("json", "", "Raw records (every iteration time) as JSON.")
    flags.DEFINE_string("report_from", "", "Only re-render the markdown of an earlier --json.")
    flags.DEFINE_string("child", "", "(internal) measure one tfvidgen configuration: "
                        "row/phase[/task], probe, or peak.")
    flags.DEFINE_string("child_precision", "float32", "(internal) the child's policy.")
    flags.DEFINE_string("child_overrides", "", "(internal, tests) JSON replacing the row's "
                        "sizes: resolution, frames, batch, num_classes, params; for "
                        "--child=peak: scale (of the kernels' leading dimension).")


def _write(path: str, text: str) -> None:
    if path:
        errors.write_text_atomically(path, text)
        log(f"wrote {path}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def main(argv) -> int:
    del argv
    from absl import flags
    f = flags.FLAGS
    if f.child:
        return _child_main(f.child, f.child_precision, f.warmup, f.iters, f.threads,
                           f.child_overrides)
    for flag in ("out", "json"):
        if getattr(f, flag):
            errors.check_output_file(f"--{flag}", getattr(f, flag))
    if f.report_from:
        with open(f.report_from) as source:
            _write(f.out, render_report(json.load(source)))
        return 0
    torch_info = check_request(f.references, f.torch_python, f.rows, f.precision, f.tasks)
    started, start = datetime.datetime.now(datetime.timezone.utc), time.perf_counter()
    log("probing this environment (TensorFlow, the precisions' policies)")
    info = run_child([sys.executable, os.path.abspath(__file__), "--child=probe",
                      f"--child_precision={','.join(f.precision)}"], _tfvidgen_env(), 600,
                     quiet_wait=0)
    if not info["ok"]:
        return errors.fail(CMD, f"this environment's TensorFlow probe failed: {info['error']}")
    columns = [{"requested": p, "policy": info["resolved"][p]} for p in f.precision]
    policies = list(dict.fromkeys(c["policy"] for c in columns))
    dtypes = peak_dtypes(policies)
    log(f"[peak] this machine's matmul and Conv3D throughput ({', '.join(dtypes)}, "
        f"{f.threads} threads): starting")
    peak = run_child([sys.executable, os.path.abspath(__file__), "--child=peak",
                      f"--child_precision={','.join(dtypes)}", f"--warmup={f.warmup}",
                      f"--iters={f.iters}", f"--threads={f.threads}"],
                     _tfvidgen_env(f.threads), f.timeout, f.quiet_wait)
    log("[peak] " + ("; ".join(f"{p['kind']} {p['dtype']} " + (
        f"{p['gflops_s']:.0f} GFLOP/s" if p.get("ok") else "FAILED")
        for p in peak.get("peaks", [])) if peak["ok"] else f"FAILED: {peak['error']}"))
    results = run_all(plan(f.rows, f.tasks), f.torch_python, f.references, policies, f.warmup,
                      f.iters, f.threads, f.timeout, f.quiet_wait)
    trees = {ROWS[r].tree: ROWS[r].repository for r in f.rows}
    meta = {"date": started.strftime("%Y-%m-%d %H:%M UTC"),
            "elapsed_s": time.perf_counter() - start, "machine": info["machine"],
            "cpu": hardware.cpu_info().model, "cpus": os.cpu_count(),
            "tensorflow": info["tensorflow"], "keras": info["keras"], "numpy": info["numpy"],
            "python": info["python"], "torch": torch_info,
            "references": {tree: {"tree": tree, "repository": repository,
                                  "commit": source_commit(os.path.join(f.references, tree))}
                           for tree, repository in trees.items()},
            "warmup": f.warmup, "iters": f.iters, "threads": f.threads, "timeout": f.timeout,
            "quiet_wait": f.quiet_wait, "rows": list(f.rows), "tasks": list(f.tasks),
            "precision_columns": columns, "peak": peak,
            "isa_env": {v: os.environ[v] for v in ISA_VARS if os.environ.get(v)}}
    payload = {"meta": meta, "results": results}
    if f.json:
        errors.write_text_atomically(f.json, json.dumps(payload, indent=1) + "\n")
        log(f"wrote {f.json}")
    _write(f.out, render_report(payload))
    failed = sum(1 for r in results for rec in [r["official"], *r["tfvidgen"].values()]
                 if not rec or not rec.get("ok"))
    if failed:
        log(f"{failed} measurement(s) failed: see their rows")
    return 0


if __name__ == "__main__":
    define_flags()
    errors.run_app(main, CMD)
