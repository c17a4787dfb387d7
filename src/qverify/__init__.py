"""qverify: prove a CMSIS-NN q15 network computes what its fixed-point model says, bit for bit."""

__version__ = "0.1.0"

__all__ = ["__version__", "tensorflow_defaults"]


def tensorflow_defaults() -> None:
    """Environment for TensorFlow, set before it loads (the CLI and the active pytest plugin call this).

    Eigen's float kernels instead of oneDNN's, whose choice depends on the CPU's instruction
    set, so calibration (and so the plan and its hash) is the same on every x86 machine; and
    TensorFlow's start-up chatter off stderr. A variable already set is left alone; once
    TensorFlow is imported these have no effect. Library users call this first themselves.
    And glibc's malloc keeps large freed blocks for the next batch (qverify.allocator).
    """
    import os

    from qverify.allocator import keep_large_blocks

    keep_large_blocks()

    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
