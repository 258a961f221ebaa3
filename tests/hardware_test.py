"""oneDNN on by default on x86, TensorFlow's C++ start-up log quiet by default, `auto` precision
from the hardware, the start-up line."""

import os
import platform
import re
import subprocess
import sys

from tfvidgen import hardware

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AVX2 = hardware.CpuInfo("AMD EPYC (test)", 2, frozenset({"avx", "avx2", "fma"}))
AVX512_BF16 = hardware.CpuInfo("AMD EPYC 9004 (test)", 2,
                               frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}))
AMX = hardware.CpuInfo("Intel Xeon (test)", 2, frozenset({"avx2", "avx512f", "amx_bf16"}))


# What a user's command prints while TensorFlow starts: the oneDNN state, TensorFlow's C++ log
# level and whether a GPU was looked for (on a machine without a driver: CUDA's cuInit error).
_START_UP = ("import os, tfvidgen.train\n"
             "import tensorflow as tf\n"
             "from tensorflow.python.util import _pywrap_util_port as port\n"
             "tf.config.list_physical_devices()\n"
             "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), port.IsMklEnabled(),\n"
             "      os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
_CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ", re.M)


def _start_up_in_fresh_processes(*env_changes) -> list:
    """(stdout words, stderr) of _START_UP in one fresh process per dict of `env_changes` (run
    at once: each is a TensorFlow start-up), none of the user's oneDNN or log-level choices."""
    base = {k: v for k, v in os.environ.items()
            if k not in (hardware.ONEDNN_VAR, hardware.LOG_LEVEL_VAR)}
    procs = [subprocess.Popen([sys.executable, "-c", _START_UP], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO,
                              env={**base, **changes, "PYTHONPATH": REPO})
             for changes in env_changes]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        results.append((out.split(), err))
    return results


def test_start_up_turns_onednn_on_and_tensorflow_quiet_unless_the_user_chose():
    default, onednn_off, verbose = _start_up_in_fresh_processes(
        {}, {hardware.ONEDNN_VAR: "0"}, {hardware.LOG_LEVEL_VAR: "0"})
    words, err = default
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert words[:2] == ["1", "True"]
    # Quiet by default: no C++ log line, not even absl's pre-initialisation ones or cuInit's.
    assert words[2] in ("2", "3")
    assert not _CPP_LOG_LINE.search(err) and "cuInit" not in err, err[-2000:]
    assert "absl::InitializeLog" not in err, err[-2000:]
    assert onednn_off[0][:2] == ["0", "False"]
    # The user's level wins: 0 shows TensorFlow's start-up lines again.
    words, err = verbose
    assert words[2] == "0" and _CPP_LOG_LINE.search(err), err[-2000:]


def test_the_default_log_level_hides_cpp_errors_only_without_a_gpu_driver(tmp_path, monkeypatch):
    monkeypatch.delenv(hardware.LOG_LEVEL_VAR, raising=False)
    assert hardware.default_log_level(driver_files=(str(tmp_path / "absent"),)) == "3"
    monkeypatch.delenv(hardware.LOG_LEVEL_VAR)
    (tmp_path / "nvidiactl").write_text("")
    assert hardware.default_log_level(driver_files=(str(tmp_path / "nvidiactl"),)) == "2"
    monkeypatch.setenv(hardware.LOG_LEVEL_VAR, "1")
    assert hardware.default_log_level(driver_files=(str(tmp_path / "absent"),)) == "1"


def test_the_import_filter_applies_the_level_to_each_cpp_line():
    info = b"I0000 00:00:1796515367.155594    2573 port.cc:153] oneDNN custom operations are on.\n"
    error = b"E1206 00:01:02.840863   27769 cuda_platform.cc:52] failed call to cuInit\n"
    notice = b"WARNING: All log messages before absl::InitializeLog() is called are written\n"
    python = b"UserWarning: something tfvidgen or Python printed\n"
    keeps = {level: [hardware.keeps_cpp_log_line(line, level)
                     for line in (info, error, notice, python)] for level in (0, 1, 2, 3)}
    assert keeps == {0: [True, True, True, True], 1: [False, True, False, True],
                     2: [False, True, False, True], 3: [False, False, False, True]}


def test_auto_is_bfloat16_only_where_the_hardware_computes_it():
    assert hardware.resolve_precision("auto", AVX2, []) == "float32"
    assert hardware.resolve_precision("auto", AVX512_BF16, []) == "mixed_bfloat16"
    assert hardware.resolve_precision("auto", AMX, []) == "mixed_bfloat16"
    ampere, turing = ("GPU", "A100", (8, 0)), ("GPU", "T4", (7, 5))
    assert hardware.resolve_precision("auto", AVX2, [ampere]) == "mixed_bfloat16"
    assert hardware.resolve_precision("auto", AMX, [turing]) == "float32"       # the GPU decides
    assert hardware.resolve_precision("auto", AVX2, [ampere, turing]) == "float32"
    assert hardware.resolve_precision("auto", AVX2, [("TPU", "TPU:0", None)]) == "mixed_bfloat16"


def test_explicit_values_pass_through_and_emulated_bfloat16_warns():
    for cpu in (AVX2, AMX):
        for value in ("float32", "mixed_bfloat16"):
            assert hardware.resolve_precision(value, cpu, []) == value
    warning = hardware.emulated_bfloat16_warning("mixed_bfloat16", AVX2, [])
    assert "emulated" in warning and "--mixed_precision=auto" in warning
    assert hardware.emulated_bfloat16_warning("mixed_bfloat16", AMX, []) is None
    assert hardware.emulated_bfloat16_warning("float32", AVX2, []) is None


def test_start_up_line_names_the_cpu_its_features_and_the_choice():
    line = hardware.describe("auto", "float32", AVX2, [])
    assert "AMD EPYC (test)" in line and "avx2" in line and "float32 (auto)" in line
    assert "oneDNN" in line
    line = hardware.describe("mixed_bfloat16", "mixed_bfloat16", AMX, [])
    assert "amx_bf16" in line and "mixed_bfloat16 (requested)" in line
    logged = []
    assert hardware.choose_precision("float32", log=logged.append) == "float32"
    assert len(logged) == 1 and "float32 (requested)" in logged[0]


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 amx_bf16\n\n"
                    "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 amx_bf16\n")
    cpu = hardware.cpu_info(str(path))
    assert cpu.model == "Test CPU 9000" and cpu.native_bfloat16 and "avx2" in cpu.flags
    assert not hardware.cpu_info(str(tmp_path / "missing")).native_bfloat16


def test_a_onednn_isa_cap_below_bfloat16_makes_auto_pick_float32(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("model name\t: Test CPU 9000\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    for cap, native in (("AVX2", False), ("avx512_core_vnni", False), ("AVX512_CORE_BF16", True),
                        ("AVX512_CORE_AMX", True), ("ALL", True)):
        cpu = hardware.cpu_info(str(path), environ={"ONEDNN_MAX_CPU_ISA": cap})
        assert cpu.isa_cap == cap.upper() and cpu.native_bfloat16 is native, cap
        assert hardware.resolve_precision("auto", cpu, []) == (
            "mixed_bfloat16" if native else "float32")
    capped = hardware.cpu_info(str(path), environ={"DNNL_MAX_CPU_ISA": "AVX2"})
    assert not capped.native_bfloat16 and "oneDNN capped at AVX2" in capped.reported_flags()
    assert "oneDNN capped" in hardware.emulated_bfloat16_warning("mixed_bfloat16", capped, [])
    uncapped = hardware.cpu_info(str(path), environ={})
    assert uncapped.isa_cap is None and uncapped.native_bfloat16
    assert "capped" not in uncapped.reported_flags()
