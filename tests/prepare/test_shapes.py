"""Cells that differ only in a free integer share their shape (pipeline.prepare.shapes.Shape):
the plan is the same as when each cell is worked out on its own, ids included."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from imagefiles import MODEL, write_image, write_manifest

from pipeline.prepare import expand
from pipeline.prepare.plan import build_plan

SWEEPS = {
    "seed under takes": """
        prompt: "boats, take {{ take }}"
        matrix:
          take: [1, 2]
          seed: {from: 1, to: 30}
        """,
    "seed outermost, two holes": """
        prompt: "boats"
        matrix:
          seed: [5, 99999999999999999999, 7, 2.0, -3]
          number_of_frames: [121, 241]
          resolution: [720P, 1080P]
        """,
    "a prompt reading the seed": """
        prompt: "boats {{ seed }}"
        matrix:
          seed: {from: 1, to: 5}
          resolution: [720P, 1080P]
        """,
    "a matrix value reading the seed": """
        prompt: "boats"
        matrix:
          seed: [1, 2, 3]
          resolution: ["{{ '720P' if seed == 1 else '1080P' }}"]
        """,
    "an input template reading the seed": """
        prompt: "boats {{ take }}"
        inputs:
          resolution: "{{ '720P' if seed == 2 else '1080P' }}"
        matrix:
          seed: [1, 2, 3]
          take: [a, b]
        """,
    "replicates": """
        prompt: "boats {{ take }} #{{ replicate }}"
        repeat: 2
        matrix:
          take: [1, 2]
          seed: [1, 2, 3]
        """,
    "include and exclude": """
        prompt: "boats {{ take }}"
        matrix:
          take: [1, 2, 3]
          seed: [1, 2]
          exclude:
            - {take: 3, seed: 1}
          include:
            - {take: 2, resolution: 1080P}
            - {take: 9, seed: 4}
        """,
}


@pytest.mark.parametrize("body", SWEEPS.values(), ids=SWEEPS.keys())
def test_shared_shapes_change_nothing(tmp_path: Path, body: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Each cell is what working it out alone gives: its id (cell_id of its own request),
    label, values, request and origin."""
    write_image(tmp_path / "img.png", 640, 480)
    text = textwrap.dedent(body).lstrip("\n")
    if "inputs:\n" in text:
        text = text.replace("inputs:\n", "inputs:\n  image_urls: [img.png]\n")
    else:
        text = "inputs:\n  image_urls: [img.png]\n" + text
    path = write_manifest(tmp_path, f"name: t\nmodel: {MODEL}\n" + text)
    shared = build_plan(path, fetch_remote=False).cells
    monkeypatch.setattr(expand, "hole_keys", lambda *a: frozenset())  # as drafts calls it
    alone = build_plan(path, fetch_remote=False).cells
    assert len(shared) > 2
    assert [(c.id, c.label, c.values, c.request, c.origin) for c in shared] == \
        [(c.id, c.label, c.values, c.request, c.origin) for c in alone]


def takes_by_seeds(folder: Path, takes: int, seeds: int) -> Path:
    """A manifest of `takes` takes (read by the prompt) x `seeds` seeds (read by nothing)."""
    write_image(folder / "img.png", 640, 480)
    return write_manifest(folder, f"""
        name: t
        model: {MODEL}
        prompt: "boats, take {{{{ take }}}}"
        inputs:
          image_urls: [img.png]
        matrix:
          take: {{from: 1, to: {takes}}}
          seed: {{from: 1, to: {seeds}}}
        """)


def test_a_sweep_over_seeds_shares_one_shape(tmp_path: Path) -> None:
    """take x seed: one shape per take, the seeds its holes."""
    path = takes_by_seeds(tmp_path, takes=2, seeds=4)
    from pipeline.errors import ProblemList
    from pipeline.prepare.manifest import load_manifest

    drafts = list(expand.drafts(load_manifest(path), ProblemList()))
    shapes = {id(d.shape): d.shape for d in drafts}
    assert len(shapes) == 2
    assert all(s is not None and s.holes == ("seed",) for s in shapes.values())


def test_past_the_shapes_kept_cells_are_worked_out_alone(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for 2 shapes, the cells of the third and later are made one by one, and the
    plan is the same."""
    path = takes_by_seeds(tmp_path, takes=4, seeds=3)
    alone = build_plan(path, fetch_remote=False).cells
    monkeypatch.setattr(expand, "MAX_SHAPES", 2)
    capped = build_plan(path, fetch_remote=False).cells
    assert [(c.id, c.label, c.request) for c in capped] == \
        [(c.id, c.label, c.request) for c in alone]
    assert sum(c.shape is not None for c in capped) == 6


def test_a_plan_keeps_of_its_shapes_only_what_later_stages_read(tmp_path: Path) -> None:
    """Once checked, a shape of one cell is taken off it (a prompt reading the seed makes one a
    cell), and a shared one keeps its holes but lets go of its request, texts and origins."""
    path = takes_by_seeds(tmp_path, takes=2, seeds=3)
    cells = build_plan(path, fetch_remote=False).cells
    shapes = {id(c.shape): c.shape for c in cells}
    assert len(shapes) == 2 and all(s is not None for s in shapes.values())
    for shape in shapes.values():
        assert shape.holes == ("seed",) and shape.valid
        assert shape.request == {} and shape.id_text is None and shape.label_text is None
        assert shape.origin is None and shape.combination is None
    one_each = write_manifest(tmp_path, f"""
        name: t2
        model: {MODEL}
        prompt: "boats {{{{ seed }}}}"
        inputs:
          image_urls: [img.png]
        matrix:
          seed: {{from: 1, to: 4}}
        """)
    assert [c.shape for c in build_plan(one_each, fetch_remote=False).cells] == [None] * 4
