"""The rows reader understands the picks format: a pick's values become the row, the final's
own axes and inputs win, and each cell records the cell it was picked from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imagefiles import MODEL, final_manifest, write_image, write_manifest

from pipeline.errors import ManifestError
from pipeline.job.folder import JobFolder
from pipeline.job.forecast import forecast
from pipeline.job.plan_json import plan_json
from pipeline.job.plan_table import plan_table
from pipeline.prepare.picks import pick
from pipeline.prepare.plan import build_plan
from pipeline.run.prices import price_now

FINAL = final_manifest()


def picks_file(folder: Path, *rows: dict) -> Path:
    path = folder / "picks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def a_pick(cell: str, image: str, caption: str, seed: int) -> dict:
    return pick(cell=cell, job="preview", out="outputs/preview", label=f"{caption} {seed}",
                values={"image": image, "caption": caption, "resolution": "720P",
                        "seed": seed}, request={"prompt": f"{caption}, steady camera",
                                                "seed": seed}, model=MODEL)


def test_picks_file_is_rows_with_from_cell(tmp_path: Path) -> None:
    """Each pick becomes one cell at the final's resolution and frames, with the picked seed
    and prompt, and its from_cell naming the preview job and cell."""
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png")
    picks_file(tmp_path, a_pick("aaaa000011112222", "a.png", "boats", 11),
               a_pick("bbbb000011112222", "b.png", "pier", 22))
    plan = build_plan(write_manifest(tmp_path, FINAL))
    got = [(c.request["seed"], c.request["prompt"], c.request["resolution"],
            c.request["number_of_frames"], c.from_cell) for c in plan.cells]
    assert got == [
        (11, "boats, steady camera", "1080P", 241,
         {"job": "preview", "cell": "aaaa000011112222", "out": "outputs/preview"}),
        (22, "pier, steady camera", "1080P", 241,
         {"job": "preview", "cell": "bbbb000011112222", "out": "outputs/preview"}),
    ]


def test_final_axis_wins_whatever_the_order(tmp_path: Path) -> None:
    """The final's own axes win over a pick's values wherever they stand in the matrix, and
    from_cell is not part of the cell id."""
    write_image(tmp_path / "a.png")
    picks_file(tmp_path, a_pick("aaaa000011112222", "a.png", "boats", 11))
    first = build_plan(write_manifest(tmp_path, FINAL)).cells
    swapped = FINAL.replace("  rows: {file: picks.jsonl}\n  resolution: [1080P]\n",
                            "  resolution: [1080P]\n  rows: {file: picks.jsonl}\n")
    second = build_plan(write_manifest(tmp_path, swapped)).cells
    assert [c.request["resolution"] for c in first + second] == ["1080P", "1080P"]
    assert first[0].id == second[0].id
    plain = FINAL.replace("  rows: {file: picks.jsonl}\n",
                          "  rows: [{image: a.png, caption: boats, seed: 11}]\n")
    assert build_plan(write_manifest(tmp_path, plain)).cells[0].id == first[0].id


def test_inline_picks_as_pasted_from_the_page(tmp_path: Path) -> None:
    """Picks pasted inline (the page's Copy as YAML) read like the file."""
    write_image(tmp_path / "a.png")
    text = FINAL.replace("  rows: {file: picks.jsonl}\n",
                         '  rows:\n    - {cell: "aaaa000011112222", job: preview, out: '
                         'outputs/preview, values: {image: a.png, caption: boats, seed: 11}}\n')
    [cell] = build_plan(write_manifest(tmp_path, text)).cells
    assert cell.request["seed"] == 11 and cell.from_cell["cell"] == "aaaa000011112222"


def test_plan_shows_from_cell(tmp_path: Path) -> None:
    """`plan` shows where each cell was picked from; plan --json carries from_cell and the
    matrix with the keys its rows zip."""
    write_image(tmp_path / "a.png")
    picks_file(tmp_path, a_pick("aaaa000011112222", "a.png", "boats", 11))
    plan = build_plan(write_manifest(tmp_path, FINAL))
    folder = JobFolder(tmp_path / "out")
    outlook = forecast(plan, price_now(plan.manifest, folder, offline=True), folder)
    table = plan_table(outlook)
    assert "from" in table.splitlines()[0] and "preview:aaaa0000" in table
    data = plan_json(outlook)
    assert data["cells"][0]["from_cell"]["cell"] == "aaaa000011112222"
    assert data["matrix"] == [{"axis": "rows", "keys": ["image", "caption", "seed"]},
                              {"axis": "resolution"}, {"axis": "number_of_frames"}]


def test_bad_pick_is_located(tmp_path: Path) -> None:
    """A pick whose values are not a mapping is one problem at its line of the file."""
    write_image(tmp_path / "a.png")
    (tmp_path / "picks.jsonl").write_text(
        json.dumps(a_pick("aaaa000011112222", "a.png", "boats", 11)) + "\n"
        + json.dumps({"cell": "bbbb", "values": "oops"}) + "\n", encoding="utf-8")
    with pytest.raises(ManifestError) as err:
        build_plan(write_manifest(tmp_path, FINAL))
    assert "picks.jsonl:2:1: pick of cell 'bbbb': `values` must be a non-empty mapping" \
        in str(err.value)
