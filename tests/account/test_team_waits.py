"""What a runner on a team ledger waits for, and what it does not: a ledger that cannot be
reached when the run starts is the user's to fix (exit 2 at once, one line), Ctrl-C ends every
wait within 2 s, and the slots of a full account go to the runners that wait in turn, each
saying why it waits. Real subprocesses, a real simulator, a real PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from pgcluster import free_port
from runjobs import env_for, journal_events, pipeline_cmd, team_job, wait_until

from pipeline.account import admin
from pipeline.account.holds import LIVE, Hold
from pipeline.account.store import TeamLedger

START_LIMIT = 15.0  # seconds: a ledger that cannot be used is said within this
STOP_LIMIT = 2.0  # seconds: Ctrl-C ends a run within this, whatever it waits for




def plain_run(manifest: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    """A run with its plain progress lines on stderr."""
    return subprocess.Popen(pipeline_cmd("run", str(manifest), "--out",
                                         str(manifest.parent / "out"), "--progress", "plain",
                                         *extra),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Lines:
    """A process's stderr, read line by line in a thread (so that a test can wait for a line
    while the process runs)."""

    def __init__(self, proc: subprocess.Popen):
        import threading

        self.lines: list[str] = []
        self.proc = proc
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def has(self, words: str) -> bool:
        return any(words in line for line in self.lines)

    def text(self) -> str:
        self.thread.join(timeout=10)
        return "".join(self.lines)


def interrupt(proc: subprocess.Popen) -> tuple[int, float]:
    """SIGINT, then the exit code and how long the process took to end."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return code, time.monotonic() - sent


async def occupy(url: str, slots: int, job_name: str = "other") -> None:
    """Hold `slots` slots for another job (its requests live elsewhere)."""
    ledger = TeamLedger(url)
    try:
        for n in range(slots):
            hold = Hold(key=f"{job_name}:c{n}:1", job=job_name, job_uid=job_name, host="far",
                        pid=1, cell=f"c{n}", attempt=1, base_url="http://elsewhere",
                        state=LIVE, estimate_micros=0)
            assert await ledger.acquire(hold) is None
    finally:
        await ledger.close()


@pytest.mark.parametrize("what", ["no-listener", "no-host", "no-database", "no-user",
                                  "no-tables"])
def test_a_ledger_that_cannot_be_used_at_the_start_is_a_user_error(
        what: str, tmp_path: Path, sim_factory: Any, ledger_url: str, postgres: Any) -> None:
    """A port nothing listens on, a host that does not exist, a database that does not exist,
    an unknown user, a database without the tables: exit 2 within 15 s, one line naming what
    failed and what to do, and nothing journalled or submitted."""
    base = ledger_url.rsplit("/", 1)[0]
    url, said = {
        "no-listener": (f"postgresql://postgres@127.0.0.1:{free_port()}/ledger",
                        "nothing listens on 127.0.0.1"),
        "no-host": ("postgresql://postgres@no-such-host.invalid/ledger",
                    "the host 'no-such-host.invalid' is not known"),
        "no-database": (f"{base}/nodb", 'the database "nodb" does not exist'),
        "no-user": (ledger_url.replace("postgres@", "nobody@"), 'no user "nobody"'),
        "no-tables": (ledger_url, "pipeline account init"),
    }[what]
    sim = sim_factory(capacity=4, gen_time=(0.2, 0.3))
    manifest = team_job(tmp_path / "j", "wrong-url", 2)
    began = time.monotonic()
    proc = subprocess.run(pipeline_cmd("run", str(manifest), "--out", str(tmp_path / "j" / "out"),
                                       "--no-progress", "--ledger", url),
                          env=env_for(sim.base_url), capture_output=True, text=True,
                          timeout=60)
    took = time.monotonic() - began
    assert proc.returncode == 2, proc.stderr
    assert took < START_LIMIT
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and said in errors[0], proc.stderr
    assert "in --ledger / PIPELINE_LEDGER" in errors[0] or what == "no-tables"
    assert sim.stats()["submissions_accepted"] == 0
    journal = tmp_path / "j" / "out" / "state.jsonl"
    assert not journal.exists() or not any(e.get("e") == "run" for e in
                                           journal_events(journal.parent))


def test_ctrl_c_ends_a_wait_for_a_team_slot_at_once(
        tmp_path: Path, sim_factory: Any, ledger_url: str) -> None:
    """Every slot held by another job: the run says it waits for a team slot (and who holds
    them); Ctrl-C ends it within 2 s, exit 130, with nothing submitted."""
    admin.init(ledger_url, concurrency=2)
    asyncio.run(occupy(ledger_url, 2))
    sim = sim_factory(capacity=4, gen_time=(0.2, 0.3))
    proc = plain_run(team_job(tmp_path / "j", "starved", 3), env_for(sim.base_url),
                     "--ledger", ledger_url)
    err = Lines(proc)
    wait_until(lambda: err.has("waiting for a team slot"), timeout=30)
    assert err.has("waiting for a team slot: 2/2 held by other (2)"), err.text()
    st = admin.status(ledger_url)
    assert [w["job"] for w in st["waiting"]] == ["starved"]
    assert "starved on" in admin.status_text(st)
    status = subprocess.run(pipeline_cmd("status", str(tmp_path / "j" / "job.yaml"), "--out",
                                         str(tmp_path / "j" / "out")),
                            env=env_for(sim.base_url, PIPELINE_LEDGER=ledger_url),
                            capture_output=True, text=True, timeout=60)
    assert "the run is waiting for a team slot: 2/2 held by other (2)" in status.stdout, \
        status.stdout + status.stderr
    code, took = interrupt(proc)
    assert code == 130, err.text()
    assert took < STOP_LIMIT, err.text()
    assert sim.stats()["submissions_accepted"] == 0
    assert admin.status(ledger_url)["waiting"] == []  # it left the line


def test_ctrl_c_ends_a_wait_for_a_ledger_that_went_away(
        tmp_path: Path, sim_factory: Any, ledger_url: str, postgres: Any) -> None:
    """The database stops mid-run: the run says it waits for the ledger; Ctrl-C ends it within
    2 s (exit 130), without waiting for the database to come back."""
    admin.init(ledger_url, concurrency=2)
    sim = sim_factory(capacity=8, gen_time=(1.5, 2.0))
    proc = plain_run(team_job(tmp_path / "j", "outage", 8), env_for(sim.base_url),
                     "--ledger", ledger_url)
    err = Lines(proc)
    try:
        wait_until(lambda: sim.stats()["submissions_accepted"] >= 2, timeout=30)
        postgres.stop()
        wait_until(lambda: err.has("waiting for the team ledger"), timeout=30)
        assert err.has("waiting for the team ledger"), err.text()
        code, took = interrupt(proc)
    finally:
        postgres.start()
    assert code == 130, err.text()
    assert took < STOP_LIMIT, err.text()


def first_wait(out: Path) -> float:
    """Seconds from a run's start to its first intent to submit (its first slot)."""
    events = journal_events(out)
    start = next(e["t"] for e in events if e.get("e") == "run")
    return next(e["t"] for e in events if e.get("e") == "intent") - start


def test_three_runners_on_four_slots_take_turns(
        tmp_path: Path, sim_factory: Any, ledger_url: str) -> None:
    """Three 12-cell jobs on an account of 4 slots: each runner gets a slot within two
    generation times of its start, all finish, and the one that waits says why on its
    progress line and in `pipeline account status` (the order slots are given in is
    test_store's `test_slots_go_to_the_runners_that_wait_in_turn`)."""
    admin.init(ledger_url, concurrency=4)
    gen = (2.0, 2.5)
    sim = sim_factory(capacity=8, gen_time=gen, seed=21)
    env = env_for(sim.base_url, PIPELINE_LEDGER=ledger_url)
    jobs = [team_job(tmp_path / f"t{c}", f"t{c}", 12) for c in "abc"]
    procs = [plain_run(m, env) for m in jobs]
    errs = [Lines(p) for p in procs]
    said: list[str] = []

    def someone_waits() -> bool:
        st = admin.status(ledger_url)
        if st["waiting"]:
            said.append(admin.status_text(st))
        return bool(said)

    wait_until(someone_waits, timeout=60)
    for proc in procs:
        proc.wait(timeout=240)
    texts = [e.text() for e in errs]
    assert [p.returncode for p in procs] == [0, 0, 0], texts
    assert said and "waiting for a team slot" in said[0] and "/4 held by" in said[0], said
    waits = [first_wait(m.parent / "out") for m in jobs]
    assert max(waits) <= 2 * gen[1], waits
    assert any("waiting for a team slot: " in t and "/4 held by" in t for t in texts), texts
    st = admin.status(ledger_url)
    assert st["live"] == 0 and st["waiting"] == []
    assert sim.stats()["submissions_accepted"] == 36
