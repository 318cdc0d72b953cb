"""Files a manifest names: resolved inside its folder, and rows files read as located rows.

Relative paths resolve against the manifest's folder and may not leave the project root (the
folder holding `.git`, pipeline.project; the manifest's folder when there is none): `../images/`
beside `jobs/` is fine, `..`, an absolute path or a symlink out of the root is refused unless the
user passes --allow-outside-paths. A rows
file is CSV (a header row naming the columns) or JSONL (one JSON object a line); each row keeps
the file and line it came from, so a problem in it is reported there.

An empty CSV field means "not set": the row has no such key, so a template's `default` applies
and a model input takes the schema's default. CSV cannot tell an empty string from nothing;
JSONL can, and keeps the difference between a missing key, `null` and `""`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import Location, ProblemList

MAX_ROWS = 1_000_000


def is_inside(resolved: Path, base: Path) -> bool:
    """Whether a resolved path is `base` or lies under it (both resolved)."""
    return resolved == base or base in resolved.parents


def outside_words(folder: Path, root: Path | None) -> str:
    """What a refused path leaves, as a refusal names it: the project (when the manifest's
    folder lies inside a larger project) or the manifest's folder."""
    if root is not None and root.resolve() != folder.resolve():
        return f"the project {root}"
    return f"the manifest's folder {str(folder) or '.'}"


def resolve_inside(folder: Path, name: str, where: Location, problems: ProblemList,
                   *, must_exist: bool = True, allow_outside: bool = False,
                   root: Path | None = None) -> Path | None:
    """`name` resolved against `folder`; refused when it leaves `root` (the project root; the
    folder itself when None), symlinks included, unless `allow_outside` (the user's
    `--allow-outside-paths`)."""
    candidate = Path(name)
    if "\0" in name:
        problems.add(where, f"{name!r} contains a NUL character; it cannot be a file name")
        return None
    try:
        resolved = (folder / candidate).resolve()
        base = (root if root is not None else folder).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on older Pythons
        problems.add(where, f"cannot resolve {name!r}: {getattr(exc, 'strerror', None) or exc}")
        return None
    if not allow_outside and not is_inside(resolved, base):
        if candidate.is_absolute():
            problems.add(where, f"{name!r} is an absolute path outside "
                                f"{outside_words(folder, root)}; use a path relative to the "
                                "manifest's folder (or pass --allow-outside-paths)")
        else:
            problems.add(where, f"{name!r} points outside {outside_words(folder, root)}; move "
                                "the file into it (or pass --allow-outside-paths)")
        return None
    if must_exist and not _is_file(resolved):
        problems.add(where, f"file {name!r} not found next to the manifest (looked for {resolved})")
        return None
    return resolved


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # e.g. a name too long for the file system
        return False


def read_rows(text: str, suffix: str, display: str, problems: ProblemList
              ) -> tuple[list[dict[str, Any]], list[Location]] | None:
    """The rows of a CSV or JSONL text (`display` names its file in problems), or None when it
    cannot be read at all."""
    rows: list[dict[str, Any]] = []
    locs: list[Location] = []
    if suffix.lower() == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.add(Location(display, n, exc.colno), f"bad JSON: {exc.msg}")
                continue
            except (ValueError, RecursionError) as exc:  # a 5000-digit number, deep nesting
                problems.add(Location(display, n, 1), "bad JSON: " + (
                    "nested too deeply" if isinstance(exc, RecursionError) else str(exc)))
                continue
            if not isinstance(row, dict) or not row:
                problems.add(Location(display, n, 1), "each line must be a non-empty JSON object")
                continue
            rows.append(row)
            locs.append(Location(display, n, 1))
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        if not header or any(not h for h in header):
            problems.add(Location(display, 1, 1), "CSV needs a header row naming every column")
            return None
        for bad in header:
            if not bad.isidentifier():
                problems.add(Location(display, 1, 1),
                             f"column {bad!r} is not a valid variable name (letters, digits, _)")
        for name in sorted({h for h in header if header.count(h) > 1}):
            problems.add(Location(display, 1, 1), f"column {name!r} appears more than once in "
                                                  "the header; each column needs its own name")
        try:
            for row in reader:
                where = Location(display, reader.line_num, 1)
                if None in row:
                    problems.add(where, f"row has {len(header) + len(row[None])} fields, more "
                                        f"than the header's {len(header)} "
                                        f"({_names(header)}); quote a value that holds a comma")
                    continue
                if any(v is None for v in row.values()):
                    given = sum(1 for v in row.values() if v is not None)
                    problems.add(where, f"row has {given} field{'s' if given != 1 else ''}, "
                                        f"fewer than the header's {len(header)} "
                                        f"({_names(header)}); leave a field empty (a,,c) "
                                        "for a value the row does not set")
                    continue
                values = {k: v for k, v in row.items() if v != ""}  # empty: not set
                if not values:
                    problems.add(where, "row has no values (every field is empty); delete "
                                        "the line")
                    continue
                rows.append(values)
                locs.append(where)
                if len(rows) > MAX_ROWS:
                    problems.add(Location(display), f"more than {MAX_ROWS} rows")
                    return None
        except csv.Error as exc:
            problems.add(Location(display, reader.line_num, 1), f"bad CSV: {exc}")
    return rows, locs


def _names(header: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(header[:limit])
    return shown + (f" and {len(header) - limit} more" if len(header) > limit else "")
