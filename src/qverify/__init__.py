"""qverify: prove a CMSIS-NN q15 network computes what its fixed-point model says, bit for bit."""

import os

# Before TensorFlow loads: Eigen's float kernels instead of oneDNN's, whose choice depends on the
# CPU's instruction set, so calibration (and so the plan and its hash) is the same on every x86
# machine; it also keeps TensorFlow's start-up chatter off stderr. Set either variable to override.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

__all__ = ["__version__"]
