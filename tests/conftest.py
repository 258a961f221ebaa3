"""Test-wide setup: two logical CPU devices before TensorFlow initialises (so any test can run a
real 2-replica MirroredStrategy), quiet logs, and the repo root on sys.path for tools/."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import tensorflow as tf  # noqa: E402

from tfvidgen import distribute  # noqa: E402

distribute.split_cpu(2)
