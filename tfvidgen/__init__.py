"""tfvidgen: disentangled video-generation GANs in TensorFlow 2 / Keras 3.

Importing the package does two things before TensorFlow can load (see hardware.py for why):
it turns TensorFlow's oneDNN kernels on for x86 CPUs unless the user set TF_ENABLE_ONEDNN_OPTS,
and it hides TensorFlow's C++ start-up log lines (INFO and WARNING; ERROR too on a machine
without an NVIDIA driver, where the only one is CUDA's "failed call to cuInit") unless the user
set TF_CPP_MIN_LOG_LEVEL (0 shows them all).
"""

import os as _os

from tfvidgen import hardware as _hardware

_hardware.default_onednn()
_hardware.default_log_level()
_hardware.filter_tensorflow_import_log()

__version__ = "0.1.0"
__all__ = ["__version__", "child_env"]


def child_env(**extra) -> dict:
    """The environment of a subprocess that runs this tfvidgen checkout (`python -m
    tfvidgen.train ...`, a tool): this process's, with the checkout first on PYTHONPATH, plus
    `extra`."""
    root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    path = _os.pathsep.join(filter(None, [root, _os.environ.get("PYTHONPATH")]))
    return {**_os.environ, "PYTHONPATH": path, **extra}
