"""The acceptance of `pipeline review` in headless Chromium (Debian's, through Playwright):
two raters vote twelve times each at once through /rank, blind; the votes land in
ratings.jsonl (no pair twice for a rater); the report then scores every voted cell and
`pipeline picks --top 3` writes the three best; a star pressed in the served page is in
picks.jsonl within two seconds and shows in another browser; a vote without the key is
refused."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import browsers
import jsonschema
import pytest
from reviewjobs import make_project, run_job

from pipeline.cli import main
from pipeline.job.ratings import read_votes
from pipeline.review import ReviewServer
from pipeline.review.pairs import pair_key

VOTES = 12
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="module")
def _browser() -> None:
    """Chromium and Playwright are there (else skipped here, failed in CI)."""
    browsers.require()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review")
    run_job(make_project(root))
    return root


@pytest.fixture(scope="module")
def server(project: Path):
    with ReviewServer(project / "outputs" / "preview", project / "jobs" / "picks.jsonl",
                      seed=3) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    yield from browsers.chromium("--autoplay-policy=no-user-gesture-required")


def watched(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


BOTH_PLAYING = ("() => { const v = Array.from(document.querySelectorAll('.side video'));"
                " return v.length === 2 && v.every(x => x.readyState >= 2 && !x.paused); }")
LEFT = "() => (document.querySelector('[data-side=left] video') || {}).src || ''"


def test_two_raters_rank_blind_at_once(server: ReviewServer, project: Path, browser,
                                       capsys: pytest.CaptureFixture) -> None:
    """Two raters, twelve votes each, interleaved; nothing on screen names a shown cell."""
    cells = {c["id"]: c for c in json.loads(
        (project / "outputs" / "preview" / "report.json").read_text())["cells"]}
    pages, problems = {}, []
    for rater in ("ana", "ben"):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        problems += watched(page)
        page.goto(f"{server.base_url}/rank?rater={rater}&key={server.review.key}")
        pages[rater] = page
    rng = random.Random(9)
    for _ in range(VOTES):
        shown = {}
        for rater, page in pages.items():
            page.wait_for_function(BOTH_PLAYING, timeout=20_000)
            pair = server.review.pairs[server.review.showing[rater]]
            text = page.inner_text("body")
            for cid in (pair.left, pair.right):
                c = cells[cid]
                assert str(c["seed"]) not in text and c["label"] not in text
                assert c["values"]["caption"] not in text and cid[:6] not in text
            assert "clip/" in page.evaluate(LEFT)  # an opaque token, no file name
            shown[rater] = page.evaluate(LEFT)
            page.keyboard.press(rng.choice(["ArrowLeft", "ArrowRight", "ArrowDown"]))
        for rater, page in pages.items():  # both votes are in flight together
            page.wait_for_function(f"() => ({LEFT})() !== {json.dumps(shown[rater])}",
                                   timeout=20_000)
    votes = read_votes(server.review.folder.ratings)
    assert len(votes) == 2 * VOTES and {v["rater"] for v in votes} == {"ana", "ben"}
    for rater in ("ana", "ben"):
        mine = [pair_key(v["a"], v["b"]) for v in votes if v["rater"] == rater]
        assert len(mine) == VOTES == len(set(mine))
    assert problems == []

    # the report scores every voted cell; picks --top 3 writes the three best
    manifest = str(project / "jobs" / "preview.yaml")
    assert main(["report", manifest]) == 0
    report = json.loads((project / "outputs" / "preview" / "report.json").read_text())
    voted = {v[k] for v in votes for k in ("a", "b")}
    rated = {c["id"]: c["rating"] for c in report["cells"] if "rating" in c}
    assert set(rated) == voted and all(isinstance(r["score"], float) for r in rated.values())
    assert "## Ratings" in (project / "outputs" / "preview" / "report.md").read_text()
    schema = json.loads((REPO / "schemas" / "report.schema.json").read_text(encoding="utf-8"))
    assert [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(report)] == []
    assert report["ratings"]["votes"] == 2 * VOTES and len(report["ratings"]["top"]) == 10
    capsys.readouterr()
    assert main(["picks", manifest, "--top", "3"]) == 0
    best = sorted(rated, key=lambda i: rated[i]["rank"])[:3]
    picks = [json.loads(x) for x in (project / "jobs" / "picks.jsonl").read_text().splitlines()]
    assert [p["cell"] for p in picks] == best
    capsys.readouterr()
    assert main(["picks", manifest, "--ratings"]) == 0
    ranking = capsys.readouterr().out.splitlines()
    assert len(ranking) == len(voted) and best[0] in ranking[0]
    for page in pages.values():
        page.context.close()


def test_a_star_in_the_served_page_is_in_picks_jsonl_within_two_seconds(
        server: ReviewServer, project: Path, browser) -> None:
    """A star pressed in one browser is in picks.jsonl (with who picked) within 2 s, and
    another browser shows it starred."""
    picks = project / "jobs" / "picks.jsonl"
    picks.unlink(missing_ok=True)
    one = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    other = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    problems = watched(one) + watched(other)
    one.goto(f"{server.base_url}/?key={server.review.key}&rater=ana")
    other.goto(f"{server.base_url}/?key={server.review.key}&rater=ben")
    tile = one.locator(".grid .tile").nth(4)
    cid = tile.get_attribute("data-id")
    started = time.monotonic()
    tile.locator(".star").click()
    while time.monotonic() - started < 2.0:
        if picks.exists() and cid in picks.read_text():
            break
        time.sleep(0.05)
    assert picks.exists() and cid in picks.read_text(), "not in picks.jsonl within 2 s"
    assert json.loads(picks.read_text().splitlines()[0])["by"] == "ana"
    other.wait_for_function(f"() => document.querySelector('#cell-{cid} .star')"
                            ".getAttribute('aria-pressed') === 'true'", timeout=5_000)
    assert problems == []
    one.context.close()
    other.context.close()


def test_a_vote_without_the_key_is_refused(server: ReviewServer, browser) -> None:
    """/rank without the key answers 403; a vote posted from a page without it too; no vote
    is written."""
    before = server.review.folder.ratings.read_bytes() \
        if server.review.folder.ratings.exists() else b""
    page = browser.new_page()
    assert page.goto(f"{server.base_url}/rank?rater=eve").status == 403
    status = page.evaluate("fetch('/api/rank/vote', {method: 'POST', headers: {'Content-Type':"
                           " 'application/json'}, body: JSON.stringify({pair: 'x', winner: "
                           "'left'})}).then(r => r.status)")
    assert status == 403
    after = server.review.folder.ratings.read_bytes() \
        if server.review.folder.ratings.exists() else b""
    assert after == before
    page.close()
