"""Test configuration: quiet TensorFlow, and the Hypothesis profiles of the property suite.

Hypothesis profiles (tests/test_properties_*.py), chosen with the environment variable
QVERIFY_HYPOTHESIS_PROFILE (default "ci") or Hypothesis's own `--hypothesis-profile NAME`
option (the option wins):

    ci    the default, sized so that all property tests together take a few minutes on
          2 shared cores (the whole suite stays well inside 30 minutes).
    deep  20x the examples, for a nightly run or before a release:
              QVERIFY_HYPOTHESIS_PROFILE=deep pytest tests/test_properties_*.py
    dev   a handful of examples, for editing the tests themselves.

Every profile: no deadline (TensorFlow's first call and a loaded machine are slow, not
wrong), random (not derandomized) generation, and print_blob=True, so a failure prints
its falsifying example (every case is a dataclass whose repr rebuilds it: geometry,
fills and numpy seed) and an `@reproduce_failure(...)` line that replays it exactly.
Failing examples are also saved in the example database .hypothesis/examples at the
repository root (git-ignored, never committed) and replayed first on the next run;
`--hypothesis-seed N` repeats a whole run.

Each property test asks for a share of the profile's max_examples through
strategies.examples(share), so one number per profile scales the whole suite.
"""

import os
from pathlib import Path

from qverify import tensorflow_defaults  # noqa: E402

tensorflow_defaults()  # same float kernels as the CLI, so plans and hashes match it

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.database import DirectoryBasedExampleDatabase  # noqa: E402

PROFILE_ENV = "QVERIFY_HYPOTHESIS_PROFILE"
_DATABASE = DirectoryBasedExampleDatabase(Path(__file__).resolve().parents[1] / ".hypothesis" / "examples")
_COMMON = dict(
    deadline=None,
    derandomize=False,
    print_blob=True,
    database=_DATABASE,
    # Data generation draws a few integers per case (tensors come from a numpy seed), so it is
    # never genuinely slow; on a machine shared with other jobs the wall-clock too_slow check
    # would still fire now and then, so it is off.  data_too_large and filter_too_much stay on.
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", max_examples=100, **_COMMON)
settings.register_profile("deep", max_examples=2000, **_COMMON)
settings.register_profile("dev", max_examples=10, **_COMMON)
settings.load_profile(os.environ.get(PROFILE_ENV, "ci"))
