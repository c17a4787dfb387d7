"""The gate's disk cache: <config dir>/.qverify_cache/<key>/, one entry per computed GateOutcome.

An entry holds the plan, the checks as JSON and sample 0's shift outputs
(for sample_input_output.h). The key is a sha256 over the configuration's
effective values, the contents of the model / weights / data / labels
files, qverify's version and sources, the C kernels' source digest (and
the target firmware's, for the target engine) and the TensorFlow / Keras /
numpy versions. A hit only reads files: no TensorFlow, no engine. The
newest CACHE_KEEP entries are kept.

gate.run_gate reads (load) and writes (store) it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from qverify import __version__
from qverify.config import Config, ConfigError
from qverify.fs import prune_lru
from qverify.outcome import Check, GateOutcome
from qverify.plan import QuantPlan

CACHE_DIR = ".qverify_cache"
CACHE_KEEP = 8  # newest entries kept per configuration folder
CACHE_FORMAT = 1
_PACKAGE = Path(__file__).resolve().parent


def cache_root(cfg: Config) -> Path:
    """<config dir>/.qverify_cache."""
    return Path(cfg.root) / CACHE_DIR


def _digest_path(h, path: Path) -> None:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")


# presentation only: editing these never changes a check
_NOT_COMPUTING = {"reports", "commands", "cli.py", "__main__.py", "pytest_plugin.py", "tables.py", "__pycache__"}


def _package_digest() -> str:
    """qverify's own sources that compute (shift model, calibration, plan rules, demo model and data, checks)."""
    h = hashlib.sha256()
    for f in sorted(_PACKAGE.rglob("*")):
        rel = f.relative_to(_PACKAGE)
        if f.is_file() and f.suffix in (".py", ".keras", ".json") and not _NOT_COMPUTING & set(rel.parts):
            h.update(rel.as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _model_sources(cfg: Config) -> list[Path]:
    """Files the model comes from: the saved model, or the factory's module (its package folder)."""
    if cfg.model is None:
        return []  # the demo: in the package digest
    if Path(cfg.model).exists():
        return [Path(cfg.model)]
    module, _, _ = cfg.model.rpartition(":")
    if module.endswith(".py"):
        return [Path(module)]
    rel = Path(*module.split("."))
    for cand in (Path(cfg.root) / rel.with_suffix(".py"), Path(cfg.root) / rel):
        if cand.exists():
            return [cand]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin and Path(spec.origin).is_file():
        origin = Path(spec.origin)
        return [origin.parent if origin.name == "__init__.py" else origin]
    return []


def _kernel_digest(cfg: Config) -> str:
    """Digest of the C sources the native and target engines are built from."""
    from qverify import build

    try:
        return build.source_digest(cfg.cmsis_root)
    except build.CmsisTreeError as exc:
        raise ConfigError(f"{cfg.source}: 'cmsis_root': {exc}") from exc


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("tensorflow", "tensorflow-cpu", "keras", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "-"
    return out


def cache_key(cfg: Config) -> str:
    """sha256 (hex) over everything that determines the checks; computing it never imports TensorFlow."""
    h = hashlib.sha256()

    def put(label: str, text: str) -> None:
        h.update(label.encode() + b"=" + text.encode() + b"\n")

    put("format", str(CACHE_FORMAT))
    put("config", json.dumps(cfg.effective(), sort_keys=True))
    put("qverify", __version__)
    put("package", _package_digest())
    put("versions", json.dumps(_versions(), sort_keys=True))
    put("kernels", _kernel_digest(cfg))
    if "target" in cfg.engines:
        from qverify import build

        sub = hashlib.sha256()
        _digest_path(sub, build.FIRMWARE)
        put("firmware", sub.hexdigest())
    for what, paths in (
        ("model", _model_sources(cfg)),
        ("weights", cfg.weights),
        ("data", cfg.data),
        ("labels", cfg.labels),
    ):
        for p in [] if paths is None else paths if isinstance(paths, list) else [Path(paths)]:
            sub = hashlib.sha256()
            if Path(p).exists():
                _digest_path(sub, Path(p))
            put(what, f"{p}:{sub.hexdigest()}")
    return h.hexdigest()


def _entry(cfg: Config, key: str) -> Path:
    return cache_root(cfg) / key[:32]


def load(cfg: Config, key: str) -> GateOutcome | None:
    """The cached outcome of key, or None (a missing, partial or foreign entry is a miss)."""
    entry = _entry(cfg, key)
    try:
        meta = json.loads((entry / "result.json").read_text())
        if meta.get("key") != key or meta.get("format") != CACHE_FORMAT:
            return None
        plan = QuantPlan.load(entry)
        if plan.hash != meta["plan_hash"]:
            return None
        with np.load(entry / "sample0.npz", allow_pickle=False) as z:
            sample_input = z["input"]
            sample_outputs = {op.name: z[f"out/{op.name}"] for op in plan.ops if op.weighted}
        checks = [Check(**c) for c in meta["checks"]]
    except Exception:  # a missing, partial or foreign entry is a miss, never an error
        return None
    os.utime(entry)  # recently used: kept by the pruning
    return GateOutcome(
        checks,
        plan,
        True,
        key,
        meta["data_name"],
        meta["samples"],
        meta["engines"],
        meta["engine_info"],
        meta["summary"],
        sample_input,
        sample_outputs,
        meta["wall_seconds"],
    )


def store(cfg: Config, outcome: GateOutcome) -> None:
    """Write outcome as the entry of its key (atomically: a rename), then prune; an OSError stores nothing."""
    root = cache_root(cfg)
    try:
        root.mkdir(parents=True, exist_ok=True)
        ignore = root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# created by qverify: the gate's cache, never committed\n*\n")
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    except OSError:
        return  # a read-only checkout still gets its checks, just not cached
    try:
        outcome.plan.save(tmp)
        arrays = {"input": outcome.sample_input, **{f"out/{k}": v for k, v in outcome.sample_outputs.items()}}
        with open(tmp / "sample0.npz", "wb") as f:
            np.savez_compressed(f, allow_pickle=False, **arrays)
        meta = {
            "format": CACHE_FORMAT,
            "key": outcome.key,
            "qverify": __version__,
            "plan_hash": outcome.plan_hash,
            "source": cfg.source,
            "data_name": outcome.data_name,
            "samples": outcome.samples,
            "engines": outcome.engines,
            "engine_info": outcome.engine_info,
            "summary": outcome.summary,
            "wall_seconds": outcome.wall_seconds,
            "checks": [vars(c) for c in outcome.checks],
        }
        (tmp / "result.json").write_text(json.dumps(meta, indent=1))
        entry = _entry(cfg, outcome.key)
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    except OSError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prune_lru(root, CACHE_KEEP)


def clear_cache(cfg: Config) -> None:
    """Remove <config dir>/.qverify_cache."""
    shutil.rmtree(cache_root(cfg), ignore_errors=True)
