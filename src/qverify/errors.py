"""The one exception family qverify raises for bad input or a failed check.

The CLI turns any QVerifyError into one line on stderr and exit status 2.
"""


class QVerifyError(Exception):
    """Base class: a problem with the user's input, model, data or plan."""


class ArgumentError(QVerifyError):
    """A command-line argument is wrong: a path of the wrong kind, flags that cannot go together."""


class ModelError(QVerifyError):
    """The model cannot be loaded or contains something qverify cannot map."""


class DataError(QVerifyError):
    """Calibration or evaluation data is missing, malformed or non-finite."""


class PlanError(QVerifyError):
    """A plan cannot be built, loaded or used (e.g. a shift outside [0, 31])."""


class NativeBuildError(QVerifyError):
    """The native kernels cannot be built or loaded."""


class KernelFault(QVerifyError):
    """A kernel wrote past a buffer, refused its call or is missing from the build: a failed check (exit 1),
    not bad input. ``op`` names the op."""

    def __init__(self, message: str, op: str):
        super().__init__(message)
        self.op = op
