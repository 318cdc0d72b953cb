"""A body is checked once per distinct shape: the free integers of a schema (a seed within its
bounds) need no new check, and a value out of bounds is still found and reported as ever."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from imagefiles import MODEL, write_image, write_manifest
from testmodels import IMAGE, project

from pipeline.errors import ManifestError
from pipeline.prepare.plan import build_plan
from pipeline.prepare.validate import RequestValidator, free_integers

SEED = {"type": "integer", "minimum": 0, "maximum": 1000}


def schema(**extra: Any) -> dict[str, Any]:
    return {"type": "object", "required": ["prompt", "seed"],
            "properties": {"prompt": {"type": "string"}, "seed": dict(SEED)}, **extra}


FREE = [
    pytest.param(schema(), {"seed": (0, 1000)}, id="bounded-integer"),
    pytest.param({"properties": {"seed": {"type": "integer", "title": "Seed"}}},
                 {"seed": (-float("inf"), float("inf"))}, id="no-bounds"),
    pytest.param({"properties": {"seed": {**SEED, "enum": [1, 2]}}}, {}, id="enum"),
    pytest.param({"properties": {"seed": {**SEED, "exclusiveMaximum": 9}}}, {}, id="exclusive"),
    pytest.param({"properties": {"seed": {"type": "number"}}}, {}, id="number"),
    pytest.param({"properties": {"seed": {"type": ["integer", "null"]}}}, {}, id="type-list"),
    pytest.param(schema(**{"if": {"properties": {"seed": {"const": 3}}},
                           "then": {"required": ["x"]}}), {}, id="if-names-it"),
    pytest.param(schema(dependencies={"seed": ["prompt"]}), {}, id="dependencies"),
    pytest.param(schema(allOf=[{"required": ["seed"]}]), {}, id="required-elsewhere"),
    pytest.param(schema(patternProperties={"^s": {"maximum": 5}}), {}, id="patternProperties"),
    pytest.param(schema(anyOf=[{"additionalProperties": {"type": "string"}}]), {},
                 id="additionalProperties-schema"),
    pytest.param(schema(additionalProperties=False), {"seed": (0, 1000)},
                 id="additionalProperties-false"),
    pytest.param(schema(oneOf=[{"const": {"prompt": "a", "seed": 1}}, {}]), {}, id="const"),
    pytest.param({"properties": {"seed": {"$ref": "#/definitions/s"}},
                  "definitions": {"s": SEED}}, {}, id="ref"),
]


@pytest.mark.parametrize("given,expected", FREE)
def test_free_integers_come_from_the_schema(given: dict[str, Any],
                                            expected: dict[str, Any]) -> None:
    """Only a plain integer with bounds that nothing else in the schema names is free."""
    assert free_integers(given) == expected


def bounded_seed_project(tmp_path: Path) -> Path:
    """A project whose image model's seed is bounded: 0 to 1000."""
    root = project(tmp_path, with_models=True)
    path = root / "models" / IMAGE / "input.schema.json"
    data = json.loads(path.read_text())
    data["properties"]["seed"].update(minimum=0, maximum=1000)
    path.write_text(json.dumps(data))
    return root


def test_an_out_of_bounds_seed_among_many_is_reported(tmp_path: Path) -> None:
    """One cell of 1,001 with a seed past the schema's maximum is reported, with its location and
    the same message the schema check gives, though the 1,000 before it share its shape."""
    root = bounded_seed_project(tmp_path)
    manifest = write_manifest(root, f"""
        name: bounds
        model: {IMAGE}
        prompt: "boats"
        matrix:
          seed: {{from: 1, to: 1001}}
        """)
    with pytest.raises(ManifestError) as info:
        build_plan(manifest)
    [line] = info.value.lines()
    assert "seed: 1001 is greater than the maximum of 1000" in line, line
    assert "{seed=1001}" in line and f"{manifest}:5:" in line, line


def test_a_sweep_is_checked_once_per_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """3 takes x 50 seeds: the schema check runs 3 times (once per prompt), not 150; and the
    bounded project model the same, 2 shapes x 40 seeds: 2 checks."""
    calls: list[dict[str, Any]] = []
    check = RequestValidator.check

    def spy(self: RequestValidator, request: dict[str, Any]) -> Any:
        calls.append(request)
        return check(self, request)

    monkeypatch.setattr(RequestValidator, "check", spy)
    write_image(tmp_path / "img.png", 640, 480)
    manifest = write_manifest(tmp_path, f"""
        name: sweep
        model: {MODEL}
        prompt: "boats, take {{{{ take }}}}"
        inputs:
          image_urls: [img.png]
        matrix:
          take: [1, 2, 3]
          seed: {{from: 1, to: 50}}
        """)
    assert len(build_plan(manifest).cells) == 150
    assert sorted(c["prompt"] for c in calls) == [f"boats, take {t}" for t in (1, 2, 3)]

    calls.clear()
    root = bounded_seed_project(tmp_path / "p")
    manifest = write_manifest(root, f"""
        name: bounded
        model: {IMAGE}
        prompt: "boats"
        matrix:
          aspect_ratio: ["1:1", "16:9"]
          seed: {{from: 1, to: 40}}
        """)
    assert len(build_plan(manifest).cells) == 80
    assert len(calls) == 2


def test_invalid_bodies_are_checked_each_time(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A body with a problem is never taken as known: each is checked and keeps its messages;
    a seed out of bounds, or no integer, is no free value."""
    from pipeline.models.catalogue import Model
    from pipeline.prepare.images import ImageInspector

    model = Model(id="t/m", input_schema=schema(), price={}, schema_sha256="", meta={})
    validator = RequestValidator(model, ImageInspector(tmp_path))
    checked: list[Any] = []
    check = validator.check
    monkeypatch.setattr(validator, "check", lambda r: checked.append(r) or check(r))
    assert validator.errors({"prompt": "a", "seed": 1}) == []
    assert validator.errors({"prompt": "a", "seed": 1000}) == []
    assert len(checked) == 1
    assert validator.errors({"prompt": "a", "seed": 7.0}) == []  # JSON Schema's integer
    assert len(checked) == 2  # yet no int: checked
    for body in ({"prompt": "a", "seed": 1001}, {"prompt": "a", "seed": -1},
                 {"prompt": "a", "seed": True},
                 {"prompt": "a", "seed": "3"}, {"prompt": 5, "seed": 3}):
        for _ in range(2):
            assert validator.errors(body) == check(body) != [], body
    assert validator.errors({"prompt": "a"}) == [(("seed",), "missing required input 'seed'")]
