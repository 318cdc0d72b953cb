"""The wallet check (pipeline.run.wallet): the account's balance is read before the first
submit and at each tenth of the run's estimate; a short balance stops the run before more is
sent, `--ignore-balance` goes on, an unreadable balance is a warning."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from runjobs import sweep

from pipeline.api import RunOptions, run_plan
from pipeline.errors import TransportError
from pipeline.prepare.plan import build_plan
from pipeline.run.wallet import BalanceRule, WalletCheck

CELL_USD = 0.25  # a 5 s 720P clip at the simulator's $0.05/s


def one_at_a_time(manifest: Path) -> Path:
    manifest.write_text(manifest.read_text().replace("concurrency: 8", "concurrency: 1"))
    return manifest


def test_a_short_balance_stops_the_run_before_any_submit(tmp_path: Path, api_env) -> None:
    sim = api_env(balance=1.0, gen_time=(0.02, 0.05))
    manifest = sweep(tmp_path, seeds=10)
    summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out", progress=False))
    assert summary.exit_code == 1
    assert summary.stopped == ("balance $1.00 < $2.50 still to run: top up, or lower the sweep "
                               "with --only")
    stats = sim.stats()
    assert stats["calls"]["submit"] == 0 and stats["calls"]["balance"] == 1
    assert summary.counts["pending"] == 10


def test_only_lowers_what_is_still_to_run(tmp_path: Path, api_env) -> None:
    """The check weighs the run's own cells: a selection the balance can pay goes on."""
    sim = api_env(balance=1.0, gen_time=(0.02, 0.05))
    manifest = sweep(tmp_path, seeds=10)
    summary = run_plan(build_plan(manifest), RunOptions(
        out=tmp_path / "out", progress=False, only=(("seed", "1"), ("seed", "2"))))
    assert summary.exit_code == 0, summary.stopped
    assert sim.stats()["submissions_accepted"] == 2


def test_ignore_balance_goes_on_until_the_service_refuses(tmp_path: Path, api_env,
                                                          caplog) -> None:
    """With --ignore-balance the run submits; the simulator bills each clip and refuses the
    first submit it cannot pay (insufficient balance), which stops the run as always."""
    sim = api_env(balance=1.0, gen_time=(0.02, 0.05))
    manifest = one_at_a_time(sweep(tmp_path, seeds=10))
    with caplog.at_level(logging.WARNING, logger="pipeline.run"):
        summary = run_plan(build_plan(manifest), RunOptions(
            out=tmp_path / "out", progress=False, ignore_balance=True))
    assert summary.exit_code == 1 and "insufficient balance" in summary.stopped
    stats = sim.stats()
    assert stats["submissions_accepted"] == 4 and stats["submissions_refused_balance"] == 1
    assert stats["balance_usd"] == 0.0
    said = [r.getMessage() for r in caplog.records if "--ignore-balance" in r.getMessage()]
    assert said == ["balance $1.00 < $2.50 still to run; going on (--ignore-balance)"]


def test_an_unreadable_balance_is_a_warning_not_a_stop(tmp_path: Path, api_env, monkeypatch,
                                                       caplog) -> None:
    import socket

    sim = api_env(gen_time=(0.02, 0.05))
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("RUNCOMFY_ACCOUNT_URL", f"http://127.0.0.1:{port}")
    manifest = sweep(tmp_path, seeds=3)
    with caplog.at_level(logging.WARNING, logger="pipeline.run"):
        summary = run_plan(build_plan(manifest), RunOptions(out=tmp_path / "out",
                                                           progress=False))
    assert summary.exit_code == 0 and sim.stats()["submissions_accepted"] == 3
    said = [r.getMessage() for r in caplog.records if "balance cannot be read" in r.getMessage()]
    assert len(said) == 1 and "going on without the wallet check" in said[0]


# --- the policy and its check, without a service -----------------------------------------------

def test_the_rule_reads_at_each_tenth_and_says_both_figures() -> None:
    rule = BalanceRule()
    assert rule.next_read(0.0, 150.0) == pytest.approx(15.0)
    assert rule.next_read(15.0, 150.0) == pytest.approx(30.0)
    assert rule.next_read(31.0, 150.0) == pytest.approx(45.0)
    assert rule.next_read(0.0, 0.0) is None  # nothing priced: read once, before the first
    assert rule.short(150.0, 150.0) is None
    assert rule.short(12.4, 150.0) == ("balance $12.40 < $150.00 still to run: top up, or "
                                       "lower the sweep with --only")
    assert "(and 3 cells at an unknown price)" in rule.short(1.0, 2.0, 3)


class FakeTally:
    def __init__(self, to_go: float):
        self.to_go = to_go
        self.ledger = SimpleNamespace(committed=0.0)

    def to_go_of(self, ids):
        return self.to_go, 0


class FakeControl:
    def __init__(self):
        self.stopped = None

    @property
    def submitting_stopped(self):
        return self.stopped is not None

    def halt(self, why):
        self.stopped = why


class FakeWallet:
    def __init__(self, balances):
        self.balances = list(balances)
        self.reads = 0

    async def balance(self):
        self.reads += 1
        value = self.balances.pop(0)
        if isinstance(value, Exception):
            raise value
        return value


def test_the_check_reads_before_the_first_submit_then_at_each_tenth() -> None:
    """Reads: before the first submit, then when the run has committed 10%, 20%...; a balance
    found short then stops it (someone else spent the wallet meanwhile)."""
    tally, control = FakeTally(100.0), FakeControl()
    wallet = FakeWallet([500.0, 500.0, 50.0])
    check = WalletCheck(wallet, tally, control, ["a"])

    async def go() -> list[bool]:
        out = [await check.allows()]
        for committed in (1.0, 9.9, 10.0, 12.0, 19.0):  # one read at 10
            tally.ledger.committed = committed
            tally.to_go = 100.0 - committed
            out.append(await check.allows())
        tally.ledger.committed, tally.to_go = 20.0, 80.0  # the third read: short
        out.append(await check.allows())
        return out

    assert asyncio.run(go()) == [True] * 6 + [False]
    assert wallet.reads == 3
    assert control.stopped.startswith("balance $50.00 < $80.00 still to run")


def test_an_unreadable_balance_is_warned_once(caplog) -> None:
    tally, control = FakeTally(100.0), FakeControl()
    wallet = FakeWallet([TransportError("down"), TransportError("down")])
    check = WalletCheck(wallet, tally, control, ["a"])

    async def go() -> list[bool]:
        out = [await check.allows()]
        tally.ledger.committed = 10.0
        out.append(await check.allows())
        return out

    with caplog.at_level(logging.WARNING, logger="pipeline.run"):
        assert asyncio.run(go()) == [True, True]
    assert wallet.reads == 2 and control.stopped is None
    assert len([r for r in caplog.records if "cannot be read" in r.getMessage()]) == 1


def test_plan_shows_the_balance_and_warns_when_it_is_short(tmp_path: Path, api_env,
                                                           capsys) -> None:
    """`plan` reads the wallet as it asks the catalog, and says when it cannot pay the run;
    `plan --offline` asks nothing."""
    import json

    from pipeline.cli import main

    sim = api_env(balance=1.0)
    manifest = sweep(tmp_path, seeds=10)
    out = str(tmp_path / "out")
    assert main(["plan", str(manifest), "--out", out]) == 0
    said = capsys.readouterr()
    assert "balance: $1.00 (the account's wallet)" in said.out
    assert ("balance $1.00 < $2.50 still to run: top up, or lower the sweep with --only"
            in said.err)
    assert main(["plan", str(manifest), "--out", out, "--only", "seed=1"]) == 0
    assert "still to run" not in capsys.readouterr().err
    assert main(["plan", str(manifest), "--out", out, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["balance_usd"] == 1.0
    calls = sim.stats()["calls"]["balance"]
    assert main(["plan", str(manifest), "--out", out, "--offline"]) == 0
    assert "balance" not in capsys.readouterr().out and sim.stats()["calls"]["balance"] == calls
