"""pytest plugin: the gate's checks as ordinary test items, so `pytest` before flashing runs them.

Registered through the `pytest11` entry point and off unless asked for:
`pytest --qverify`, or `pytest = true` in [tool.qverify] (or qverify.toml).

    $ pytest --qverify
    qverify::conv3::bit_exact[shift-native] PASSED
    qverify::fc1::sqnr[shift] PASSED
    qverify::model::accuracy_drop[shift] PASSED

One item per op and check, under a collector node "qverify"; a failed
check fails its item with the check's message and first mismatches, no
traceback. The gate (quantize, build, run the engines) runs once per
session at collection and is cached in .qverify_cache beside the
configuration, so a second run with nothing changed only reads JSON.
`-k` / `-m` select items as usual (every item carries the `qverify` marker);
`-p no:qverify` skips the plugin entirely. A bad configuration or input is
one error line and exit status 4 (pytest's usage error).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from qverify.errors import QVerifyError

MARKER = "qverify"
if TYPE_CHECKING:  # the gate's modules are imported only when the plugin is switched on
    from qverify.config import Config
    from qverify.outcome import GateOutcome

_CONFIG: pytest.StashKey[Config] = pytest.StashKey()
_OUTCOME: pytest.StashKey[GateOutcome] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qverify", "qverify: bit-exact CMSIS-NN gate")
    group.addoption(
        "--qverify",
        action="store_true",
        default=False,
        help="collect the qverify checks configured in [tool.qverify] / qverify.toml "
        "(on without this flag when the configuration says pytest = true)",
    )
    group.addoption(
        "--qverify-config",
        metavar="PATH",
        default=None,
        help="the configuration file (default: the nearest qverify.toml or pyproject.toml with "
        "[tool.qverify] from the invocation directory upwards); implies --qverify",
    )
    group.addoption(
        "--qverify-no-cache",
        action="store_true",
        default=False,
        help="recompute the qverify checks; neither read nor write .qverify_cache",
    )


def _locate(config: pytest.Config, explicit: bool) -> Path | None:
    """--qverify-config, else the nearest configuration from the invocation directory (then rootdir) upwards."""
    from qverify.config import ConfigError, find_config

    given = config.getoption("--qverify-config")
    if given is not None:
        path = Path(given)
        path = path if path.is_absolute() else config.invocation_params.dir / path
        if not path.is_file():
            raise ConfigError(f"--qverify-config {path}: no such file")
        return path
    for start in (config.invocation_params.dir, config.rootpath):
        found = find_config(start)
        if found is not None:
            return found
    if explicit:
        raise ConfigError(
            f"--qverify: no configuration found: looked for qverify.toml, or pyproject.toml with a "
            f"[tool.qverify] table, in {config.invocation_params.dir} and its parents "
            "(an empty [tool.qverify] table gates the demo)"
        )
    return None


def _wanted(config: pytest.Config):
    """The validated Config when the plugin is on, else None.

    On with --qverify / --qverify-config, or with `pytest = true` in the configuration.

    Raises:
        pytest.UsageError: one line naming the file and the key, when the plugin is on and the configuration
            is bad (also when `pytest` itself has a wrong type: the user meant to turn the plugin on).
    """
    from qverify.config import ConfigError, load_config, raw_table

    explicit = bool(config.getoption("--qverify") or config.getoption("--qverify-config"))
    try:
        path = _locate(config, explicit)
    except ConfigError as exc:
        if explicit:
            raise pytest.UsageError(f"qverify: {exc}") from None
        return None  # e.g. an unreadable pyproject.toml above the project: not ours to report
    if path is None:
        return None
    try:
        if not explicit and raw_table(path).get("pytest", False) is False:
            return None
        return load_config(path)
    except ConfigError as exc:
        raise pytest.UsageError(f"qverify: {exc}") from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a check of the qverify gate (per op, or model-level)")
    cfg = _wanted(config)
    if cfg is not None:
        from qverify import tensorflow_defaults

        tensorflow_defaults()
        config.stash[_CONFIG] = cfg


class QVerifyCheckFailed(Exception):
    """A gate check failed (the item shows the check's message and details, no traceback)."""


class QVerifyCollector(pytest.Collector):
    """The node 'qverify' under the session; its items are the gate's checks."""

    def collect(self):  # items are made in pytest_collection_modifyitems, after the gate ran
        return []


class QVerifyItem(pytest.Item):
    """One check: 'conv3::bit_exact[shift-native]', 'model::accuracy_drop[shift]'."""

    def __init__(self, *, check, **kwargs):
        super().__init__(**kwargs)
        self.check = check
        self.add_marker(MARKER)
        self.user_properties.append(("message", check.message))

    def runtest(self) -> None:
        if not self.check.passed:
            raise QVerifyCheckFailed(self.check.message)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, QVerifyCheckFailed):
            c = self.check
            return f"{c.message}\n{c.details}".rstrip()
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"qverify::{self.name}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    cfg = config.stash.get(_CONFIG, None)
    if cfg is None:
        return
    from qverify.gate import run_gate
    from qverify.outcome import check_id

    try:
        outcome = run_gate(cfg, use_cache=not config.getoption("--qverify-no-cache"))
    except QVerifyError as exc:
        raise pytest.UsageError(f"qverify: {exc}") from None
    config.stash[_OUTCOME] = outcome
    source = Path(cfg.source.split(" [")[0])
    parent = QVerifyCollector.from_parent(session, name="qverify", path=source, nodeid="qverify")
    new: list[pytest.Item | pytest.Collector] = [
        QVerifyItem.from_parent(parent, name=check_id(c), check=c) for c in outcome.checks
    ]
    # reported like any collected node, so "collected N items" and -k/-m's "N selected" count them
    config.hook.pytest_collectstart(collector=parent)
    config.hook.pytest_collectreport(report=pytest.CollectReport(parent.nodeid, "passed", None, new))
    items.extend(new)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    cfg = config.stash.get(_CONFIG, None)
    if cfg is None:
        return None
    return [f"qverify: {cfg.source}"]


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    outcome = config.stash.get(_OUTCOME, None)
    if outcome is None:
        return
    state = "from the cache" if outcome.cached else f"computed in {outcome.wall_seconds:.1f} s"
    terminalreporter.write_line(
        f"qverify: plan {outcome.plan_hash[:16]}, {len(outcome.checks)} checks on "
        f"{outcome.samples} sample(s) of {outcome.data_name} ({state})"
    )
