"""Errors of the target (cross-compile + QEMU) verification."""

from __future__ import annotations

from qverify.errors import QVerifyError


class TargetError(QVerifyError):
    """The target image cannot be built or run."""


class ToolchainError(TargetError):
    """A program the target build needs is not installed (the message names it and the install command)."""

    def __init__(self, message: str, program: str):
        super().__init__(message)
        self.program = program


class TargetBuildError(TargetError):
    """Cross-compiling or linking the image failed (the message carries the compiler's output)."""


class TargetRunError(TargetError):
    """The emulated firmware hung, crashed or reported an error.

    Attributes:
        kind: 'timeout', 'fault', 'error' (a kernel or validation status) or 'exit'.
        op: name of the op that was running (None if no op had started).
        op_index: its index in the plan, or None.
        sample: the sample index within the batch (None if unknown).
    """

    def __init__(
        self, message: str, kind: str, op: str | None = None, op_index: int | None = None, sample: int | None = None
    ):
        super().__init__(message)
        self.kind = kind
        self.op = op
        self.op_index = op_index
        self.sample = sample
