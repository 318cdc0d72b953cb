"""The run's policies as values: which client errors end a run, the retry budgets, and the full
disk, each applied in one place (Stopping, RetryPolicy.backoff, the journal writer)."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from pipeline.errors import ApiError, ApiUnreachable, AuthError, ClientError, StateError
from pipeline.job import journal as ev
from pipeline.job import journal_writer
from pipeline.job.journal import read_state
from pipeline.job.journal_writer import JournalWriter
from pipeline.run import policy
from pipeline.run.context import RunOptions
from pipeline.run.control import Control
from pipeline.run.policy import Retries


@pytest.mark.parametrize("exc,reason,finish", [
    (AuthError("no", status_code=401), "the API refused the token", False),
    (ApiUnreachable("cannot connect"), "the API cannot be reached", True),
    (ApiError("busy", status_code=503), None, None),
    (ClientError("local"), None, None),
    (None, None, None),
])
def test_the_client_errors_that_end_a_run(exc, reason, finish) -> None:
    """A refused token and an unreachable API end a run (the latter still recording the
    job's end); any other client error does not."""
    rule = policy.fatal_of(exc)
    assert (rule.reason if rule else None) == reason
    assert (rule.finish if rule else None) == finish


def test_fail_on_stops_everything_with_the_rule_s_reason() -> None:
    """fail_on applies the table: a fatal error stops submitting and polling, with its reason;
    any other error leaves the run going."""
    async def scenario() -> tuple:
        stopping = Control(4).stopping
        assert not stopping.fail_on(ApiError("busy", status_code=503))
        assert not stopping.everything.is_set() and stopping.stopped is None
        exc = ApiUnreachable("cannot connect")
        assert stopping.fail_on(exc)
        return stopping.stopped, stopping.everything.is_set(), stopping.fatal is exc, \
            stopping.finish_with is exc

    assert asyncio.run(scenario()) == ("the API cannot be reached", True, True, True)


def test_a_refused_token_raises_without_recording_the_end() -> None:
    """AuthError is fatal and not `finish`: the run raises it as soon as its cells end."""
    async def scenario() -> bool:
        stopping = Control(4).stopping
        stopping.fail_on(AuthError("no", status_code=401))
        return stopping.finish_with is None

    assert asyncio.run(scenario()) is True


def test_the_retry_budgets_keep_their_numbers() -> None:
    """Submits 8 times, 4 download rounds, the ledger asked again after 0.5 s growing to 5 s,
    as RunOptions' default."""
    retries = RunOptions().retries
    assert retries == Retries()
    assert (retries.submit, retries.download_rounds) == (8, 4)
    assert (retries.ledger_down.wait_initial, retries.ledger_down.wait_max) == (0.5, 5.0)


@pytest.mark.parametrize("tries,cap", [(1, 0.5), (2, 1.0), (4, 4.0), (5, 5.0), (9, 5.0)])
def test_ledger_outage_waits_come_from_the_one_backoff(tries, cap) -> None:
    """Pauses while the ledger is down are RetryPolicy.backoff's full jitter, at most
    0.5 * 2**(n-1) and never over 5 s."""
    waits = [Retries().ledger_down.backoff(tries) for _ in range(200)]
    assert all(0.0 <= w <= cap for w in waits)


@pytest.mark.fast_retries(attempts=2)
def test_testing_mode_reaches_the_run_s_waits() -> None:
    """stamina's testing mode makes the run's own waits zero too."""
    assert Retries().ledger_down.backoff(3) == 0.0


def test_a_full_disk_spends_the_ballast_then_stops_the_run_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a journal write meets ENOSPC, the ballast goes, the event still lands, and the
    writer tells the run once; the run stops with the disk-full line."""
    journal = JournalWriter(tmp_path, read_state(tmp_path))
    real_write, failed = os.write, []

    def write(fd: int, data: bytes) -> int:
        if not failed:
            failed.append(True)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    async def scenario() -> tuple:
        control = Control(4)
        told: list[str] = []

        def on_full() -> None:
            told.append("full")
            control.stopping.disk_full(tmp_path)
        journal.on_full = on_full
        monkeypatch.setattr(journal_writer.os, "write", write)
        journal.write(ev.described("c", "seed=1", {"seed": 1}, {"seed": 1}))
        journal.write(ev.described("d", "seed=2", {"seed": 2}, {"seed": 2}))
        monkeypatch.undo()
        return told, control.stopping.stopped, control.stopping.fatal

    told, stopped, fatal = asyncio.run(scenario())
    journal.close()
    assert told == ["full"] and journal.low_space
    assert stopped == policy.DISK_FULL
    assert isinstance(fatal, StateError) and "is full" in str(fatal) and \
        "run again to resume" in str(fatal)
    assert set(read_state(tmp_path).cells) == {"c", "d"}
