"""The matrix's keys are checked before anything is paid for; legitimate patterns pass."""

from __future__ import annotations

from pathlib import Path

from imagefiles import MODEL, write_image, write_manifest

from pipeline.errors import ProblemList
from pipeline.prepare.manifest import load_manifest
from pipeline.prepare.matrix import check_matrix, template_variables
from pipeline.prepare.plan import validate_files


def manifest(folder: Path, matrix: str, prompt: str = "a boat {{ light }}") -> Path:
    write_image(folder / "img.png")
    return write_manifest(folder, f"name: t\nmodel: {MODEL}\nprompt: {prompt!r}\n"
                                  f"inputs: {{image_urls: [img.png], seed: 1}}\nmatrix:\n{matrix}")


def test_an_axis_that_include_entries_match_on_is_not_unused(tmp_path: Path) -> None:
    """GitHub Actions' way of attaching values to an axis value (`style` picks a prompt)."""
    path = manifest(tmp_path, "  style: [calm, stormy]\n  include:\n"
                              "    - {style: calm, prompt: a calm sea}\n"
                              "    - {style: stormy, prompt: a stormy sea}\n", prompt=None)
    path.write_text(path.read_text().replace("prompt: None\n", ""))
    assert validate_files([path]).lines() == [f"{path}: ok, 2 cells"]


def test_a_model_axis_is_left_to_the_multi_model_sweep(tmp_path: Path) -> None:
    """`model` is never reported as an axis nothing reads (it names each cell's model)."""
    path = manifest(tmp_path, f"  light: [dawn]\n  model: [{MODEL}]\n")
    path.write_text(path.read_text().replace(f"model: {MODEL}\n", "", 1))
    problems = ProblemList()
    assert check_matrix(load_manifest(path), problems) == set()
    assert not problems.errors()


def test_rows_columns_no_request_needs_are_allowed(tmp_path: Path) -> None:
    """A data file may carry columns (notes, ids) that no request reads."""
    path = manifest(tmp_path, "  rows: [{light: dawn, note: first}, {light: dusk, note: x}]\n")
    assert validate_files([path]).lines() == [f"{path}: ok, 2 cells"]


def test_template_variables_come_from_every_template(tmp_path: Path) -> None:
    """The prompt, templated inputs and templated input values of axes and includes count."""
    path = manifest(tmp_path, "  light: [dawn]\n  number_of_frames: ['{{ frames }}']\n"
                              "  include:\n    - {light: dawn, prompt: '{{ mood }}'}\n")
    path.write_text(path.read_text().replace("[img.png]", "['{{ folder }}/img.png']"))
    assert {"light", "folder", "mood", "frames"} <= template_variables(load_manifest(path))
