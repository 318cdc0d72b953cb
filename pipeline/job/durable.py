"""Writing files so that a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import StateError


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to a temporary name beside `path`, fsync, rename over it, fsync the folder.
    A failure (disk full, ...) is a StateError naming the file; no temporary file is left."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StateError(f"cannot write {path}: {exc.strerror or exc}; free some space and run "
                         "again") from None
    fsync_dir(path.parent)
    return path
