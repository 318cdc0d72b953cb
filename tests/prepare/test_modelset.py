"""Several models in one manifest (pipeline.prepare.modelset and the per-model expansion):
which model each cell is for, what each model is sent, and every way of getting it wrong,
each a located one-line problem. Also: the project's models folder, and catalog schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from imagefiles import MODEL, write_image, write_manifest
from runjobs import REPO
from testmodels import DREAMINA, IMAGE, VIDEO, project

from pipeline.errors import ManifestError
from pipeline.models.catalogue import Model, load_model
from pipeline.prepare.images import ImageInspector
from pipeline.prepare.manifest import load_manifest
from pipeline.prepare.plan import build_plan, validate_files
from pipeline.prepare.validate import RequestValidator

# Cell ids of the checked-in jobs as the version before several models per sweep made them:
# a one-model manifest must keep its ids, or resuming an old job would pay again.
IDS_BEFORE = {
    "demo.yaml": ["40cb992caf84f42c", "3c2f3724c9f1753d", "b64c7b0bdb53a50b",
                  "4f6e5a6355b6ded3"],
    "harbor-sweep.yaml": ["7196accbd9a8192d", "dd6b31dbede6ce6c", "f4cb52f89520a168"],
    "dataset.yaml": ["9715adc978d95eda", "5685c90eee20ef6d", "252b6c9c159620bb"],
}


@pytest.mark.parametrize("job", sorted(IDS_BEFORE))
def test_one_model_cell_ids_are_unchanged(job: str) -> None:
    """The checked-in one-model jobs expand to the very cell ids they had before."""
    plan = build_plan(REPO / "jobs" / job, fetch_remote=False)
    expected = IDS_BEFORE[job]
    assert [c.id for c in plan.cells[:len(expected)]] == expected
    assert all(c.model == MODEL and "model" not in c.values for c in plan.cells)


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = project(tmp_path, with_models=True)
    write_image(root / "img.png", 640, 480)
    return root


def test_a_model_axis_with_include_and_exclude(proj: Path) -> None:
    """`matrix: {model: [...]}` is an axis like any other: exclude and include can name a
    model, and each cell's request has only its own model's inputs."""
    manifest = write_manifest(proj, f"""
        name: axis
        prompt: "boats {{{{ model }}}}"
        model_inputs:
          {DREAMINA}: {{image_urls: [img.png]}}
          {VIDEO}: {{image_url: img.png}}
        matrix:
          model: [{DREAMINA}, {VIDEO}]
          seed: [1, 2]
          exclude:
            - {{model: {VIDEO}, seed: 2}}
          include:
            - {{model: {IMAGE}, seed: 7}}
        """)
    plan = build_plan(manifest)
    got = [(c.model, c.values["seed"]) for c in plan.cells]
    assert got == [(DREAMINA, 1), (DREAMINA, 2), (VIDEO, 1), (IMAGE, 7)]
    image_cell = plan.cells[-1]
    assert image_cell.request["prompt"] == f"boats {IMAGE}" and "image_url" not in \
        image_cell.request
    assert plan.cells[0].label.startswith("model=bytedance/dreamina")
    m = plan.manifest
    assert m.is_input("duration") and not m.is_input("duration", DREAMINA)
    assert m.is_input("image_urls", DREAMINA) and not m.is_input("light")


def broken(proj: Path, body: str) -> list[str]:
    path = write_manifest(proj, "name: broken\n" + body, "broken.yaml")
    return validate_files([path]).lines()


@pytest.mark.parametrize("body,where,text", [
    (f"model: [{DREAMINA}, acme/nope]\nprompt: x\ninputs: {{image_urls: [img.png]}}\n",
     "2:48", "no schema for model 'acme/nope'; known models: acme/motion-2"),
    (f"model: {DREAMINA}\nmatrix:\n  model: [{VIDEO}]\n", "4:3",
     "model is both set at the top level and swept in matrix; keep one"),
    ("prompt: x\n", "1:1", "missing required key 'model'"),
    (f"model: [{DREAMINA}, {VIDEO}]\nprompt: x\nmodel_inputs:\n  acme/motion-3/image-to-video:"
     " {duration: 5}\n", "5:3", f"is not a model of this sweep (did you mean '{VIDEO}'?)"),
    (f"model: [{DREAMINA}, {VIDEO}]\nprompt: x\nmodel_inputs:\n  {VIDEO}: {{image_urls: [a]}}\n",
     "5:34", f"unknown input 'image_urls' for {VIDEO} (did you mean 'image_url'?)"),
    (f"model: [{DREAMINA}, {VIDEO}]\nprompt: x\ninputs:\n  resolution: 720P\nmodel_inputs:\n"
     f"  {VIDEO}: {{drop: [resolutoin]}}\n", "7:41",
     "drop: 'resolutoin' is not sent by this manifest (not in inputs, the prompt, the matrix, "
     "include or rows) (did you mean 'resolution'?)"),
    (f"model: [{DREAMINA}, {VIDEO}]\nprompt: x\nmodel_inputs:\n  {VIDEO}: {{duration: 5, drop: "
     "[duration]}\n", "5:54", "'duration' is both set and dropped"),
    (f"prompt: x\nmatrix:\n  model: [{DREAMINA}, {VIDEO}]\n  seed: [1, 2]\n  include:\n"
     "    - {seed: 9}\n", "7:", "this combination names no model: give it `model: ID`"),
    (f"model: [{DREAMINA}, {VIDEO}]\nprompt: x\nrun:\n  price:\n    acme/other: {{unit: output,"
     " usd: 1}\n", "6:5", "run.price: 'acme/other' is not a model of this sweep"),
    (f"model: [{DREAMINA}, {VIDEO}]\nprompt: x\ninputs:\n  colour: red\n", "5:3",
     "unknown input 'colour' for any model of this sweep"),
    (f"model: [{DREAMINA}, {VIDEO}]\nprompt: x\nmodel_inputs:\n  {DREAMINA}: {{image_urls: "
     f"[img.png]}}\n  {VIDEO}: {{image_url: img.png}}\nmatrix:\n  number_of_frames: [121, 241]\n",
     "8:22", f"'number_of_frames' is not an input of {VIDEO}"),
    (f"model: [{DREAMINA}, {IMAGE}]\nprompt: x\ninputs:\n  image_urls: [img.png]\n", "5:15",
     f"map it in model_inputs.{IMAGE}, or list it under model_inputs.{IMAGE}.drop"),
], ids=["unknown-model", "model-twice", "no-model", "model-inputs-model", "model-inputs-input",
        "drop-typo", "set-and-dropped", "include-without-model", "price-of-other-model",
        "input-of-no-model", "axis-unmapped", "shared-input-unmapped"])
def test_multi_model_mistakes_are_located_problems(proj: Path, body: str, where: str,
                                                   text: str) -> None:
    """Each way of naming models or their inputs wrongly is one located problem naming the
    model and the input; nothing is dropped silently."""
    lines = broken(proj, body)
    assert any(text in line and f"broken.yaml:{where}" in line for line in lines), lines


def test_a_dropped_input_is_not_sent_and_needs_no_mapping(proj: Path) -> None:
    """Listing a shared input under a model's `drop` sends it to the others only."""
    path = write_manifest(proj, f"""
        name: dropped
        model: [{DREAMINA}, {IMAGE}]
        prompt: a lighthouse
        inputs:
          image_urls: [img.png]
          seed: 4
        model_inputs:
          {IMAGE}: {{drop: [image_urls]}}
        """)
    plan = build_plan(path)
    requests = {c.model: c.request for c in plan.cells}
    assert requests[DREAMINA]["image_urls"] == ["img.png"]
    assert "image_urls" not in requests[IMAGE] and requests[IMAGE]["seed"] == 4


def test_a_project_model_is_found_before_the_bundled_one(proj: Path) -> None:
    """A model in the project's models/ folder shadows a bundled one of the same id, and a
    manifest of that project uses it (its schema hash says which)."""
    bundled = load_model(DREAMINA)
    own = proj / "models" / DREAMINA
    own.mkdir(parents=True)
    (own / "input.schema.json").write_text(
        '{"type": "object", "required": ["prompt"], "properties": {"prompt": {"type": '
        '"string"}, "image_urls": {"type": "array"}}}')
    mine = load_model(DREAMINA, proj)
    assert (bundled.source, mine.source) == ("bundled", "project")
    assert mine.schema_sha256 != bundled.schema_sha256
    path = write_manifest(proj, f"name: own\nmodel: {DREAMINA}\nprompt: x\n")
    assert load_manifest(path).model.schema_sha256 == mine.schema_sha256
    with pytest.raises(ManifestError, match="known models: acme/motion-2"):
        load_manifest(write_manifest(proj, "name: x\nmodel: acme/unknown\n", "x.yaml"))


def _validator(tmp_path: Path, schema: dict) -> RequestValidator:
    model = Model("t/m", schema, {"unit": "unknown"}, "0" * 64, {})
    return RequestValidator(model, ImageInspector(tmp_path, fetch_remote=False))


def test_the_validator_reads_catalog_schemas(tmp_path: Path) -> None:
    """"type": "float" is a number; `format: image_uris` on an array checks each image;
    a video input must be a URL or data: URI; a prompt limit written in the description holds
    also for schemas with cross-field keywords."""
    write_image(tmp_path / "ok.png", 640, 480)
    (tmp_path / "not.png").write_bytes(b"no image here")
    v = _validator(tmp_path, {
        "type": "object", "allOf": [{"required": ["prompt"]}],
        "properties": {
            "prompt": {"type": "string", "description": "at most 10 characters"},
            "scale": {"type": "float"},
            "refs": {"type": "array", "format": "image_uris", "items": {"type": "string"}},
            "clip": {"type": "string", "format": "video_uri"},
        }})
    assert v.errors({"prompt": "ok", "scale": 1.5, "refs": ["ok.png"],
                     "clip": "https://x.invalid/a.mp4"}) == []
    problems = dict(v.errors({"prompt": "x" * 11, "scale": "1.5", "refs": ["ok.png", "not.png"],
                              "clip": "a.mp4"}))
    assert "expected float" in problems[("scale",)]
    assert "not a readable image" in problems[("refs",)]
    assert "video and audio inputs are sent as https URLs" in problems[("clip",)]
    assert "11 characters" in problems[("prompt",)]


def test_an_axis_read_only_by_a_model_inputs_template_is_used(proj: Path) -> None:
    """A variable that only one model's `model_inputs` read is still read: its axis is not
    reported as unused, and only that model's requests change with it."""
    path = write_manifest(proj, f"""
        name: mapped
        model: [{DREAMINA}, {VIDEO}]
        prompt: boats
        model_inputs:
          {DREAMINA}: {{image_urls: [img.png]}}
          {VIDEO}: {{image_url: img.png, duration: "{{{{ length }}}}"}}
        matrix:
          length: [5, 10]
          include:
            - {{model: {DREAMINA}, length: 5}}
          exclude:
            - {{model: {DREAMINA}, length: 10}}
        """)
    plan = build_plan(path)
    assert [(c.model, c.request.get("duration")) for c in plan.cells] == [
        (DREAMINA, None), (VIDEO, 5), (VIDEO, 10)]


def test_plan_of_a_sweep_hides_dropped_inputs_and_times_every_model(proj: Path) -> None:
    """`plan` on a sweep: a value a model drops shows as not sent (—) in that model's rows,
    and a model with no typical time of its own (one `pipeline models add` wrote) is timed
    with the sweep's guess, so the ETA is known whenever a time per cell is shown."""
    from pipeline.job.folder import JobFolder
    from pipeline.job.forecast import forecast
    from pipeline.job.plan_table import plan_table
    from pipeline.run.prices import price_now

    (proj / "models" / VIDEO / "model.json").unlink()  # no generation_seconds.typical
    path = write_manifest(proj, f"""
        name: dropped-shown
        model: [{DREAMINA}, {VIDEO}, {IMAGE}]
        prompt: "{{{{ caption }}}}"
        inputs:
          image_urls: [img.png]
          seed: 4
        model_inputs:
          {VIDEO}: {{image_url: img.png, drop: [image_urls]}}
          {IMAGE}: {{drop: [image_urls, resolution]}}
        matrix:
          rows:
            - {{caption: boats, resolution: 720P}}
            - {{caption: gulls, resolution: 480P}}
          exclude:
            - {{model: {DREAMINA}, resolution: 480P}}
        """)
    plan = build_plan(path)
    folder = JobFolder(proj / "outputs" / "dropped-shown")
    table = plan_table(forecast(plan, price_now(plan.manifest, folder, offline=True), folder),
                       width=200)
    rows = {(line.split()[2], line.split()[3]): line.split()[4] for line in table.splitlines()
            if line[:1].isdigit()}
    assert rows[("bytedance/dreamina-3-0/image-to-video", "boats")] == "720P"
    assert rows[("acme/motion-2/image-to-video", "gulls")] == "480P"
    assert rows[("acme/still-1/text-to-image", "boats")] == "—"
    duration = next(line for line in table.splitlines() if "estimated duration" in line)
    assert "unknown" not in duration and "s per cell" in duration, duration
