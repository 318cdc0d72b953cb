"""Any model of the catalog, several side by side: `pipeline models add` from the simulator's
catalog, a three-model sweep validated per model, run on the simulator and reported with
`model` on an axis, and `pipeline models check` seeing a schema drift and a refused token.

The two example models (the repository's models/, see tests/testmodels.py) are served by a real
simulator on an ephemeral port (`models_dirs`); the commands run as subprocesses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from runjobs import env_for, pipeline_cmd
from testmodels import DREAMINA, FIXTURES, IMAGE, VIDEO, project, side_by_side

from pipeline import __version__
from pipeline.api import RunOptions, run_plan
from pipeline.errors import ModelNotFound
from pipeline.models.catalogue import META, META_FORMAT, read_model
from pipeline.prepare.plan import build_plan

FAST = dict(gen_time=(0.05, 0.2), fetch_timeout=0.0, seed=3)


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(pipeline_cmd(*args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def served(tmp_path: Path, sim_factory):
    """A simulator serving a copy of the test models, and a project folder (no models yet)."""
    catalog = tmp_path / "catalog"
    shutil.copytree(FIXTURES, catalog)
    sim = sim_factory(models_dirs=(str(catalog),), **FAST)
    root = project(tmp_path / "proj")
    return sim, root, catalog


def test_models_add_writes_the_catalog_entry_into_the_project(served) -> None:
    """`pipeline models add` against the simulator writes each model's schema unchanged, its
    output schema, its price as a price sheet and where it came from; `models list` then
    shows them as project models."""
    sim, root, catalog = served
    env = env_for(sim.base_url)
    proc = cli("models", "add", VIDEO, IMAGE, cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("added:") == 2
    for model_id, price in ((VIDEO, {"unit": "second", "usd": 0.08}),
                            (IMAGE, {"unit": "output", "usd": 0.02})):
        folder = root / "models" / model_id
        assert json.loads((folder / "input.schema.json").read_text()) == \
            json.loads((catalog / model_id / "input.schema.json").read_text())
        assert json.loads((folder / "output.schema.json").read_text()) == \
            json.loads((catalog / model_id / "output.schema.json").read_text())
        assert json.loads((folder / "price.json").read_text()).items() >= price.items()
        meta = json.loads((folder / "model.json").read_text())
        assert meta["source"] == f"{sim.base_url}/v1/models/{model_id}" and meta["fetched_at"]
        assert meta["format"] == META_FORMAT and meta["pipeline"] == __version__
    listed = json.loads(cli("models", "list", "--json", cwd=root, env=env).stdout)
    assert {(m["id"], m["source"], m["kind"]) for m in listed} == {
        (VIDEO, "project", "video"), (IMAGE, "project", "image"), (DREAMINA, "bundled", "video")}
    offered = json.loads(cli("models", "list", "--catalog", "--search", "acme", "--json",
                             cwd=root, env=env).stdout)
    assert [(m["id"], m["price_usd"], m["price_unit"]) for m in offered] == [
        (VIDEO, 0.08, "second"), (IMAGE, 0.02, "output")]
    unknown = cli("models", "add", "acme/nope", cwd=root, env=env)
    assert unknown.returncode == 1 and "acme/nope" in unknown.stderr + unknown.stdout


def test_model_json_of_an_unknown_format_is_refused_by_name(tmp_path: Path) -> None:
    """A model's model.json in a format this version does not read makes the model unusable,
    with the file and what to do; one written before model.json had a format reads."""
    folder = tmp_path / VIDEO
    shutil.copytree(FIXTURES / VIDEO, folder)
    legacy = json.loads((folder / META).read_text())
    assert "format" not in legacy  # the fixture: written before model.json had a format
    assert read_model(folder, VIDEO, "project").typical_s == legacy["generation_seconds"][
        "typical"]
    (folder / META).write_text(json.dumps({**legacy, "format": META_FORMAT + 1}))
    with pytest.raises(ModelNotFound, match=rf"{VIDEO}.*model\.json is in format "
                                            rf"{META_FORMAT + 1}.*`pipeline models add "
                                            rf"{VIDEO}`") as caught:
        read_model(folder, VIDEO, "project")
    assert caught.value.exit_code == 2


def test_three_models_side_by_side(served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three models in one sweep: each cell is validated against its own model (a dropped
    input is not sent; an unmapped one is an error naming the model, the input and its line),
    runs on the simulator, is priced at its own model's price, and the report puts `model` on
    the grid's columns with a summary per model."""
    sim, root, _ = served
    env = env_for(sim.base_url)
    assert cli("models", "add", VIDEO, IMAGE, cwd=root, env=env).returncode == 0
    manifest = side_by_side(root)
    checked = cli("validate", str(manifest), cwd=root, env=env)
    assert checked.returncode == 0, checked.stderr
    assert "ok, 6 cells" in checked.stdout

    unmapped = side_by_side(root, drop="[image_urls]", name="unmapped.yaml")
    refused = cli("validate", str(unmapped), cwd=root, env=env)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"{unmapped}:6:15: 'resolution' is not an input of {IMAGE}")
    assert f"model_inputs.{IMAGE}.drop" in line and "affects 2 cells" in line

    plan = build_plan(manifest)
    requests = {(c.model, c.values["seed"]): c.request for c in plan.cells}
    assert requests[(DREAMINA, 1)]["image_urls"] == ["boats.png"]
    assert requests[(VIDEO, 1)]["image_url"] == "boats.png" and "image_urls" not in \
        requests[(VIDEO, 1)]
    assert [requests[(VIDEO, s)]["duration"] for s in (1, 2)] == [5, 10]
    assert requests[(VIDEO, 1)]["cfg_scale"] == 0.5  # the "float" default
    assert not {"image_urls", "resolution"} & set(requests[(IMAGE, 1)])
    assert len({c.id for c in plan.cells}) == 6

    monkeypatch.setenv("RUNCOMFY_BASE_URL", sim.base_url)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", env["RUNCOMFY_API_TOKEN"])
    out = root / "outputs" / "side-by-side"
    summary = run_plan(plan, RunOptions(progress=False))
    assert summary.exit_code == 0 and summary.counts["done"] == 6
    assert summary.spent == pytest.approx(0.50 + 0.40 + 0.80 + 0.04)

    report = json.loads((out / "report.json").read_text())
    assert report["axes"][0] == {"name": "model", "values": [DREAMINA, VIDEO, IMAGE]}
    by_model = {m["id"]: m for m in report["models"]}
    assert {k: (m["cells"], m["by_state"]["done"], m["failed"], m["spent_usd"])
            for k, m in by_model.items()} == {DREAMINA: (2, 2, 0, 0.5), VIDEO: (2, 2, 0, 1.2),
                                              IMAGE: (2, 2, 0, 0.04)}
    assert all(m["generation_s"]["n"] == 2 for m in by_model.values())
    for cell in report["cells"]:
        assert cell["model"] == cell["values"]["model"]
        suffixes = [Path(f["path"]).suffix for f in cell["files"]]
        if cell["model"] == IMAGE:
            assert suffixes == [".png", ".png"]  # num_images: 2, both downloaded
            with Image.open(out / cell["files"][0]["path"]) as im:
                assert im.format == "PNG" and im.size[0] > im.size[1]  # 16:9
        else:
            assert suffixes == [".mp4"]
            length = 10 if cell["values"]["seed"] == 2 and cell["model"] == VIDEO else 5
            assert abs(cell["files"][0]["probe"]["duration_s"] - length) < 0.5
    html = (out / "report.html").read_text()
    data = json.loads(html.split('<script type="application/json" id="report-data">', 1)[1]
                          .split("</script>", 1)[0])
    assert data["settings"]["cols"] == "model"  # models side by side by default
    md = (out / "report.md").read_text()
    assert "## Models" in md and f"| `{VIDEO}` | 2 | 2 | 0 | $1.20 |" in md
    status = json.loads(cli("status", str(manifest), "--json", cwd=root, env=env).stdout)
    assert status["models"][IMAGE]["spent_usd"] == 0.04
    assert sim.stats()["submissions_accepted"] == 6


def test_models_check_reports_drift_and_a_refused_token(served, sim_factory) -> None:
    """`pipeline models check` says the token works, the price, and that each schema matches;
    once the simulator's schema of a model changes it reports the drift (exit 1); a refused
    token is one line and exit 2."""
    sim, root, catalog = served
    env = env_for(sim.base_url)
    assert cli("models", "add", VIDEO, cwd=root, env=env).returncode == 0
    ok = cli("models", "check", VIDEO, cwd=root, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"token: accepted by {sim.base_url}" in ok.stdout
    assert f"{VIDEO}: price: $0.08 per second (catalog)" in ok.stdout
    assert f"{VIDEO}: schema: matches" in ok.stdout
    assert f"balance: $1,000,000.00 (the account's wallet, {sim.base_url})" in ok.stdout

    schema_file = catalog / VIDEO / "input.schema.json"
    schema = json.loads(schema_file.read_text())
    schema["properties"]["duration"]["enum"] = [5, 10, 15]
    schema["properties"]["motion"] = {"type": "string", "enum": ["low", "high"]}
    schema_file.write_text(json.dumps(schema, indent=2))
    drift = cli("models", "check", cwd=root, env=env)  # every model: the drift is found
    assert drift.returncode == 1
    [line] = [ln for ln in drift.stdout.splitlines() if "schema: DRIFT" in ln]
    assert line.startswith(f"{VIDEO}: schema: DRIFT") and "inputs added: motion" in line
    assert "duration (enum)" in line and f"pipeline models add {VIDEO}" in line
    assert f"{DREAMINA}: schema: matches (bundled" in drift.stdout

    locked = sim_factory(models_dirs=(str(catalog),), token="the-only-token", **FAST)
    refused = cli("models", "check", cwd=root, env=env_for(locked.base_url, token="wrong-1234"))
    assert refused.returncode == 2
    [line] = refused.stdout.strip().splitlines()  # one line, and no traceback
    assert line.startswith(f"token: refused by {locked.base_url}") and "401" in line
    assert "wrong-1234" not in refused.stdout + refused.stderr


def test_models_check_reports_a_price_that_differs_from_the_stored_one(served) -> None:
    """A catalog price that differs from the stored price.json is drift (exit 1), as a
    schema is: the bundled Dreamina's stored price is unknown while the simulator states one,
    and a project model whose stored price was edited differs from its catalog entry."""
    sim, root, _ = served
    env = env_for(sim.base_url)
    bundled = cli("models", "check", DREAMINA, cwd=root, env=env)
    assert bundled.returncode == 1, bundled.stdout + bundled.stderr
    [line] = [ln for ln in bundled.stdout.splitlines() if ln.startswith(f"{DREAMINA}: price:")]
    assert "DRIFT" in line and "per second (catalog)" in line and "says unknown" in line, line
    assert f"pipeline models add {DREAMINA}" in line
    assert cli("models", "add", VIDEO, cwd=root, env=env).returncode == 0
    assert cli("models", "check", VIDEO, cwd=root, env=env).returncode == 0
    stored = root / "models" / VIDEO / "price.json"
    stored.write_text(json.dumps({"unit": "second", "usd": 0.05}))
    edited = cli("models", "check", VIDEO, cwd=root, env=env)
    assert edited.returncode == 1
    assert f"{VIDEO}: price: DRIFT: $0.08 per second (catalog), but the stored price.json" \
        in edited.stdout and "says $0.05 per second" in edited.stdout


def test_each_cell_reserves_its_own_models_price_on_the_built_in_simulator(
        tmp_path: Path) -> None:
    """`backend: sim` serves the project's models too, at their own prices; `plan` gives cost
    and time per model; under a budget each cell reserves its own model's estimate, so the run
    stops before the first cell of the dearer model that would cross it."""
    from imagefiles import write_image, write_manifest

    from pipeline.job.folder import JobFolder
    from pipeline.job.forecast import forecast
    from pipeline.job.plan_json import plan_json
    from pipeline.run.prices import price_now
    from pipeline.sim import SimConfig
    from pipeline.sim.config import BUILTIN_GEN_TIME

    root = project(tmp_path, with_models=True)
    write_image(root / "img.png", 640, 480)
    manifest = write_manifest(root, f"""
        name: budget
        backend: sim
        prompt: boats
        model_inputs:
          {DREAMINA}: {{image_urls: [img.png]}}
          {VIDEO}: {{image_url: img.png}}
        matrix:
          model: [{DREAMINA}, {VIDEO}]
          seed: [1, 2]
        run:
          concurrency: 1
          budget: 0.8
          polling: {{initial: 0.1, max: 0.3}}
        """)
    plan = build_plan(manifest)
    ahead = plan_json(forecast(plan, price_now(plan.manifest, JobFolder.of(plan.manifest))))
    per_model = {m["id"]: (m["estimated_usd"], m["per_cell_s"], m["source"])
                 for m in ahead["models"]}
    # priced at each model's own price; timed by the built-in simulator, which makes them
    sim_s = sum(BUILTIN_GEN_TIME) / 2
    assert per_model == {DREAMINA: (0.5, sim_s, "bundled"), VIDEO: (0.8, sim_s, "project")}
    summary = run_plan(plan, RunOptions(progress=False,
                                       sim=SimConfig(capacity=1, gen_time=(0.05, 0.1))))
    assert summary.counts["done"] == 2 and summary.counts["pending"] == 2
    assert summary.stopped == "committed $0.50 + next cell $0.40 = $0.90 > budget $0.80"


def test_an_image_model_cell_can_be_the_canary(tmp_path: Path, sim_factory,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """On the runcomfy backend the first cell proves the service; an image model's cell does
    so with its pictures (probed as images, not as videos), and the rest then runs."""
    from imagefiles import write_manifest
    from runjobs import TOKEN, journal_events

    sim = sim_factory(models_dirs=(str(FIXTURES),), **FAST)
    monkeypatch.setenv("RUNCOMFY_BASE_URL", sim.base_url)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKEN)
    root = project(tmp_path, with_models=True)
    manifest = write_manifest(root, f"""
        name: stills
        model: {IMAGE}
        prompt: "a lighthouse, take {{{{ seed }}}}"
        inputs: {{num_images: 2}}
        matrix:
          seed: [1, 2, 3]
        run:
          polling: {{initial: 0.1, max: 0.3}}
        """)
    summary = run_plan(build_plan(manifest), RunOptions(progress=False))
    assert summary.exit_code == 0 and summary.counts["done"] == 3
    [judged] = [e for e in journal_events(root / "outputs" / "stills") if e["e"] == "canary"]
    assert judged["ok"] and judged["model"] == IMAGE
    assert any(".png: a 256x256 png" in f for f in judged["findings"]), judged["findings"]


def test_each_model_of_a_sweep_has_its_own_canary(tmp_path: Path, sim_factory,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """On the runcomfy backend a three-model sweep sends one cell of each model first and
    nothing else until all three are judged; each model's bill (20% over its catalog price
    here) re-prices that model, and plan.json says so per model."""
    from runjobs import TOKEN, journal_events

    sim = sim_factory(models_dirs=(str(FIXTURES),), cost_factor=1.2, **FAST)
    monkeypatch.setenv("RUNCOMFY_BASE_URL", sim.base_url)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKEN)
    root = project(tmp_path, with_models=True)
    manifest = side_by_side(root)
    manifest.write_text(manifest.read_text().replace("seed: [1, 2]", "seed: [1, 2, 3]"))
    plan = build_plan(manifest)
    model_of = {c.id: c.model for c in plan.cells}
    summary = run_plan(plan, RunOptions(progress=False))
    assert summary.exit_code == 0 and summary.counts["done"] == 9
    events = journal_events(root / "outputs" / "side-by-side")
    assert next(e for e in events if e["e"] == "run")["canary"] == 3
    judged = [e for e in events if e["e"] == "canary"]
    assert sorted(e["model"] for e in judged) == sorted([DREAMINA, VIDEO, IMAGE])
    assert all(e["ok"] for e in judged)
    last = events.index(judged[-1])
    sent_first = [e["cell"] for e in events[:last] if e["e"] == "intent"]
    assert sorted(model_of[c] for c in sent_first) == sorted([DREAMINA, VIDEO, IMAGE])
    assert {e["cell"] for e in judged} == set(sent_first)
    assert len([e for e in events if e["e"] == "intent"]) == 9
    snapshot = json.loads((root / "outputs" / "side-by-side" / "plan.json").read_text())
    sources = {m["id"]: m["price"]["source"] for m in snapshot["models"]}
    assert all("x1.2 as the canary cell was billed" in s for s in sources.values()), sources


def test_the_docs_three_model_example_plans_and_runs_as_written(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The docs' "Several models side by side" example (docs/models.md) is
    jobs/three-ways.yaml, and it plans and runs on the simulator as written, in a copy of this
    repository's layout (its models/ with the two example models, jobs/ with its images)."""
    import re

    from pipeline.cli import main
    from pipeline.sim import SimConfig

    repo = FIXTURES.parent
    page = (repo / "docs" / "models.md").read_text(encoding="utf-8")
    section = page.split("## Several models side by side", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    shipped = (repo / "jobs" / "three-ways.yaml").read_text(encoding="utf-8")
    assert "".join(ln for ln in shipped.splitlines(True) if not ln.startswith("#")) == block
    root = project(tmp_path / "repo")
    shutil.copytree(repo / "models", root / "models")
    shutil.copytree(repo / "jobs" / "images", root / "jobs" / "images")
    manifest = root / "jobs" / "three-ways.yaml"
    manifest.write_text(block, encoding="utf-8")
    assert main(["plan", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "6 cells of 3 models on backend sim" in out and "unknown" not in out
    summary = run_plan(build_plan(manifest),
                       RunOptions(progress=False, sim=SimConfig(gen_time=(0.05, 0.2), seed=3)))
    assert summary.exit_code == 0 and summary.counts["done"] == 6
    assert summary.spent == pytest.approx(0.50 + 0.40 + 0.80 + 0.04)
