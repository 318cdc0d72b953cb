"""Helpers for tests that run real jobs: a manifest on disk and the runner in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from imagefiles import MODEL, write_image, write_manifest

REPO = Path(__file__).resolve().parent.parent
TOKEN = "test-token-5f3a9c"


def sweep(folder: Path, *, seeds: int, backend: str = "runcomfy", run: str = "",
          resolutions: str = "[720P]") -> Path:
    """A manifest of `seeds` x resolutions cells over one local image, fast polling; `run`:
    more lines of its `run` block, each indented by two spaces."""
    write_image(folder / "img.png", 640, 480)
    run = run.replace("\n", "\n        ")  # as indented as the template, for its dedent
    return write_manifest(folder, f"""
        name: crash-test
        model: {MODEL}
        backend: {backend}
        prompt: "a harbor, take {{{{ seed }}}}"
        inputs:
          image_urls: [img.png]
        matrix:
          seed: {{from: 1, to: {seeds}}}
          resolution: {resolutions}
        run:
          concurrency: 8
          max_attempts: 3
          polling: {{initial: 0.2, max: 1.0, timeout: 120}}
        {run}
        """)


def env_for(base_url: str, token: str = TOKEN, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
    env.update({"RUNCOMFY_BASE_URL": base_url, "RUNCOMFY_API_TOKEN": token,
                "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def pipeline_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]


def start_run(manifest: Path, out: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen(pipeline_cmd("run", str(manifest), "--out", str(out), "--no-progress",
                                         *extra),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(manifest: Path, out: Path, env: dict[str, str], *extra: str,
        timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(pipeline_cmd("run", str(manifest), "--out", str(out), "--no-progress",
                                       *extra),
                          env=env, capture_output=True, text=True, timeout=timeout)


def status_json(manifest: Path, out: Path, env: dict[str, str]) -> dict:
    proc = subprocess.run(pipeline_cmd("status", str(manifest), "--out", str(out), "--json"),
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def journal_events(out: Path) -> list[dict]:
    events = []
    for line in (out / "state.jsonl").read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # a torn last line
            pass
    return events


def wait_until(condition, timeout: float = 30.0) -> None:
    """Poll `condition` every 50 ms until it holds or `timeout` seconds pass (tests then check)."""
    import time

    deadline = time.time() + timeout
    while not condition() and time.time() < deadline:
        time.sleep(0.05)


class LiveSampler:
    """The simulator's live requests (queued + running), sampled in a thread every `every`
    seconds while in its `with` block: `samples` holds (seconds since the start, live)."""

    def __init__(self, sim, every: float = 0.05):  # noqa: ANN001
        import threading

        self.sim, self.every, self.samples = sim, every, []
        self.started = 0.0  # time.time() of the first sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import time

        start = self.started = time.time()
        while not self._stop.is_set():
            by_state = self.sim.stats()["requests_by_state"]
            self.samples.append((time.time() - start,
                                 by_state.get("in_queue", 0) + by_state.get("in_progress", 0)))
            self._stop.wait(self.every)

    @property
    def most(self) -> int:
        return max((n for _, n in self.samples), default=0)

    def __enter__(self) -> LiveSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def team_job(folder: Path, name: str, cells: int) -> Path:
    """A manifest of `cells` cells named `name` over one local image, polling fast: one of the
    jobs the team-ledger tests run side by side."""
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / "img.png", 640, 480)
    return write_manifest(folder, f"""
        name: {name}
        model: {MODEL}
        prompt: "{name}, take {{{{ seed }}}}"
        inputs:
          image_urls: [img.png]
        matrix:
          seed: {{from: 1, to: {cells}}}
        run:
          concurrency: 8
          polling: {{initial: 0.1, max: 0.3, timeout: 120}}
        """)
