"""The output folder is one set: plan.json, plan.npz, weights.h, sample_input_output.h (and the gate's network.c)
of one plan, never files of two plans side by side.

Each file is replaced atomically (fs.atomic_write), but five renames are not one. A folder the user names
(`--out fw/nn`) may hold files of theirs, and the firmware's include path points at it, so the set cannot be
written in a sibling folder and swapped in (a directory cannot be renamed over a non-empty one atomically,
and Windows refuses to rename a folder a process has open). Instead:

- every file of the set states the hash of the plan it belongs to (plan.json's "hash", plan.npz's
  QVERIFY_PLAN_HASH entry, QVERIFY_PLAN_HASH in the headers and network.c);
- a manifest, qverify-manifest.json, lists the set's files with their sha256. It is written *before* the
  first file, naming the new set and the previous one ("writing"), and again after the last rename naming
  the new set alone;
- every reader (QuantPlan.load, cheader.read_header of a file in such a folder) calls check_set: the folder is
  the new set when every file of it states the new plan, the previous set when every file of that states the
  previous plan; anything else is refused with one line naming which file is of which plan.

So a kill at any point leaves, as far as any reader can tell, the old set or the new one, or a mix that is
refused (and that the C compiler refuses too: weights.h, sample_input_output.h and network.c check each
other's QVERIFY_*_PLAN macro at compile time). Files that are not the set's are never touched, except a file
of the previous set that this write no longer includes and that is still byte for byte what qverify wrote:
it is removed (a stale network.c after a `quantize` into a gate's folder).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path

from qverify.errors import PlanError
from qverify.fs import atomic_write, sync_dir

MANIFEST = "qverify-manifest.json"
# the files a set can hold, in the order they are renamed into place (names not in the previous set go last)
NAMES = ("plan.npz", "plan.json", "weights.h", "sample_input_output.h", "network.c")
NPZ_KEY = "QVERIFY_PLAN_HASH"
_C_HASH = re.compile(rb'#define\s+QVERIFY_(?:NETWORK_)?PLAN_HASH\s+"([0-9a-f]{64})"')
_UNKNOWN = "not written by qverify"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def stated_plan(name: str, data: bytes) -> str | None:
    """The plan hash a file of the set states, or None (a file qverify did not write, or an older one's npz)."""
    try:
        if name.endswith(".json"):
            value = json.loads(data).get("hash")
            return value if isinstance(value, str) else None
        if name.endswith(".npz"):
            import numpy as np

            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                return str(z[NPZ_KEY]) if NPZ_KEY in z.files else None
    except (ValueError, OSError, AttributeError, EOFError):
        return None
    m = _C_HASH.search(data)
    return m.group(1).decode() if m else None


def _present(directory: Path, names) -> dict[str, tuple[str | None, str]]:
    """name → (stated plan, sha256) of each of those files that exists."""
    out = {}
    for name in names:
        try:
            data = (directory / name).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        except OSError as exc:
            raise PlanError(f"{directory / name}: cannot read it: {exc.strerror or exc}") from exc
        out[name] = (stated_plan(name, data), digest(data))
    return out


def read_manifest(directory: Path) -> dict | None:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        if not (isinstance(manifest.get("plan"), str) and isinstance(manifest.get("files"), dict)):
            raise ValueError("no plan or files")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError, AttributeError) as exc:
        raise PlanError(f"{path} is not a qverify manifest ({exc}): delete it and write the folder again") from exc
    return manifest


def _sets(manifest: dict | None) -> list[dict]:
    if manifest is None:
        return []
    previous = manifest.get("previous")
    return [manifest] + ([previous] if isinstance(previous, dict) else [])


def _complete(s: dict, present: dict) -> bool:
    """Every file of set s is there stating s's plan, and no other file of a set states another plan."""
    if any(name not in present or present[name][0] != s["plan"] for name in s["files"]):
        return False
    return all(plan in (None, s["plan"]) for plan, _ in present.values())


def check_set(directory: str | Path) -> str | None:
    """The plan hash of the set the folder holds; None when it holds no qverify file stating a plan.

    Raises:
        PlanError: files of two plans, or a file of the set missing (a write was interrupted, or files
            were copied in from another run): one line naming each file and its plan.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    sets = _sets(manifest)
    names = list(dict.fromkeys([*NAMES, *(n for s in sets for n in s["files"])]))
    present = _present(directory, names)
    for s in sets:
        if _complete(s, present):
            return s["plan"]
    plans = {plan for plan, _ in present.values() if plan is not None}
    if manifest is None and len(plans) <= 1:  # written before manifests: consistent as far as it says
        return next(iter(plans), None)
    raise PlanError(mixed_message(directory, manifest, present))


def mixed_message(directory: Path, manifest: dict | None, present: dict) -> str:
    groups: dict[str, list[str]] = {}
    for name, (plan, _) in present.items():
        groups.setdefault(f"plan {plan[:12]}" if plan else _UNKNOWN, []).append(name)
    missing = [n for n in (manifest or {}).get("files", {}) if n not in present]
    if missing:
        groups["missing"] = missing
    parts = "; ".join(
        f"{', '.join(files)} {'' if what == 'missing' else 'of '}{what}".replace("  ", " ")
        for what, files in groups.items()
    )
    why = (
        "a write was interrupted"
        if manifest is not None and manifest.get("writing")
        else "a write was interrupted, or files were copied in from another run"
    )
    return (
        f"{directory} does not hold one set of qverify outputs ({why}): {parts}; write it again "
        f"(`python -m qverify quantize --out {directory}` or `qverify gate`) or remove the stray files"
    )


def check_member(path: str | Path) -> None:
    """For a reader of one file: if it sits in a folder qverify wrote a set into, that set must be whole."""
    path = Path(path)
    if path.name in NAMES and (path.parent / MANIFEST).is_file():
        check_set(path.parent)


def write_set(directory: str | Path, files: dict[str, bytes], plan_hash: str) -> list[Path]:
    """Replace the set in directory by `files` (name → bytes, every one stating plan_hash); see the module doc.

    Returns:
        The paths written, the manifest last.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    unknown = [n for n in files if n not in NAMES]
    if unknown:
        raise ValueError(f"not a file of the output set: {', '.join(unknown)}")
    wrong = [n for n, data in files.items() if stated_plan(n, data) != plan_hash]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} do not state plan {plan_hash}")
    try:
        manifest = read_manifest(directory)
    except PlanError:
        manifest = None  # replaced below; the files it listed are judged by what they state
    old = _previous(directory, manifest)
    new = {"plan": plan_hash, "files": {n: digest(files[n]) for n in NAMES if n in files}}
    path = directory / MANIFEST
    atomic_write(path, _manifest_bytes({**new, "writing": True, "previous": old}), sync=True)
    order = [n for n in new["files"] if old and n in old["files"]] + [
        n for n in new["files"] if not (old and n in old["files"])
    ]
    for name in order:
        atomic_write(directory / name, files[name], sync=True)
    for name, sha in (old or {}).get("files", {}).items():
        if name not in files and _present(directory, [name]).get(name, (None, None))[1] == sha:
            os.unlink(directory / name)  # ours, unchanged, and no longer part of the set
    atomic_write(path, _manifest_bytes(new), sync=True)
    sync_dir(directory)
    return [directory / n for n in new["files"]] + [path]


def _previous(directory: Path, manifest: dict | None) -> dict | None:
    """The set the folder holds now (from its manifest, or the files an older qverify wrote), or None."""
    present = _present(directory, list(dict.fromkeys([*NAMES, *(n for s in _sets(manifest) for n in s["files"])])))
    for s in _sets(manifest):
        if _complete(s, present):
            return {"plan": s["plan"], "files": dict(s["files"])}  # the digests as qverify wrote them
    plans = {plan for plan, _ in present.values() if plan is not None}
    if manifest is None and len(plans) == 1:
        (plan,) = plans
        return {"plan": plan, "files": {n: sha for n, (p, sha) in present.items() if p == plan}}
    return None


def _manifest_bytes(content: dict) -> bytes:
    from qverify import __version__

    return json.dumps({"qverify_manifest": 1, "written_by": f"qverify {__version__}", **content}, indent=1).encode()
