"""Files and folders: writing a file so that a reader never sees half of one; pruning a cache folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_UMASK = os.umask(0o022)  # read once: os.umask can only be read by setting it
os.umask(_UMASK)


def atomic_write(path: Path | str, data: bytes, sync: bool = False) -> None:
    """Write bytes to path through a temporary file in the same folder and a rename.

    sync: flush the bytes to the disk before the rename, so that after a power loss the name holds the old
    bytes or the new ones (a killed process needs no sync: the rename alone is atomic).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def sync_dir(directory: Path | str) -> None:
    """Flush a folder's entries (the renames into it) to the disk; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def prune_lru(root: Path, keep: int, prefix: str = "") -> None:
    """Remove the least recently used (oldest mtime) folders in root named prefix* beyond the newest `keep`.

    Hidden folders (.tmp-* builds in progress) are never touched; a root that cannot be listed is left alone.
    """
    try:
        entries = sorted(
            (
                p
                for p in Path(root).iterdir()
                if p.is_dir() and p.name.startswith(prefix) and not p.name.startswith(".")
            ),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
    except OSError:
        return
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)
