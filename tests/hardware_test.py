"""oneDNN on by default on x86, `auto` precision from the hardware, the start-up line."""

import os
import platform
import subprocess
import sys

from tfvidgen import hardware

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AVX2 = hardware.CpuInfo("AMD EPYC (test)", 2, frozenset({"avx", "avx2", "fma"}))
AVX512_BF16 = hardware.CpuInfo("AMD EPYC 9004 (test)", 2,
                               frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}))
AMX = hardware.CpuInfo("Intel Xeon (test)", 2, frozenset({"avx2", "avx512f", "amx_bf16"}))


def _onednn_in_fresh_process(**env_changes):
    env = {k: v for k, v in os.environ.items() if k != hardware.ONEDNN_VAR}
    env.update(env_changes, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    code = ("import tfvidgen.train, os\n"
            "from tensorflow.python.util import _pywrap_util_port as port\n"
            "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), port.IsMklEnabled())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


def test_importing_the_entry_point_turns_onednn_on_unless_the_user_chose():
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert _onednn_in_fresh_process() == ["1", "True"]
    assert _onednn_in_fresh_process(TF_ENABLE_ONEDNN_OPTS="0") == ["0", "False"]


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
