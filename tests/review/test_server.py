"""`pipeline review`'s server on an ephemeral port (real uvicorn): the page, the job's media,
the API with and without the key (a refused request changes no file), no path out of the job
folder, votes through /api/rank, new cells shown as a run finishes them, and the command's
first line (its URL)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from reviewjobs import make_project, run_job, snapshot

from pipeline.job.ratings import read_votes
from pipeline.review import ReviewServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    run_job(make_project(root))
    return root


@pytest.fixture
def server(project: Path):
    folder = project / "outputs" / "preview"
    folder.joinpath("ratings.jsonl").unlink(missing_ok=True)
    project.joinpath("jobs", "picks.jsonl").unlink(missing_ok=True)
    with ReviewServer(folder, project / "jobs" / "picks.jsonl", seed=1) as s:
        yield s


def page_data(html: str) -> dict:
    return json.loads(html.split('id="report-data">', 1)[1].split("</script>", 1)[0])


def test_page_and_media_are_served_without_the_key(server: ReviewServer) -> None:
    """The page is the report page with `served` settings (never the key); its videos,
    posters and strips come from the job folder."""
    page = httpx.get(server.base_url + "/")
    assert page.status_code == 200 and server.review.key not in page.text
    data = page_data(page.text)
    assert data["settings"]["served"]["picks"] == "api/picks" and len(data["cells"]) == 12
    tile = data["cells"][0]
    for link in (tile["video"], tile["poster"], tile["strip"]):
        got = httpx.get(f"{server.base_url}/{link}")
        assert got.status_code == 200 and len(got.content) > 100, link


@pytest.mark.parametrize("path", [
    "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/videos/..%2f..%2f..%2fetc%2fpasswd",
    "/state.jsonl", "/plan.json", "/.lock", "/%2fetc%2fpasswd", "/videos/nothing.mp4",
])
def test_nothing_outside_the_job_folder_or_its_state(server: ReviewServer, path: str) -> None:
    """A path out of the job folder, a state file, a hidden file or a missing one: 404."""
    got = httpx.get(server.base_url + path)
    assert got.status_code == 404 and "root:" not in got.text


def test_a_link_out_of_the_folder_is_refused(server: ReviewServer, tmp_path: Path) -> None:
    """A symlink inside the job folder that points outside it is not followed."""
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not yours")
    link = server.review.folder.path / "videos" / "escape.mp4"
    link.symlink_to(secret)
    try:
        assert httpx.get(server.base_url + "/videos/escape.mp4").status_code == 404
    finally:
        link.unlink()


def test_writes_without_the_key_are_refused_and_change_nothing(server: ReviewServer,
                                                               project: Path) -> None:
    """No key, a wrong key, a bad body, an unknown cell or pair: 4xx, every file as it was."""
    base, key = server.base_url, server.review.key
    cell = page_data(httpx.get(base + "/").text)["cells"][0]["id"]
    pair = httpx.get(f"{base}/api/rank/next", params={"rater": "ana", "key": key}).json()
    before = snapshot(project)
    refused = [
        httpx.post(f"{base}/api/picks", json={"cell": cell, "on": True}),
        httpx.post(f"{base}/api/picks?key=wrong", json={"cell": cell, "on": True}),
        httpx.post(f"{base}/api/picks?key={key}", content=b"{not json"),
        httpx.post(f"{base}/api/picks?key={key}", json={"cell": cell, "on": "yes"}),
        httpx.post(f"{base}/api/picks?key={key}", json={"cell": "0" * 12, "on": True}),
        httpx.post(f"{base}/api/picks?key={key}", json={"cell": cell, "on": True,
                                                       "by": "x" * 500}),
        httpx.post(f"{base}/api/rank/vote", json={"pair": pair["pair"], "winner": "left"}),
        httpx.post(f"{base}/api/rank/vote?key=wrong", json={"pair": pair["pair"],
                                                          "winner": "left"}),
        httpx.post(f"{base}/api/rank/vote?key={key}", json={"pair": pair["pair"],
                                                          "winner": "up"}),
        httpx.post(f"{base}/api/rank/vote?key={key}", json={"pair": "nope", "winner": "tie"}),
        httpx.post(f"{base}/api/rank/vote?key={key}", json={"pair": pair["pair"],
                                                          "winner": "tie", "rater": "ben"}),
        httpx.post(f"{base}/api/rank/vote?key={key}", content=b"x" * 20_000),
        httpx.get(f"{base}/api/rank/next", params={"rater": "ana"}),
        httpx.get(f"{base}/rank", params={"rater": "ana"}),
        httpx.get(f"{base}/rank", params={"key": key}),
    ]
    assert [r.status_code for r in refused] == [403, 403, 400, 400, 404, 400, 403, 403, 400,
                                                409, 403, 413, 403, 403, 400]
    assert all("error" in r.json() for r in refused)
    assert snapshot(project) == before


def test_stars_go_to_picks_jsonl_with_who_picked(server: ReviewServer, project: Path) -> None:
    """A star with the key writes the cell's pick line (as `pipeline picks` does) with `by`;
    the state shows it to every browser; unstarring removes it."""
    base, key = server.base_url, server.review.key
    tile = page_data(httpx.get(base + "/").text)["cells"][2]
    got = httpx.post(f"{base}/api/picks?key={key}", json={"cell": tile["id"], "on": True,
                                                          "by": "ana"})
    assert got.status_code == 200 and got.json()["picks"] == [tile["id"]]
    lines = [json.loads(x) for x in (project / "jobs" / "picks.jsonl").read_text().splitlines()]
    assert lines == [{**tile["pick"], "by": "ana"}]
    assert httpx.get(base + "/api/state").json()["by"] == {tile["id"]: "ana"}
    httpx.post(f"{base}/api/picks?key={key}", json={"cell": tile["id"], "on": False})
    assert (project / "jobs" / "picks.jsonl").read_text() == ""


def test_votes_are_appended_blind(server: ReviewServer) -> None:
    """A rater's pair names no cell (opaque tokens); a vote appends one line naming the two
    cells and the winner; a pair voted on cannot be voted again."""
    base, key = server.base_url, server.review.key
    ids = [c["id"] for c in page_data(httpx.get(base + "/").text)["cells"]]
    pair = httpx.get(f"{base}/api/rank/next", params={"rater": "ana", "key": key}).json()
    shown = json.dumps(pair)
    assert not any(i[:6] in shown for i in ids) and "videos" not in shown
    clip = httpx.get(f"{base}/{pair['left']['src']}")
    assert clip.status_code == 200 and len(clip.content) > 1000
    again = httpx.get(f"{base}/api/rank/next", params={"rater": "ana", "key": key}).json()
    assert again["pair"] == pair["pair"]  # a reload shows the same pair
    done = httpx.post(f"{base}/api/rank/vote?key={key}", json={"pair": pair["pair"],
                                                              "winner": "right"})
    assert done.status_code == 200 and done.json()["votes"] == 1
    votes = read_votes(server.review.folder.ratings)
    assert len(votes) == 1 and votes[0]["rater"] == "ana" and votes[0]["winner"] == "b"
    assert {votes[0]["a"], votes[0]["b"]} <= set(ids)
    assert httpx.post(f"{base}/api/rank/vote?key={key}",
                      json={"pair": pair["pair"], "winner": "left"}).status_code == 409


def test_new_cells_show_as_a_run_finishes_them(tmp_path: Path) -> None:
    """Served while only some cells are done, the page shows the rest once a run finishes
    them: the state's stamp changes and the page is read again."""
    manifest = make_project(tmp_path)
    run_job(manifest, only=(("caption", "boats at dawn"),))
    folder = tmp_path / "outputs" / "preview"
    with ReviewServer(folder, tmp_path / "jobs" / "picks.jsonl") as s:
        done = [c for c in page_data(httpx.get(s.base_url + "/").text)["cells"]
                if c["state"] == "done"]
        stamp = httpx.get(s.base_url + "/api/state").json()["stamp"]
        run_job(manifest)
        assert httpx.get(s.base_url + "/api/state").json()["stamp"] != stamp
        after = [c for c in page_data(httpx.get(s.base_url + "/").text)["cells"]
                 if c["state"] == "done"]
    assert len(done) == 4 and len(after) == 12


def test_the_command_prints_its_url_first_and_stops_on_sigterm(project: Path) -> None:
    """`pipeline review MANIFEST --port 0`: the first stdout line is the URL with its key;
    the page answers there; SIGTERM stops it with exit 0."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "review",
                             str(project / "jobs" / "preview.yaml"), "--port", "0"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?key=[\w-]{16,}", url), url
        assert httpx.get(url).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_flagged_clips_are_left_out_unless_asked(server: ReviewServer) -> None:
    """A cell whose report entry has qa.flags is not ranked, unless flagged=1 is asked."""
    cells = server.review.cells()
    first = next(iter(cells))
    cells[first].flagged = True
    try:
        assert first not in server.review.pool(False) and first in server.review.pool(True)
        key = server.review.key
        for rater in ("r1", "r2", "r3", "r4", "r5", "r6"):
            httpx.get(f"{server.base_url}/api/rank/next", params={"rater": rater, "key": key})
        shown = {c for p in server.review.pairs.values() for c in (p.left, p.right)}
        assert first not in shown and len(shown) >= 6
    finally:
        cells[first].flagged = False
