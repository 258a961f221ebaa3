"""tools/official_benchmark.py: the report from canned records (ratios, a failed row, shared
precision columns, the distance to the machine's limit), the dense-math FLOP counter on tiny
graphs counted by hand, --tasks, a tiny tfvidgen measurement and a tiny peak in their own
processes, and the one-line errors for bad input. Needs no torch: the official side is never
started here."""

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO, TINY_PARAMS, subprocess_env
from tools import official_benchmark as bench

TOOL = "tools/official_benchmark.py"


def _record(median, times=None, rss=1000.0, load=0.02, **extra):
    times = times or [median * 1.5, median * 0.9, median, median * 1.1]
    return {"ok": True, "times": times, "warmup": 1, "median": median,
            "min": min(times[1:]), "max": max(times[1:]), "peak_rss_mib": rss,
            "other_load": load, "own_cpu_s": 2 * median, "params": {"G": 2_500_000},
            "config": "canned", **extra}


def _payload(columns, results, **extra):
    meta = {"date": "2026-12-24 10:00 UTC", "elapsed_s": 600.0, "machine": "hardware: CPU X",
            "cpu": "AMD EPYC", "cpus": 2, "tensorflow": "2.21.0", "keras": "3.15.1",
            "numpy": "2.1.0", "python": "3.11.7",
            "torch": {"torch": "2.13.0+cpu", "numpy": "2.4.6", "python": "3.11.7"},
            "references": {"g3an-project": {"tree": "g3an-project",
                                            "repository": "wyhsirius/g3an-project",
                                            "commit": "74764fd"}},
            "warmup": 1, "iters": 3, "threads": 2, "timeout": 1200.0, "quiet_wait": 300.0,
            "rows": ["g3an"], "precision_columns": columns, **extra}
    return {"meta": meta, "results": results}


def _result(measurement, official, ours):
    return {"row": measurement.row, "phase": measurement.phase, "task": measurement.task,
            "label": measurement.label, "batch": bench.ROWS[measurement.row].batch,
            "official": official, "tfvidgen": ours}


def _table_row(report, label):
    return next(line for line in report.splitlines() if line.startswith(f"| {label} |"))


def test_the_report_gives_ratios_per_precision_and_a_failed_rows_error():
    train, sample = bench.plan(["g3an"])
    task = bench.Measurement("twostreamvan", "train", "recons")
    columns = [{"requested": "auto", "policy": "mixed_bfloat16"},
               {"requested": "float32", "policy": "float32"}]
    results = [
        _result(train, _record(24.0, rss=4963), {"mixed_bfloat16": _record(4.0, rss=2100),
                                                 "float32": _record(6.0, rss=2500, load=0.3)}),
        _result(sample, {"ok": False, "error": "timeout after 1200 s"},
                {"mixed_bfloat16": _record(1.0), "float32": {
                    "ok": False, "error": "exit 1: ResourceExhaustedError: OOM | here"}}),
        _result(task, _record(9.0), {"mixed_bfloat16": _record(3.0, phases=[
            "content_d", "content_encoder", "content_generator"]),
            "float32": _record(4.5)}),
    ]
    report = bench.render_report(_payload(columns, results))

    assert "2026-12-24 10:00 UTC" in report and "AMD EPYC" in report
    assert "TensorFlow 2.21.0, Keras 3.15.1" in report and "torch 2.13.0+cpu" in report
    assert "commit 74764fd" in report and "median wall time of 3 iterations after 1" in report
    assert ("| tfvidgen auto → mixed_bfloat16: s, official/ours | tfvidgen float32: s, "
            "official/ours |") in report
    row = _table_row(report, train.label)
    assert "| 24.00 (21.60–26.40) | 4.00 (3.60–4.40), 6.00x | 6.00 (5.40–6.60), 4.00x |" in (
        row)
    assert "| 4963 / 2100 / 2500 | 2% / 2% / 30% |" in row
    # a failed official child: its error in the row, no ratio; a failed ours: escaped error
    row = _table_row(report, sample.label)
    assert "| failed: timeout after 1200 s | 1.00 (0.90–1.10) |" in row
    assert "failed: exit 1: ResourceExhaustedError: OOM \\| here" in row
    assert "| – / 1000 / – |" in row
    assert "| 9.00 (8.10–9.90) | 3.00 (2.70–3.30), 3.00x | 4.50 (4.05–4.95), 2.00x |" in (
        _table_row(report, task.label))
    assert "- `recons` → `content`: content_d + content_encoder + content_generator" in report
    assert "Deviations from the references" in report


def test_precisions_resolving_to_one_policy_share_one_measurement_in_the_report():
    (train,) = bench.plan(["g3an"])[:1]
    columns = [{"requested": "auto", "policy": "float32"},
               {"requested": "float32", "policy": "float32"}]
    report = bench.render_report(_payload(columns, [
        _result(train, _record(20.0), {"float32": _record(8.0)})]))
    assert "| 8.00 (7.20–8.80), 2.50x | 8.00 (7.20–8.80), 2.50x (= auto) |" in _table_row(
        report, train.label)
    assert "tfvidgen auto → float32: s, official/ours" in report
    assert "capped" not in report
    capped = bench.render_report(_payload(columns, [
        _result(train, _record(20.0), {"float32": _record(8.0)})],
        isa_env={"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}))
    assert ("- instruction set capped on both sides: ONEDNN_MAX_CPU_ISA=AVX2, "
            "ATEN_CPU_CAPABILITY=avx2") in capped


def test_dense_flops_counts_conv3d_forward_and_backward_and_matmuls_by_hand():
    import tensorflow as tf

    @tf.function
    def head(h, w):                  # a called function: its ops count (and its gradient's)
        return tf.matmul(tf.reshape(h, [2, 180]), w)

    @tf.function
    def step(x, k, w):
        with tf.GradientTape() as tape:
            tape.watch([x, k, w])
            h = tf.nn.conv3d(x, k, [1, 1, 2, 2, 1], "SAME")        # [2, 4, 3, 3, 5]
            loss = tf.reduce_sum(head(h, w))
        return tape.gradient(loss, [x, k, w])

    graph = step.get_concrete_function(tf.zeros([2, 4, 6, 6, 3]), tf.zeros([3, 3, 3, 3, 5]),
                                       tf.zeros([180, 7])).graph
    count = bench.dense_flops(graph)
    # Conv3D: output (gradient) 2*4*3*3*5 = 360 elements x kernel 3*3*3 x C_in 3 = 29160 MACs,
    # the same for the input and the filter gradients; MatMul [2,180]x[180,7]: 2520 MACs, and
    # each of its two gradient matmuls the same; FLOPs = 2 x MACs
    assert count["by_op"] == {"Conv3D": 58320, "Conv3DBackpropInputV2": 58320,
                              "Conv3DBackpropFilterV2": 58320, "MatMul": 3 * 5040}
    assert count["flops"] == 3 * 58320 + 3 * 5040 == 190080
    assert count["calls"] == 2 and count["while_loops"] == 0 and not count["skipped"]
    assert count["pruned_flops"] == 0
    assert bench.conv_share(count) == pytest.approx(3 * 58320 / 190080)

    @tf.function
    def filter_gradient_only(x, k, w):
        with tf.GradientTape() as tape:
            tape.watch([x, k, w])
            loss = tf.reduce_sum(head(tf.nn.conv3d(x, k, [1, 1, 2, 2, 1], "SAME"), w))
        return tape.gradient(loss, k)

    # the conv's input gradient is emitted but nothing needs it: TensorFlow prunes it, so do we
    count = bench.dense_flops(filter_gradient_only.get_concrete_function(
        tf.zeros([2, 4, 6, 6, 3]), tf.zeros([3, 3, 3, 3, 5]), tf.zeros([180, 7])).graph)
    assert count["by_op"] == {"Conv3D": 58320, "Conv3DBackpropFilterV2": 58320,
                              "MatMul": 3 * 5040}
    assert count["pruned_flops"] == 58320

    @tf.function
    def other(a, b, c, f):
        e = tf.einsum("bij,bjk->bik", a, b)                          # 2*3*5 x 4 = 120 MACs
        m = tf.matmul(a, c, adjoint_a=True)                          # 2*4*5 x 3 = 120 MACs
        # Conv2DTranspose = Conv2DBackpropInput: gradient [1,3,3,4] = 36 x 3*3 x 6 = 1944 MACs
        t = tf.nn.conv2d_transpose(f, tf.zeros([3, 3, 6, 4]), [1, 6, 6, 6], 2)
        n = tf.while_loop(lambda i: i < 3, lambda i: i + 1, [tf.constant(0)])
        return e, m, t, n

    count = bench.dense_flops(other.get_concrete_function(
        tf.zeros([2, 3, 4]), tf.zeros([2, 4, 5]), tf.zeros([2, 3, 5]),
        tf.zeros([1, 3, 3, 4])).graph)
    assert count["by_op"] == {"Einsum": 240, "BatchMatMulV2": 240, "Conv2DBackpropInput": 3888}
    # a loop without dense math is only tallied; one with dense math is reported (not counted)
    assert count["while_loops"] == 0 and count["control_flow_without_dense_math"] == 1

    @tf.function
    def rollout(h, w):
        return tf.while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, tf.matmul(h, w)),
                             [tf.constant(0), h])[1]

    count = bench.dense_flops(rollout.get_concrete_function(tf.zeros([2, 4]),
                                                            tf.zeros([4, 4])).graph)
    assert count["flops"] == 0 and count["while_loops"] == 1


def _limit_table(report):
    start = report.index("| what | precision | dense GFLOP |")
    return report[start:report.index("\n\n", start)].splitlines()


def test_the_report_shows_the_distance_to_the_machines_limit():
    train, sample = bench.plan(["g3an"])
    columns = [{"requested": "auto", "policy": "mixed_bfloat16"},
               {"requested": "float32", "policy": "float32"}]
    peak = {"ok": True, "threads": 2, "onednn": "oneDNN on (set by tfvidgen)", "peaks": [
        {"kind": "matmul", "dtype": "float32", "shape": "[2048, 2048] x [2048, 2048]",
         "ok": True, "flops": 17.18e9, "median": 0.2, "gflops_s": 85.9, "best_gflops_s": 90.0,
         "other_load": 0.05},
        {"kind": "conv3d", "dtype": "float32", "shape": "conv", "ok": True, "flops": 116e9,
         "median": 1.45, "gflops_s": 80.0, "best_gflops_s": 82.0},
        {"kind": "conv3d", "dtype": "bfloat16", "shape": "conv", "ok": False,
         "error": "NotFoundError: no bfloat16 Conv3D kernel"}]}
    counted = {"flops": 400e9, "by_op": {"Conv3D": 300e9, "MatMul": 100e9}, "while_loops": 0,
               "conditionals": 0, "calls": 0, "skipped": []}
    rollout = {"flops": None, "by_op": {}, "while_loops": 1, "conditionals": 0, "calls": 0,
               "skipped": [], "not_counted": "the sampling graph has 1 while loop(s) (a "
                                             "rollout): not counted"}
    results = [
        _result(train, _record(24.0), {"mixed_bfloat16": _record(4.0, flops=counted),
                                       "float32": _record(10.0, flops=counted)}),
        _result(sample, _record(5.0), {"mixed_bfloat16": {"ok": False, "error": "OOM"},
                                       "float32": _record(1.0, flops=rollout)}),
    ]
    report = bench.render_report(_payload(columns, results, peak=peak))
    assert "## Distance to the machine's limit" in report and "2 threads" in report
    assert "| matmul | float32 | [2048, 2048] x [2048, 2048] | 17.2 | 0.200 | 86 (90) | 5% |" in (
        report)
    assert ("| conv3d | bfloat16 | conv | – | failed: NotFoundError: no bfloat16 Conv3D kernel | "
            "– | – |") in report
    assert bench.FLOPS_DEFINITION in report and "at least 70%" in report
    lines = _limit_table(report)
    assert len(lines) == 2 + 4                          # one line per row x precision
    # 400 GFLOP in 10 s = 40 GFLOP/s = 50% of the float32 Conv3D peak (80); no bfloat16 peak
    # 3x the official 24 s: 400 GFLOP in 8 s = 50 GFLOP/s = 62.5% of that peak
    assert f"| {train.label} | float32 | 400.0 | 75% | 10.00 | 40.0 | 50% | 62% |" in lines[3]
    assert (f"| {train.label} | mixed_bfloat16 | 400.0 | 75% | 4.00 | 100.0 | – (no peak) | – |"
            in lines[2])
    assert lines[4].startswith(f"| {sample.label} | mixed_bfloat16 | –") and "failed" in lines[4]
    assert ("| 1.00 | – | – | – | the sampling graph has 1 while loop(s) (a rollout): not "
            "counted |" in lines[5])
    # an earlier run's JSON without a peak or counts still renders
    old = bench.render_report(_payload(columns, [_result(train, _record(24.0), {
        "mixed_bfloat16": _record(4.0), "float32": _record(8.0)})]))
    assert "Not measured in this run" in old and "no FLOP count" in old


def test_tasks_pick_measurements():
    assert [(m.row, m.phase, m.task) for m in bench.plan(["g3an", "twostreamvan"], ["sample"])] == [
        ("g3an", "sample", None), ("twostreamvan", "sample", None)]
    assert [(m.phase, m.task) for m in bench.plan(["g3an", "twostreamvan"], ["train"])] == [
        ("train", None), ("train", "recons"), ("train", "pred"), ("train", "video")]
    assert [(m.row, m.task) for m in bench.plan(["g3an", "twostreamvan"], ["pred", "video"])] == [
        ("twostreamvan", "pred"), ("twostreamvan", "video")]
    assert bench.plan(["g3an"], []) == bench.plan(["g3an"])


def test_the_rows_are_the_official_configurations():
    assert [(m.phase, m.task) for m in bench.plan(["twostreamvan"])] == [
        ("train", "recons"), ("train", "pred"), ("train", "video"), ("sample", None)]
    mvt = bench.tfvidgen_setup("mvt_tsa")
    assert (mvt["model"], mvt["resolution"], mvt["frames"], mvt["batch"],
            mvt["num_classes"]) == ("mvt_tsa", 128, 16, 2, 101)
    assert (mvt["params"]["g_channels"], mvt["params"]["d_channels"],
            mvt["params"]["d_steps"]) == (64, 64, 2)
    assert mvt["train"] == {"g_lr": 5e-5, "d_lr": 2e-4, "beta1": 0.0, "beta2": 0.9}
    tsvan = bench.tfvidgen_setup("twostreamvan")
    assert (tsvan["resolution"], tsvan["frames"], tsvan["batch"], tsvan["num_classes"],
            tsvan["params"]["gf_dim"]) == (64, 10, 16, 10, 16)
    # G3AN: the official code's (2+1)D D_V on our side too (same architecture, same counts)
    assert bench.tfvidgen_setup("g3an")["params"] == {"attention": False,
                                                      "video_discriminator": "2+1"}
    assert bench.tfvidgen_setup("g3an_fsa")["params"] == {"video_discriminator": "2+1"}
    assert all("(2+1)D D_V" in bench.ROWS[key].title for key in ("g3an", "g3an_fsa"))
    tiny = bench.tfvidgen_setup("g3an", {"batch": 2, "params": {"base_channels": 4}})
    assert tiny["batch"] == 2 and tiny["params"] == {
        "attention": False, "video_discriminator": "2+1", "base_channels": 4}


def test_the_tfvidgen_child_measures_a_tiny_configuration():
    overrides = {"resolution": 16, "frames": 4, "batch": 2, "params": TINY_PARAMS["g3an"]}
    done = subprocess.run([sys.executable, TOOL, "--child=g3an/train",
                           "--child_precision=float32", "--warmup=1", "--iters=2",
                           "--threads=2", f"--child_overrides={json.dumps(overrides)}"],
                          cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = done.stdout.splitlines()                 # stdout holds the record only
    record = json.loads(line)
    assert record["side"] == "tfvidgen" and record["precision"] == "float32"
    assert len(record["times"]) == 3 and record["median"] > 0 and record["peak_rss_mib"] > 0
    assert record["batch"] == 2 and record["phases"] and record["params"]["G"] > 0
    assert set(record["params"]) == {"G", "D_image", "D_video"}
    count = record["flops"]
    assert count["flops"] > 0 and count["by_op"]["Conv3DBackpropFilterV2"] > 0, count
    assert count["while_loops"] == 0 and not count["skipped"] and "note" not in count
    assert 0 <= record.get("other_load", 0) <= 1


def test_the_peak_child_times_matmul_and_conv3d():
    done = subprocess.run([sys.executable, TOOL, "--child=peak", "--child_precision=float32",
                           "--warmup=0", "--iters=1", "--threads=2",
                           '--child_overrides={"scale": 0.001}'],
                          cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = done.stdout.splitlines()
    record = json.loads(line)
    assert record["threads"] == 2 and [(p["kind"], p["dtype"]) for p in record["peaks"]] == [
        ("matmul", "float32"), ("conv3d", "float32")]
    matmul, conv = record["peaks"]
    assert matmul["ok"] and matmul["flops"] == 2 * 2 * 2048 * 2048, matmul     # 2 rows
    assert conv["ok"] and conv["flops"] == 2 * 8 * 32 * 32 * 128 * 27 * 128, conv   # batch 1
    assert len(conv["times"]) == 2 and conv["gflops_s"] > 0


@pytest.mark.parametrize("flags,message", [
    (["--references={tmp}/nowhere"], "--references={tmp}/nowhere: no such directory"),
    (["--references={tmp}", "--rows=g3an,stylegan"], "--rows: unknown row 'stylegan'"),
    (["--references={tmp}", "--rows=mvt_tsa"], "--references={tmp}: no tsb-gan/ in it"),
    (["--references={tmp}", "--tasks=train,eval"], "--tasks: unknown 'eval' (known: "
     "train,sample,recons,pred,video"),
    (["--references={tmp}", "--rows=g3an,mvt_tsa", "--tasks=pred"],
     "--tasks=pred: no measurement of --rows=g3an,mvt_tsa"),
    (["--references={refs}", "--rows=g3an", "--torch_python={tmp}/no_python"],
     "--torch_python={tmp}/no_python: not runnable"),
    (["--references={refs}", "--rows=g3an", "--torch_python=" + sys.executable],
     "cannot import torch and numpy"),
])
def test_bad_input_is_one_error_line_and_exit_2_before_measuring(tmp_path, flags, message):
    refs = tmp_path / "refs"
    (refs / "g3an-project").mkdir(parents=True)
    flags = [f.format(tmp=tmp_path, refs=refs) for f in flags]
    done = subprocess.run([sys.executable, TOOL, "--out=" + str(tmp_path / "report.md"), *flags],
                          cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("official_benchmark: error: ") and len(
        done.stderr.strip().splitlines()) == 1, done.stderr
    assert message.format(tmp=tmp_path) in done.stderr
    assert not (tmp_path / "report.md").exists() and not done.stdout


def test_the_report_weighs_twostreamvan_tasks_by_a_training_runs_mix():
    columns = [{"requested": "float32", "policy": "float32"}]
    medians = {"recons": (0.1, 0.05), "pred": (2.0, 0.5), "video": (20.0, 4.0)}
    results = [_result(bench.Measurement("twostreamvan", "train", task), _record(official),
                       {"float32": _record(ours)}) for task, (official, ours) in medians.items()]
    mix = bench.task_mix(0.9)
    assert abs(sum(mix.values()) - 1.0) < 1e-9 and mix["recons"] == 0.6
    assert abs(mix["video"] - 0.36) < 1e-9
    report = bench.render_report(_payload(columns, results))
    official = 0.6 * 0.1 + 0.04 * 2.0 + 0.36 * 20.0
    ours = 0.6 * 0.05 + 0.04 * 0.5 + 0.36 * 4.0
    line = next(x for x in report.splitlines() if "ramp's end" in x)
    assert f"official {official:.2f} s" in line
    assert f"float32 {ours:.2f} s ({official / ours:.2f}x)" in line
    # a failed task leaves the mix out rather than weighing what is there
    results[1]["official"] = {"ok": False, "error": "timeout"}
    assert "ramp's" not in bench.render_report(_payload(columns, results))
