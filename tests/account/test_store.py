"""The team ledger's store against a real PostgreSQL: slots, the team budget, mirroring."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess

import pytest
from runjobs import pipeline_cmd

from pipeline.account import admin
from pipeline.account.holds import BILLED, LIVE, RELEASED, Full, Hold, OverBudget
from pipeline.account.store import TeamLedger
from pipeline.errors import LedgerError, LedgerUnavailable, UsageError
from pipeline.job.money import micros


def hold(n: int, state: str = LIVE, usd: float = 0.25, cost: float | None = None,
         job: str = "j1", request_id: str | None = None) -> Hold:
    return Hold(key=f"{job}:cell{n}:1", job=job, job_uid=job, host="h", pid=1, cell=f"cell{n}",
                attempt=1, base_url="http://sim", state=state, estimate_micros=micros(usd),
                cost_micros=None if cost is None else micros(cost), request_id=request_id)


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def test_a_ledger_that_is_not_set_up_says_how_to_set_it_up(ledger_url: str) -> None:
    """A database without the tables asks for `pipeline account init`."""
    async def go() -> None:
        ledger = TeamLedger(ledger_url)
        try:
            await ledger.acquire(hold(1))
        finally:
            await ledger.close()

    with pytest.raises(LedgerError, match="pipeline account init"):
        run(go())


def test_slots_are_held_per_attempt_until_the_journal_says_it_ended(ledger_url: str) -> None:
    """At most `concurrency` holds are live; a released or billed one frees its slot."""
    admin.init(ledger_url, concurrency=2)

    async def go() -> None:
        ledger = TeamLedger(ledger_url)
        try:
            assert await ledger.acquire(hold(1)) is None
            assert await ledger.acquire(hold(1)) is None  # asking again for a live one: no change
            assert await ledger.acquire(hold(2)) is None
            assert await ledger.acquire(hold(3)) == Full(2, 2)
            await ledger.mirror([hold(1, RELEASED)])
            assert await ledger.acquire(hold(3)) is None
            await ledger.mirror([hold(2, BILLED, cost=0.20, request_id="r2")])
            await ledger.mirror([hold(2, BILLED, cost=0.20, request_id="r2")])  # idempotent
            assert [h.cell for h in await ledger.live_holds("j1")] == ["cell3"]
        finally:
            await ledger.close()

    run(go())
    st = admin.status(ledger_url)
    assert (st["live"], st["spent_usd"], st["committed_usd"]) == (1, 0.20, 0.45)
    assert st["holders"] == [{"job": "j1", "host": "h", "live": 1, "unknown": 1}]


def test_slots_go_to_the_runners_that_wait_in_turn(ledger_url: str) -> None:
    """First come, first served per slot: a runner that keeps asking never takes a freed slot
    from one that waits before it; each runner that gets a slot leaves the line, and one that
    still waits joins its end; `Full` says who holds the slots and who waits ahead."""
    admin.init(ledger_url, concurrency=2)

    def ask(job: str, n: int) -> Hold:
        return hold(n, job=job)

    async def go() -> None:
        ledger = TeamLedger(ledger_url)
        try:
            assert await ledger.acquire(ask("ta", 1)) is None
            assert await ledger.acquire(ask("ta", 2)) is None
            full = await ledger.acquire(ask("ta", 3))  # ta waits first
            assert isinstance(full, Full) and str(full) == "2/2 held by ta (2)"
            assert isinstance(await ledger.acquire(ask("tb", 1)), Full)  # then tb
            assert isinstance(await ledger.acquire(ask("tc", 1)), Full)  # then tc
            await ledger.mirror([hold(1, RELEASED, job="ta")])  # one slot frees
            tc = await ledger.acquire(ask("tc", 1))  # not tc's turn, however often it asks
            assert isinstance(tc, Full) and tc.ahead == ("ta", "tb")
            assert str(tc) == "1/2 held by ta (1); 2 runners ahead (ta, tb)"
            assert await ledger.acquire(ask("ta", 3)) is None  # ta's turn, and it leaves
            assert isinstance(await ledger.acquire(ask("ta", 4)), Full)  # ta: at the end
            await ledger.mirror([hold(2, RELEASED, job="ta")])
            assert isinstance(await ledger.acquire(ask("ta", 4)), Full)  # (tb, tc first)
            assert await ledger.acquire(ask("tb", 1)) is None
            await ledger.mirror([hold(3, RELEASED, job="ta")])
            assert await ledger.acquire(ask("tc", 1)) is None
        finally:
            await ledger.close()

    async def leave() -> None:
        ledger = TeamLedger(ledger_url)
        try:
            await ledger.leave("ta:h:1")
        finally:
            await ledger.close()

    run(go())
    st = admin.status(ledger_url)
    assert [w["job"] for w in st["waiting"]] == ["ta"]
    assert "ta on h: waiting for a team slot for 0s (first in line): 2/2 held by tb (1), " \
           "tc (1)" in admin.status_text(st)
    run(leave())
    assert admin.status(ledger_url)["waiting"] == []


def test_the_team_budget_is_never_crossed_by_concurrent_runners(ledger_url: str) -> None:
    """Many runners reserving at once: committed never passes the budget, reaching it is fine."""
    admin.init(ledger_url, concurrency=50, budget=2.50)

    async def runner(job: str) -> int:
        ledger = TeamLedger(ledger_url)
        got = 0
        try:
            for n in range(10):
                answer = await ledger.acquire(hold(n, job=job))
                if answer is None:
                    got += 1
                else:
                    assert isinstance(answer, OverBudget)
                    assert "team budget $2.50" in answer.reason
                await asyncio.sleep(random.random() / 100)
        finally:
            await ledger.close()
        return got

    async def go() -> list[int]:
        return await asyncio.gather(*(runner(f"job{i}") for i in range(4)))

    assert sum(run(go())) == 10  # $2.50 / $0.25
    st = admin.status(ledger_url)
    assert st["committed_usd"] == 2.50 and st["live"] == 10


def test_actual_costs_settle_the_reservation(ledger_url: str) -> None:
    """A billed attempt counts its actual cost; one without a cost counts its estimate."""
    admin.init(ledger_url, concurrency=5, budget=1.0)

    async def go() -> OverBudget | Full | None:
        ledger = TeamLedger(ledger_url)
        try:
            for n in range(3):
                assert await ledger.acquire(hold(n, usd=0.30)) is None
            await ledger.mirror([hold(0, BILLED, cost=0.10), hold(1, BILLED)])
            return await ledger.acquire(hold(4, usd=0.30))  # 0.10 + 0.30 + 0.30 + 0.30 = 1.00
        finally:
            await ledger.close()

    assert run(go()) is None
    st = admin.status(ledger_url)
    assert (st["spent_usd"], st["committed_usd"], st["live"]) == (0.40, 1.0, 2)


def test_a_database_that_is_down_is_unavailable_and_then_back(ledger_url: str,
                                                                postgres: object) -> None:
    """A stopped database gives LedgerUnavailable naming what to check; the same ledger object
    works again once it is back."""
    admin.init(ledger_url, concurrency=3)

    async def go() -> None:
        ledger = TeamLedger(ledger_url)
        try:
            assert await ledger.acquire(hold(1)) is None
            postgres.stop()  # type: ignore[attr-defined]
            try:
                with pytest.raises(LedgerUnavailable, match="cannot be reached"):
                    await ledger.acquire(hold(2))
            finally:
                postgres.start()  # type: ignore[attr-defined]
            assert await ledger.acquire(hold(2)) is None
        finally:
            await ledger.close()

    run(go())
    assert admin.status(ledger_url)["live"] == 2


def test_periods_count_what_their_day_spent(ledger_url: str) -> None:
    """Switching to a daily budget keeps today's and live holds; back to total counts all."""
    admin.init(ledger_url, concurrency=5, budget=10.0)

    async def go() -> None:
        ledger = TeamLedger(ledger_url)
        try:
            for n in range(3):
                assert await ledger.acquire(hold(n)) is None
            await ledger.mirror([hold(0, BILLED, cost=1.0)])
        finally:
            await ledger.close()

    run(go())
    day = admin.configure(ledger_url, period="day")
    assert day["period"] == "day" and day["period_start"]
    assert (day["spent_usd"], day["committed_usd"]) == (1.0, 1.5)
    total = admin.configure(ledger_url, period="total", budget=None)
    assert (total["spent_usd"], total["committed_usd"], total["budget_usd"]) == (1.0, 1.5, None)


def test_release_frees_only_the_unknown_holds_of_the_job_named(ledger_url: str) -> None:
    """`account release JOB` frees that job's holds of unknown outcome (no request id, so no
    way to ask the server), never a hold with a request id (sweep asks about those) nor one of
    another job; a runner of the job alive on this machine makes it refuse."""
    admin.init(ledger_url, concurrency=10)

    async def setup() -> None:
        ledger = TeamLedger(ledger_url)
        try:
            for h in (hold(1), hold(2), hold(3), hold(4, job="other")):
                assert await ledger.acquire(h) is None
            await ledger.mirror([hold(3, request_id="r3")])
        finally:
            await ledger.close()

    run(setup())
    assert admin.status(ledger_url)["live"] == 4
    lines = admin.release(ledger_url, "j1", ["cell1"])
    assert lines == ["released j1 cell cell1 attempt 1 (host h)",
                     "released 1 slot of job j1; 1 with a request id stay live until the "
                     "server says they ended (pipeline account sweep asks)"]
    st = admin.status(ledger_url)
    assert st["live"] == 3 and st["committed_usd"] == pytest.approx(0.75)
    admin.release(ledger_url, "j1")
    holds = run(_live(ledger_url))
    assert sorted((h.job, h.cell) for h in holds) == [("j1", "cell3"), ("other", "cell4")]
    assert admin.release(ledger_url, "nobody")[0].startswith("job nobody holds no slot")

    async def mine() -> None:  # a hold of a process alive here (this one)
        ledger = TeamLedger(ledger_url)
        try:
            assert await ledger.acquire(Hold(**{**hold(5).__dict__, "host": socket.gethostname(),
                                                "pid": os.getpid()})) is None
        finally:
            await ledger.close()

    run(mine())
    with pytest.raises(UsageError, match="is running on this machine"):
        admin.release(ledger_url, "j1")
    said = subprocess.run(pipeline_cmd("account", "release", "j1", "--ledger", ledger_url),
                          capture_output=True, text=True, timeout=60)
    assert said.returncode == 2 and said.stderr.count("\n") == 1, said.stderr
    assert f"job j1 is running on this machine (pid {os.getpid()})" in said.stderr


async def _live(url: str) -> list[Hold]:
    ledger = TeamLedger(url)
    try:
        return await ledger.live_holds()
    finally:
        await ledger.close()


def test_the_sql_recount_equals_the_python_rule_of_each_hold(ledger_url: str) -> None:
    """The money rule is written twice, once in Python (`contribution`, applied hold by hold as
    runners report) and once in SQL (`recount`, after a change of period): over random holds
    in every state, with and without a billed cost, the two give the same totals."""
    from pipeline.account.holds import contribution
    from pipeline.account.store import recount

    admin.init(ledger_url, concurrency=1000)
    rng = random.Random(20261207)
    finals: dict[int, Hold] = {}

    async def go() -> None:
        ledger = TeamLedger(ledger_url)
        try:
            for n in range(60):
                usd = rng.choice([0.05, 0.25, 0.6, 1.2])
                assert await ledger.acquire(hold(n, usd=usd)) is None
                finals[n] = hold(n, usd=usd)
            for n in rng.sample(range(60), 45):  # the rest stay live
                state = rng.choice([BILLED, BILLED, RELEASED])
                cost = rng.choice([None, 0.0, 0.07, 0.3]) if state == BILLED else None
                finals[n] = hold(n, state, usd=finals[n].estimate_micros / 1e6, cost=cost,
                                 request_id=f"r{n}")
                await ledger.mirror([finals[n]])
        finally:
            await ledger.close()

    async def recount_now() -> None:
        ledger = TeamLedger(ledger_url)
        try:
            async def again(cur, acct) -> None:  # noqa: ANN001 - psycopg's cursor, a row
                await recount(cur)

            await ledger.transaction(again)
        finally:
            await ledger.close()

    run(go())
    incremental = admin.status(ledger_url)
    run(recount_now())
    recounted = admin.status(ledger_url)
    live, committed, spent = (sum(x) for x in zip(*(
        contribution(h.state, h.estimate_micros, h.cost_micros) for h in finals.values()),
        strict=True))
    python = (live, committed / 1e6, spent / 1e6)
    for figures in (incremental, recounted):
        assert (figures["live"], figures["committed_usd"], figures["spent_usd"]) == \
            pytest.approx(python), figures


def test_a_ledger_of_format_1_is_brought_up_to_date_by_init(ledger_url: str) -> None:
    """A ledger made before the line of waiters (format 1) is refused, saying to run `pipeline
    account init`, which adds the new table and keeps the account and its holds."""
    import psycopg

    from pipeline.account.schema import META, MIGRATIONS

    with psycopg.connect(ledger_url, autocommit=True) as conn:
        conn.execute(META)
        conn.execute(MIGRATIONS[0])
        conn.execute("INSERT INTO pipeline_ledger_meta VALUES ('version', '1')")
        conn.execute("INSERT INTO account (id, concurrency) VALUES (1, 3)")
    with pytest.raises(LedgerError, match="has format 1: run `pipeline account init`"):
        admin.status(ledger_url)
    st = admin.init(ledger_url)
    assert st["concurrency"] == 3 and st["waiting"] == []


@pytest.mark.parametrize(("said", "expected"), [
    ('connection failed: connection to server at "10.0.0.5", port 5433 failed: FATAL:  '
     'database "nodb" does not exist', 'the database "nodb" does not exist on db.lan:5433: '
     "create it (createdb nodb)"),
    ('connection failed: ... FATAL:  role "bob" does not exist', 'db.lan:5433 has no user "bob"'),
    ('connection failed: ... FATAL:  password authentication failed for user "bob"',
     "db.lan:5433 refused the user bob and its password: fix the user and password"),
    ("failed to resolve host 'db.lan': [Errno -2] Name or service not known",
     "the host 'db.lan' is not known: fix the host"),
    ('connection failed: connection to server at "10.0.0.5", port 5433 failed: Connection '
     "refused", "nothing listens on db.lan:5433 (connection refused)"),
    ("connection timeout expired", "no answer from db.lan:5433 within 3 s"),
])
def test_a_connection_failure_is_said_as_what_to_fix(said: str, expected: str) -> None:
    """Each way a ledger cannot be reached is named, with what to fix, never the password."""
    import psycopg

    from pipeline.account.connecting import translate

    err = translate(psycopg.OperationalError(said), "postgresql://bob:pw@db.lan:5433/nodb")
    assert isinstance(err, LedgerUnavailable)
    assert expected in str(err) and "pw" not in str(err).replace("password", "")
    assert str(err).startswith("the team ledger at postgresql://bob:***@db.lan:5433/nodb ")
