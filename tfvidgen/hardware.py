"""What this machine computes fast: oneDNN by default on x86, and the `auto` precision policy;
and how much of TensorFlow's C++ start-up log it shows.

Why oneDNN: TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512
VNNI/BF16/AMX; elsewhere (e.g. AVX2-only AMD EPYC) its Eigen fallback ran G3AN's training step
~24x slower (measured on TF 2.21: 6 s vs 0.25 s per quickstart step). The switch is read when
TensorFlow loads, so `tfvidgen/__init__.py` calls `default_onednn()` before anything imports
TensorFlow; a value the user set always wins.

Why `auto`: bfloat16 is native only on x86 CPUs with avx512_bf16/amx_bf16, NVIDIA GPUs of
compute capability >= 8.0 and TPUs; elsewhere it is emulated (~35-40x slower than float32 on an
AVX2 CPU). A cap on oneDNN's instruction set (ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA, e.g.
AVX2, to run as an AVX2-only CPU would) below AVX512_CORE_BF16 counts as no native bfloat16:
oneDNN then computes bfloat16 without the instructions. float16 is not chosen by `auto`: the
models have not been validated with loss scaling in it, so pre-Ampere GPUs get float32 (explicit
`mixed_float16` is not offered either).

Why a default TF_CPP_MIN_LOG_LEVEL: TensorFlow's C++ side prints INFO lines on every start-up
(oneDNN, CPU instructions, "Could not find cuda drivers") and, with the CUDA-enabled
`tensorflow` package on a machine without an NVIDIA driver, an ERROR `failed call to cuInit`
that means only "no GPU here". By default tfvidgen hides C++ INFO and WARNING lines (level 2)
and, on a machine without an NVIDIA driver, C++ ERROR lines too (level 3): there they are that
start-up noise, and real failures still reach the user as Python exceptions. absl prints the
lines TensorFlow logs while it loads whatever the level, so the first `import tensorflow` runs
with stderr filtered by the level (filter_tensorflow_import_log). Python-side warnings and
tfvidgen's own lines are untouched. A value the user set always wins: TF_CPP_MIN_LOG_LEVEL=0
shows everything again.

This module does not import TensorFlow at import time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.abc
import importlib.util
import os
import platform
import re
import sys
import threading

__all__ = ["default_onednn", "default_log_level", "filter_tensorflow_import_log",
           "keeps_cpp_log_line", "onednn_enabled", "onednn_state", "CpuInfo",
           "cpu_info", "isa_cap", "resolve_precision", "describe", "choose_precision",
           "emulated_bfloat16_warning", "BF16_CPU_FLAGS", "ISA_CAP_VARS", "ONEDNN_VAR",
           "LOG_LEVEL_VAR"]

ONEDNN_VAR = "TF_ENABLE_ONEDNN_OPTS"
LOG_LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"
#: files present where an NVIDIA driver is (Linux, containers given a GPU, WSL2)
_NVIDIA_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg")
#: /proc/cpuinfo flags of x86 CPUs that compute bfloat16 natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: environment variables that cap oneDNN's instruction set (oneDNN reads the first one set)
ISA_CAP_VARS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
#: words in oneDNN ISA names (upper case) whose ISA computes bfloat16 natively; ALL = no cap
_BF16_ISA_WORDS = ("BF16", "AMX", "FP16", "AVX10", "ALL")
#: flags worth naming in a start-up line or a benchmark header.
_REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16",
                   "amx_tile", "asimd", "bf16")
_X86 = ("x86_64", "amd64", "i386", "i686")

# What default_onednn() did: "set" (we turned it on), "user" (left the user's value), "late"
# (TensorFlow was already loaded), "not_x86".
_onednn_action = "unset"


def default_onednn() -> str:
    """Sets TF_ENABLE_ONEDNN_OPTS=1 on x86 unless the user set it or TensorFlow is loaded."""
    global _onednn_action
    if ONEDNN_VAR in os.environ:
        _onednn_action = "user"
    elif platform.machine().lower() not in _X86:
        _onednn_action = "not_x86"
    elif "tensorflow" in sys.modules:
        _onednn_action = "late"
    else:
        os.environ[ONEDNN_VAR] = "1"
        _onednn_action = "set"
    return _onednn_action


def default_log_level(driver_files=_NVIDIA_DRIVER_FILES) -> str:
    """Sets TF_CPP_MIN_LOG_LEVEL unless the user set it (see the module docstring): "2" where an
    NVIDIA driver is present, "3" where none is. Returns the value in effect."""
    if LOG_LEVEL_VAR not in os.environ:
        has_driver = any(os.path.exists(path) for path in driver_files)
        os.environ[LOG_LEVEL_VAR] = "2" if has_driver else "3"
    return os.environ[LOG_LEVEL_VAR]


# A C++ log line: severity, MMDD, time (before absl is set up: 00:00:<epoch seconds>), thread,
# file:line]; absl's format, TensorFlow's.
_CPP_LOG_LINE = re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ")
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}
_ABSL_PRE_INIT_NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called"


def keeps_cpp_log_line(line: bytes, level: int) -> bool:
    """Whether TF_CPP_MIN_LOG_LEVEL=`level` lets this stderr line through (non-log lines pass)."""
    if line.startswith(_ABSL_PRE_INIT_NOTICE):
        return level < 1
    found = _CPP_LOG_LINE.match(line)
    return not found or _SEVERITY[found.group(1)] >= min(level, 3)


def filter_tensorflow_import_log() -> None:
    """Makes TF_CPP_MIN_LOG_LEVEL hold for the lines `import tensorflow` prints too.

    The C++ libraries log a few lines while TensorFlow loads, before absl's logging is set up
    ("oneDNN custom operations are on", "Could not find cuda drivers"); absl prints those
    whatever the level. While the first `import tensorflow` runs (wherever it happens), stderr
    goes through a filter that drops the lines below the level; the filter is gone afterwards.
    """
    if "tensorflow" in sys.modules or any(isinstance(f, _FilteredTensorflowImport)
                                          for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _FilteredTensorflowImport())


class _FilteredTensorflowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, like the import system would, and runs its module code with
    stderr filtered by keeps_cpp_log_line."""

    def find_spec(self, fullname, path, target=None):
        del path, target
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader, run = spec.loader, spec.loader.exec_module

        def exec_module(module):
            del loader.exec_module            # this once; the loader's own method again
            try:
                level = int(os.environ.get(LOG_LEVEL_VAR, "0"))
            except ValueError:
                level = 0                     # not a number: filter nothing
            if level <= 0:
                return run(module)
            with _filtered_stderr(lambda line: keeps_cpp_log_line(line, level)):
                run(module)

        loader.exec_module = exec_module
        return spec


@contextlib.contextmanager
def _filtered_stderr(keep):
    """File descriptor 2 (C++ writes to it directly) passes through `keep` line by line, live,
    so a crash's last words still reach the terminal."""
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError, AttributeError):    # no stderr at all: nothing to filter
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if keep(line):
                    try:
                        os.write(original, line)
                    except OSError:           # stderr itself went away: nothing to print to
                        return

    pumping = threading.Thread(target=pump, name="tfvidgen-stderr-filter", daemon=True)
    pumping.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)                  # closes the pipe's write end: the pump ends
        pumping.join(timeout=10)
        os.close(original)


def onednn_enabled() -> bool | None:
    """Whether the loaded TensorFlow runs oneDNN kernels (None before TensorFlow is imported)."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):      # private API: absent in some builds
        return None


def onednn_state() -> str:
    """One phrase: whether oneDNN is on and who decided it."""
    value = os.environ.get(ONEDNN_VAR)
    enabled = onednn_enabled()
    if enabled is None:
        enabled = value is not None and value.strip().lower() in ("1", "true", "yes", "on")
    state = "on" if enabled else "off"
    if _onednn_action == "set":
        return f"oneDNN {state} (set by tfvidgen; {ONEDNN_VAR}=0 turns it off)"
    if _onednn_action == "late":
        return (f"oneDNN {state} (TensorFlow's default: it was imported before tfvidgen; set "
                f"{ONEDNN_VAR}=1 before importing it)")
    if value is None:
        return f"oneDNN {state} (TensorFlow's default)"
    return f"oneDNN {state} ({ONEDNN_VAR}={value} set by the user)"


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    model: str
    cores: int
    flags: frozenset
    isa_cap: str | None = None     # oneDNN's ISA cap (ISA_CAP_VARS), upper case; None: no cap

    @property
    def native_bfloat16(self) -> bool:
        if self.isa_cap is not None and not any(w in self.isa_cap for w in _BF16_ISA_WORDS):
            return False
        return any(f in self.flags for f in BF16_CPU_FLAGS)

    def reported_flags(self) -> str:
        present = [f for f in _REPORTED_FLAGS if f in self.flags]
        text = " ".join(present) or "none of " + " ".join(_REPORTED_FLAGS)
        return text + (f" (oneDNN capped at {self.isa_cap})" if self.isa_cap else "")


def isa_cap(environ=None) -> str | None:
    """oneDNN's instruction-set cap from the environment (upper case), or None."""
    environ = os.environ if environ is None else environ
    for var in ISA_CAP_VARS:
        if environ.get(var, "").strip():
            return environ[var].strip().upper()
    return None


def cpu_info(cpuinfo_path: str = "/proc/cpuinfo", environ=None) -> CpuInfo:
    """CPU model, logical core count and feature flags (Linux /proc/cpuinfo; else platform), and
    oneDNN's instruction-set cap from `environ` (default: this process's environment)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open(cpuinfo_path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "cpu model") and value.strip():
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return CpuInfo(model=model, cores=os.cpu_count() or 1, flags=frozenset(flags),
                   isa_cap=isa_cap(environ))


def _accelerators() -> list[tuple[str, str, object]]:
    """[(kind, name, detail)] for visible GPUs (detail = compute capability) and TPUs."""
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        found.append(("GPU", details.get("device_name", gpu.name),
                      details.get("compute_capability")))
    # Physical, not logical, devices: listing logical ones initialises TensorFlow's context,
    # after which MultiWorkerMirroredStrategy can no longer be created.
    found += [("TPU", d.name, None) for d in tf.config.list_physical_devices("TPU")]
    return found


def resolve_precision(requested: str, cpu: CpuInfo | None = None,
                      accelerators: list | None = None) -> str:
    """`auto` -> mixed_bfloat16 where bfloat16 is native (see module docstring), else float32.

    Explicit values pass through unchanged. `cpu` and `accelerators` default to this machine's.
    """
    if requested != "auto":
        return requested
    accelerators = _accelerators() if accelerators is None else accelerators
    if accelerators:
        # Mixed precision runs every accelerator alike: bfloat16 only if all of them have it.
        native = all(kind == "TPU" or (capability is not None and tuple(capability) >= (8, 0))
                     for kind, _, capability in accelerators)
        return "mixed_bfloat16" if native else "float32"
    cpu = cpu or cpu_info()
    return "mixed_bfloat16" if cpu.native_bfloat16 else "float32"


def emulated_bfloat16_warning(policy: str, cpu: CpuInfo | None = None,
                              accelerators: list | None = None) -> str | None:
    """A warning when mixed_bfloat16 was asked for on hardware that only emulates bfloat16."""
    if policy != "mixed_bfloat16" or resolve_precision("auto", cpu, accelerators) == policy:
        return None
    return ("warning: --mixed_precision=mixed_bfloat16 on hardware without native bfloat16 "
            "(no avx512_bf16/amx_bf16 CPU flag or oneDNN capped below it, no GPU of compute "
            "capability >= 8.0): it is emulated and expected to run ~35-40x slower than "
            "float32. Use --mixed_precision=auto (or float32).")


def choose_precision(requested: str, log=None) -> str:
    """Resolves `requested` for this machine and prints the start-up line (plus the emulated
    bfloat16 warning where it applies). Returns the Keras policy name; does not set it."""
    log = log or (lambda message: print(message, flush=True))
    policy = resolve_precision(requested)
    log(describe(requested, policy))
    warning = emulated_bfloat16_warning(policy)
    if warning:
        log(warning)
    return policy


def describe(requested: str, policy: str, cpu: CpuInfo | None = None,
             accelerators: list | None = None) -> str:
    """The start-up line: device, its relevant features, oneDNN state and the chosen policy."""
    accelerators = _accelerators() if accelerators is None else accelerators
    cpu = cpu or cpu_info()
    if accelerators:
        device = ", ".join(f"{kind} {name}" + (f" (compute capability "
                                                f"{'.'.join(map(str, cap))})" if cap else "")
                           for kind, name, cap in accelerators)
    else:
        device = f"CPU {cpu.model}, {cpu.cores} cores, flags: {cpu.reported_flags()}"
    chosen = f"{policy} (auto)" if requested == "auto" else f"{policy} (requested)"
    return f"hardware: {device}; {onednn_state()}; precision {chosen}"
