"""tfvidgen: disentangled video-generation GANs in TensorFlow 2 / Keras 3.

Importing the package does one thing before TensorFlow can load: it turns TensorFlow's oneDNN
kernels on for x86 CPUs unless the user set TF_ENABLE_ONEDNN_OPTS (see hardware.py for why).
"""

from tfvidgen import hardware as _hardware

_hardware.default_onednn()

__version__ = "0.1.0"
__all__ = ["__version__"]
