"""What a plan costs on the device: MACs, flash for weights and biases, RAM for activations.

    fp = footprint(plan)
    fp.total_macs, fp.flash_bytes, fp.runner_ram_bytes
    for row in fp.ops: row.name, row.macs, row.weight_bytes, row.output_bytes, ...

Sizes are what the C side allocates: every value is a q15 `int16_t` (2
bytes); conv weights are [c_out][k_h][k_w][c_in], dense weights [out][in],
one bias per output channel. The runner (csrc/qv_runner.c) runs the network
in one scratch block: two ping-pong activation buffers, each as large as the
largest activation (network input included), plus one kernel buffer (conv
im2col bufferA = 2·c_in·k_h·k_w values, dense vec_buffer = input length);
each region is rounded up to an even number of values (4-byte alignment).
`runner_scratch_words` mirrors the runner's qv_scratch_words() exactly (a
test checks the two against each other), so a firmware build can compare its
`arm-none-eabi-size` figures and its scratch array against these numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from qverify.kernels import GUARD_WORDS
from qverify.opkinds import KINDS, elems
from qverify.plan import QuantPlan


@dataclass(frozen=True)
class OpFootprint:
    """One op's cost.

    Attributes:
        name, kind: the op.
        macs: multiply-accumulates per inference (conv, dense; 0 otherwise).
        weight_bytes, bias_bytes: constant data in flash.
        input_bytes, output_bytes: the op's input and output activations.
        kernel_buffer_bytes: scratch the kernel itself needs (conv bufferA, dense vec_buffer).
    """

    name: str
    kind: str
    macs: int
    weight_bytes: int
    bias_bytes: int
    input_bytes: int
    output_bytes: int
    kernel_buffer_bytes: int

    @property
    def flash_bytes(self) -> int:
        return self.weight_bytes + self.bias_bytes

    @property
    def working_set_bytes(self) -> int:
        """Input + output + kernel buffer: the RAM this op alone needs while it runs."""
        return self.input_bytes + self.output_bytes + self.kernel_buffer_bytes


@dataclass(frozen=True)
class Footprint:
    """Per-op rows and network totals.

    Attributes:
        ops: one OpFootprint per op, in execution order.
        value_bytes: bytes per stored value (2 for q15).
        input_bytes: the network input buffer (held by the caller, not part of the runner's scratch).
        activation_buffer_bytes: one of the runner's two ping-pong activation buffers.
        kernel_buffer_bytes: the runner's shared kernel buffer.
        runner_scratch_words: qv_scratch_words() of the plan (int16 words).
    """

    ops: tuple[OpFootprint, ...]
    value_bytes: int
    input_bytes: int
    activation_buffer_bytes: int
    kernel_buffer_bytes: int
    runner_scratch_words: int

    @property
    def total_macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def weight_bytes(self) -> int:
        return sum(op.weight_bytes for op in self.ops)

    @property
    def bias_bytes(self) -> int:
        return sum(op.bias_bytes for op in self.ops)

    @property
    def flash_bytes(self) -> int:
        """Weights + biases: the constant data the network puts in flash."""
        return self.weight_bytes + self.bias_bytes

    @property
    def runner_ram_bytes(self) -> int:
        """Peak RAM of the runner's buffer plan: its whole scratch block (it never allocates more)."""
        return self.runner_scratch_words * self.value_bytes

    @property
    def runner_ram_with_input_bytes(self) -> int:
        return self.runner_ram_bytes + self.input_bytes

    @property
    def largest_activation_bytes(self) -> int:
        return max([self.input_bytes] + [op.output_bytes for op in self.ops])

    @property
    def min_working_set_bytes(self) -> int:
        """The largest single-op working set: what an ideal buffer planner would still need."""
        return max(op.working_set_bytes for op in self.ops)

    def to_dict(self) -> dict:
        d = {
            "value_bytes": self.value_bytes,
            "ops": [
                dict(asdict(op), flash_bytes=op.flash_bytes, working_set_bytes=op.working_set_bytes) for op in self.ops
            ],
            "input_bytes": self.input_bytes,
            "activation_buffer_bytes": self.activation_buffer_bytes,
            "kernel_buffer_bytes": self.kernel_buffer_bytes,
            "runner_scratch_words": self.runner_scratch_words,
        }
        d["totals"] = {
            "macs": self.total_macs,
            "weight_bytes": self.weight_bytes,
            "bias_bytes": self.bias_bytes,
            "flash_bytes": self.flash_bytes,
            "runner_ram_bytes": self.runner_ram_bytes,
            "runner_ram_with_input_bytes": self.runner_ram_with_input_bytes,
            "largest_activation_bytes": self.largest_activation_bytes,
            "min_working_set_bytes": self.min_working_set_bytes,
        }
        return d


def _even(words: int) -> int:
    return (words + 1) & ~1


def runner_scratch_layout(ops) -> tuple[int, int]:
    """(words per activation buffer, words of kernel buffer) for running ops in one qv_run call,
    as qv_scratch_layout() in qv_runner.c lays out its scratch."""
    act = max(max(elems(op.in_shape), elems(op.out_shape)) for op in ops)
    buf = max(KINDS[op.kind].kernel_buffer(op) for op in ops)
    return _even(act), _even(buf)


def runner_scratch_words(ops) -> int:
    """int16 words of scratch one qv_run call over ops needs (= qv_scratch_words(ops, len(ops)))."""
    act, buf = runner_scratch_layout(ops)
    return 2 * act + buf + 4 * GUARD_WORDS  # guard words around the three regions (qv_runner.h)


def footprint(plan: QuantPlan) -> Footprint:
    """Per-op MACs, flash and RAM of a plan, and the runner's peak RAM.

    Args:
        plan: the plan (its shapes, kinds and integer weights).

    Returns:
        The Footprint.
    """
    vb = plan.bits // 8
    rows = []
    for op in plan.ops:
        kind = KINDS[op.kind]
        rows.append(
            OpFootprint(
                name=op.name,
                kind=op.kind,
                macs=kind.macs(op),
                weight_bytes=op.weight_bits * kind.weight_count(op) // 8,
                bias_bytes=op.weight_bits * op.out_shape[2] // 8 if kind.weighted else 0,
                input_bytes=vb * elems(op.in_shape),
                output_bytes=vb * elems(op.out_shape),
                kernel_buffer_bytes=vb * kind.kernel_buffer(op),
            )
        )
    act, buf = runner_scratch_layout(plan.ops)
    return Footprint(tuple(rows), vb, vb * elems(plan.input_shape), vb * act, vb * buf, runner_scratch_words(plan.ops))


__all__ = ["Footprint", "OpFootprint", "footprint", "runner_scratch_layout", "runner_scratch_words"]
