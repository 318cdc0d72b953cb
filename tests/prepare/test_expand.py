"""Matrix expansion: GitHub Actions' include/exclude semantics, rows, ranges, seeds, identity."""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path

import pytest
from imagefiles import MODEL, write_image, write_manifest

from pipeline.prepare.expand import combinations
from pipeline.prepare.manifest import load_manifest
from pipeline.prepare.plan import build_plan

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_image(tmp_path / "img.png", 640, 480)
    return tmp_path


def manifest(folder: Path, body: str, *, prompt: str = "a boat") -> Path:
    head = f"name: t\nmodel: {MODEL}\nprompt: {prompt!r}\ninputs:\n  image_urls: [img.png]\n"
    return write_manifest(folder, head + textwrap.dedent(body).lstrip("\n"))


def test_github_actions_documented_example(folder: Path) -> None:
    """The include example from GitHub's documentation expands exactly as GitHub does it."""
    path = write_manifest(folder, """
        name: t
        model: bytedance/dreamina-3-0/image-to-video
        matrix:
          fruit: [apple, pear]
          animal: [cat, dog]
          include:
            - color: green
            - color: pink
              animal: cat
            - fruit: apple
              shape: circle
            - fruit: banana
            - fruit: banana
              animal: cat
        """)
    combos = [values for values, _ in combinations(load_manifest(path))]
    assert combos == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_issue_example_is_nineteen_cells() -> None:
    """The harbor sweep: 24 combinations, 6 excluded, one include added as new: 19 cells."""
    plan = build_plan(REPO / "jobs" / "harbor-sweep.yaml")
    assert len(plan.cells) == 19
    assert not any(c.request["number_of_frames"] == 241 and c.request["resolution"] == "1080P"
                   for c in plan.cells)
    night = [c for c in plan.cells if c.values.get("light") == "at night"]
    assert len(night) == 1 and night[0].request["seed"] == 9
    assert night[0].request["prompt"] == "the woman standing beside the boats, at night"


def test_exclude_matches_partially_and_runs_before_include(folder: Path) -> None:
    """An exclude entry drops every combination containing its pairs; include then re-adds one."""
    path = manifest(folder, """
        matrix:
          resolution: [720P, 1080P]
          seed: [1, 2]
          exclude:
            - {resolution: 1080P}
          include:
            - {resolution: 1080P, seed: 2}
        """)
    combos = [values for values, _ in combinations(load_manifest(path))]
    assert combos == [{"resolution": "720P", "seed": 1}, {"resolution": "720P", "seed": 2},
                      {"resolution": "1080P", "seed": 2}]


def test_include_only_matrix_gives_one_cell_per_entry(folder: Path) -> None:
    """A matrix with only include entries has exactly those combinations."""
    path = manifest(folder, """
        matrix:
          include:
            - {seed: 5}
            - {seed: 6, resolution: 1080P}
        """)
    plan = build_plan(path)
    assert [(c.request["seed"], c.request["resolution"]) for c in plan.cells] == [
        (5, "720P"), (6, "1080P")]


def test_no_matrix_is_one_cell_with_schema_defaults(folder: Path) -> None:
    """Without a matrix the job is one cell, and the plan fills the schema's defaults in."""
    plan = build_plan(manifest(folder, ""))
    assert len(plan.cells) == 1
    request = plan.cells[0].request
    assert request == {"image_urls": ["img.png"], "prompt": "a boat", "number_of_frames": 121,
                       "resolution": "720P", "seed": -1}
    assert any("not reproducible" in str(w) for w in plan.warnings)


def test_integer_range_is_inclusive_with_step(folder: Path) -> None:
    """`{from: 1, to: 9, step: 4}` gives 1, 5, 9."""
    plan = build_plan(manifest(folder, "matrix:\n  seed: {from: 1, to: 9, step: 4}\n"))
    assert [c.request["seed"] for c in plan.cells] == [1, 5, 9]


def test_template_variables_versus_model_inputs(folder: Path) -> None:
    """A matrix key naming a model input goes into the request; any other key is a variable."""
    plan = build_plan(manifest(folder, "matrix:\n  mood: [calm, stormy]\n  seed: [3]\n",
                               prompt="a {{ mood }} sea"))
    assert [c.request["prompt"] for c in plan.cells] == ["a calm sea", "a stormy sea"]
    assert all("mood" not in c.request for c in plan.cells)


def test_templates_work_in_image_urls(folder: Path) -> None:
    """Variables render inside other string inputs such as image_urls."""
    write_image(folder / "shots" / "b.png", 700, 500)
    path = write_manifest(folder, """
        name: t
        model: bytedance/dreamina-3-0/image-to-video
        prompt: "shot {{ shot }}"
        inputs:
          image_urls: ["shots/{{ shot }}.png"]
          seed: 1
        matrix:
          shot: [b]
        """)
    assert build_plan(path).cells[0].request["image_urls"] == ["shots/b.png"]


def test_inline_rows_are_zipped_and_crossed_with_axes(folder: Path) -> None:
    """Rows stay together (zipped) and are crossed with the product axes."""
    write_image(folder / "b.png", 500, 500)
    plan = build_plan(manifest(folder, """
        matrix:
          rows:
            - {image_urls: img.png, caption: first}
            - {image_urls: b.png, caption: second}
          seed: [1, 2]
        """, prompt="{{ caption }}"))
    pairs = [(c.request["image_urls"], c.request["prompt"], c.request["seed"]) for c in plan.cells]
    assert pairs == [(["img.png"], "first", 1), (["img.png"], "first", 2),
                     (["b.png"], "second", 1), (["b.png"], "second", 2)]


def test_csv_rows_are_typed_by_the_schema(folder: Path) -> None:
    """CSV text becomes the type the schema asks for (seed an integer, image_urls a list)."""
    (folder / "rows.csv").write_text("image_urls,seed,caption\nimg.png,7,hello\n")
    plan = build_plan(manifest(folder, "matrix:\n  rows: rows.csv\n", prompt="{{ caption }}"))
    assert plan.cells[0].request == {"image_urls": ["img.png"], "prompt": "hello",
                                     "number_of_frames": 121, "resolution": "720P", "seed": 7}


def test_jsonl_rows(folder: Path) -> None:
    """JSONL rows keep their JSON types."""
    (folder / "rows.jsonl").write_text('{"seed": 4, "w": "x"}\n\n{"seed": 5, "w": "y"}\n')
    plan = build_plan(manifest(folder, "matrix:\n  rows: {file: rows.jsonl}\n",
                               prompt="{{ w }}"))
    assert [(c.request["seed"], c.request["prompt"]) for c in plan.cells] == [(4, "x"), (5, "y")]


def test_random_seeds_are_pinned_and_deterministic(folder: Path) -> None:
    """`seed: {random: 3}` draws three distinct seeds per cell, the same on every plan."""
    body = "matrix:\n  resolution: [720P, 1080P]\n  seed: {random: 3}\n"
    first = build_plan(manifest(folder, body))
    again = build_plan(manifest(folder, body))
    seeds = [c.request["seed"] for c in first.cells]
    assert seeds == [c.request["seed"] for c in again.cells]
    assert len(set(seeds)) == 6 and all(0 <= s < 2**31 for s in seeds)
    assert [c.values["seed"] for c in first.cells] == seeds  # shown in the plan
    assert not first.warnings


def test_repeat_makes_replicates_with_distinct_ids(folder: Path) -> None:
    """`repeat: 3` gives three cells per combination; replicate 0 keeps the unrepeated id."""
    single = build_plan(manifest(folder, "matrix:\n  seed: [1]\n"))
    tripled = build_plan(manifest(folder, "repeat: 3\nmatrix:\n  seed: [1]\n"))
    assert len(tripled.cells) == 3
    assert len({c.id for c in tripled.cells}) == 3
    assert tripled.cells[0].id == single.cells[0].id
    assert [c.values["replicate"] for c in tripled.cells] == [0, 1, 2]


def test_cell_id_survives_manifest_edits(folder: Path) -> None:
    """Adding axis values or reordering keys leaves existing cells' ids unchanged."""
    before = build_plan(manifest(folder, "matrix:\n  seed: [1, 2]\n"))
    after = build_plan(write_manifest(folder, f"""
        # edited: more seeds, keys moved around
        model: {MODEL}
        name: t
        matrix:
          seed: [3, 2, 1]
        inputs:
          image_urls: [img.png]
        prompt: a boat
        """))
    old = {c.request["seed"]: c.id for c in before.cells}
    new = {c.request["seed"]: c.id for c in after.cells}
    assert new[1] == old[1] and new[2] == old[2] and new[3] not in old.values()


def test_cell_id_follows_image_bytes_not_path(folder: Path) -> None:
    """A renamed image keeps the id; replaced bytes under the same name make a new cell."""
    first = build_plan(manifest(folder, ""))
    shutil.copy(folder / "img.png", folder / "renamed.png")
    renamed = write_manifest(folder, f"name: t\nmodel: {MODEL}\nprompt: 'a boat'\n"
                                     "inputs:\n  image_urls: [renamed.png]\n")
    assert build_plan(renamed).cells[0].id == first.cells[0].id
    write_image(folder / "img.png", 641, 480)
    assert build_plan(manifest(folder, "")).cells[0].id != first.cells[0].id


def test_labels_name_the_values_that_vary(folder: Path) -> None:
    """A cell's label shows the matrix values that differ between cells."""
    plan = build_plan(manifest(folder, "matrix:\n  resolution: [720P]\n  seed: [1, 2]\n"))
    assert [c.label for c in plan.cells] == ["seed=1", "seed=2"]


def test_identical_requests_are_refused(folder: Path) -> None:
    """Two cells that would POST the same body are an error that suggests `repeat`."""
    from pipeline.errors import ManifestError

    with pytest.raises(ManifestError, match="send the same request"):
        build_plan(manifest(folder, "matrix:\n  unused: [a, b]\n  seed: [1]\n"))


def test_hundred_thousand_cells(folder: Path) -> None:
    """A manifest that expands to 100,000 cells plans with 100,000 distinct ids."""
    path = manifest(folder, """
        matrix:
          seed: {from: 1, to: 25000}
          resolution: [720P, 1080P]
          number_of_frames: [121, 241]
        """)
    start = time.perf_counter()
    plan = build_plan(path)
    elapsed = time.perf_counter() - start
    assert len(plan.cells) == 100_000
    assert len({c.id for c in plan.cells}) == 100_000
    assert elapsed < 120  # generous: a regression guard, not a benchmark (see bench/plan.py)
