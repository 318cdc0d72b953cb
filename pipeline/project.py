"""A project's root: where its job folders (`outputs/`) and its own models (`models/`) live.

The root is the nearest folder at or above a starting folder that holds `.git`, else the
folder itself; a manifest's root starts from the manifest's own folder, a command without a
manifest (`pipeline models`, `pipeline sim`) from the current one.
"""

from __future__ import annotations

from pathlib import Path


def project_root(manifest_path: Path) -> Path:
    """The nearest folder at or above the manifest's that holds `.git`; else its own folder."""
    return root_at(Path(manifest_path).resolve().parent)


def root_at(start: Path) -> Path:
    """The project root of a folder (commands without a manifest, such as `pipeline models`,
    start from the current one): the nearest folder at or above it that holds `.git`, else
    the folder itself."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start
