"""Writing files so that a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from .errors import StateError


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


@contextmanager
def atomic_writer(path: Path) -> Iterator[TextIO]:
    """`write_atomic` for a file written piece by piece (a report of 100,000 cells): the text
    goes to a temporary name beside `path`, which replaces `path` only when the block ends
    without an error. No temporary file is left either way."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fh = open(tmp, "w", encoding="utf-8")
    except OSError as exc:
        raise StateError(f"cannot write {path}: {exc.strerror or exc}; free some space and run "
                         "again") from None
    try:
        try:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fh.close()
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StateError(f"cannot write {path}: {exc.strerror or exc}; free some space and run "
                         "again") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
