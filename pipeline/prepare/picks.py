"""The picks format: the clips a person chose in a report, one JSON object a line.

    {"cell": ID, "job": "preview", "out": "outputs/preview", "label": ...,
     "values": {every value the cell's request and prompt were made from: its matrix values
                and row fields, its replicate (of a job with `repeat`) and its pinned seed},
     "prompt": ..., "model": ..., "by": "ana"}

`by` (optional): who picked the clip, when it was starred in a page served by `pipeline review`
(several people pick from their own browsers into one file); nothing reads it back but people.

`pick()` builds a line (the report page's "Download picks" writes the lines the report made
with it, `pipeline picks` writes them too); `split_rows()` reads lines back as rows of a
manifest's `matrix.rows` (a picks.jsonl file, or the same mappings pasted inline from the
page's "Copy as YAML"): a pick's `values` become the row, and where it came from is kept
apart as its `from_cell` (the preview job, its folder and the cell id), never part of a
request or a cell id.

A pick's `replicate` (the take it was picked from) is a template variable of the final like any
row field: its prompt renders as the preview's did (pipeline.prepare.expand lets a row's
`replicate` win over the final's own replicate index in templates).
"""

from __future__ import annotations

from typing import Any

from ..errors import ProblemList


def pick(*, cell: str, job: str | None, out: str | None, label: str, values: dict[str, Any],
         request: dict[str, Any], model: str | None, by: str | None = None) -> dict[str, Any]:
    """One line of picks.jsonl for a cell of a job (`out`: the job's folder as the page and
    the rows reader name it, relative to the project root when inside it)."""
    carried = dict(values)
    seed = request.get("seed")
    if "seed" not in carried and isinstance(seed, int) and seed >= 0:
        carried["seed"] = seed  # pinned outside the matrix: still the clip's seed
    line = {"cell": cell, "job": job, "out": out, "label": label, "values": carried,
            "prompt": request.get("prompt"), "model": model}
    if by:
        line["by"] = by
    return line


def is_pick(row: Any) -> bool:
    """A rows entry in the picks format (it has a cell id and a `values` mapping)."""
    return isinstance(row, dict) and "cell" in row and "values" in row


def split_rows(rows: list[dict[str, Any]], locs: list[Any], problems: ProblemList
               ) -> tuple[list[dict[str, Any]], list[Any], list[dict[str, Any] | None]]:
    """Rows as the matrix takes them, their locations, and per row the cell it was picked
    from (None for a plain row). A pick whose `values` is not a non-empty mapping is a
    problem at its location (`locs`: Locations, or manifest paths resolved by `where`)."""
    out: list[dict[str, Any]] = []
    kept: list[Any] = []
    origins: list[dict[str, Any] | None] = []
    for row, where in zip(rows, locs, strict=True):
        if is_pick(row):
            values = row["values"]
            if not isinstance(values, dict) or not values:
                problems.add(where, f"pick of cell {row['cell']!r}: `values` must be a "
                                    "non-empty mapping of the cell's matrix values (as "
                                    "`pipeline picks` writes them)")
                continue
            out.append(dict(values))
            origins.append({"job": row.get("job"), "cell": str(row["cell"]),
                            "out": row.get("out")})
        else:
            out.append(row)
            origins.append(None)
        kept.append(where)
    return out, kept, origins
