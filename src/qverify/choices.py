"""Every closed set of choices qverify offers, one enum each.

The values are the words users type (command-line options, `[tool.qverify]` keys) and the strings a
plan stores, so a member compares equal to its value: ``Rounding.ROUND == "round"``. Argument parsers,
the configuration reader and the checks all take their choices from here.

This module imports nothing: ``qverify.build`` runs before qverify is installed and reads it by path.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Rounding(StrEnum):
    """How the firmware builds CMSIS-NN: with ARM_NN_TRUNCATE (floor) or without it (NN_ROUND added)."""

    TRUNCATE = "truncate"
    ROUND = "round"


class Kernels(StrEnum):
    """Which build of the kernels the native engine runs."""

    DSP = "dsp"  # the ARM_MATH_DSP (Cortex-M4/M7) paths, SIMD intrinsics in portable C on the host
    PLAIN = "plain"  # the plain-C paths (Cortex-M0/M3)
    FAST = "fast"  # plain, with conv ops on the host's own SIMD units: fast, not a device path


class CodePath(StrEnum):
    """The code paths a firmware build runs; each kernel contract condition belongs to one or both."""

    DSP = "dsp"
    PLAIN = "plain"


class FormatRule(StrEnum):
    """How frac bits follow from a calibrated range (qverify.qformat)."""

    NOTEBOOK = "notebook"  # int_bits = max(0, ceil(log2 r)): the notebook's rule
    TIGHT = "tight"  # the most frac bits for which neither end saturates


class Cpu(StrEnum):
    """The cores the target engine emulates (their boards and flags: qverify.mcu.toolchain)."""

    CORTEX_M3 = "cortex-m3"
    CORTEX_M4 = "cortex-m4"
    CORTEX_M7 = "cortex-m7"


class Engine(StrEnum):
    """What computes a network's outputs."""

    FLOAT = "float"  # the Keras model's own float arithmetic
    SHIFT = "shift"  # the TensorFlow fixed-point model: the reference
    NATIVE = "native"  # the C kernels built for the host
    TARGET = "target"  # the firmware image on an emulated Cortex-M


class FinalActivation(StrEnum):
    """Where a model's final sigmoid/softmax runs in the plan."""

    FLOAT = "float"  # after the plan, in float (the plan ends at the logits)
    DEVICE = "device"  # on the device, as the plan's last op (arm_nn_activations_direct_q15, arm_softmax_q15)


class Mode(StrEnum):
    """How compare feeds each op."""

    PROPAGATED = "propagated"  # each engine's own previous output
    ISOLATED = "isolated"  # the reference's previous output, naming the first divergent op


BITS = (16,)  # storage widths qverify verifies: q15
# the CMSIS_5 releases whose legacy q15 code the kernel contracts cover (quantize --cmsis-version)
CMSIS_RELEASES = ("5.4.0", "5.5.0", "5.6.0", "5.7.0", "5.8.0", "5.9.0")
# engines an integer plan runs on, compared op by op with the shift model
COMPARED_ENGINES = (Engine.NATIVE, Engine.TARGET)
# engines `eval` runs over a data set
EVAL_ENGINES = (Engine.FLOAT, Engine.SHIFT, Engine.NATIVE)


def values(choice: Iterable[StrEnum]) -> tuple[str, ...]:
    """The words of a choice (an enum) or of some of its members, in order (for argparse choices and messages)."""
    return tuple(member.value for member in choice)
