"""The wallet check: is the account's balance enough for what the run still has to send?

RunComfy has one wallet for all its products (the Model API, Serverless deployments,
training), so other people and other products draw on it while a run goes: the job's budget
and the team ledger never see all of it. The runner reads the balance (pipeline.client's
`balance()`) before the first submit of a run and again each time the run has committed another
tenth of its estimate; when the balance is below what the run still has to send, it stops
submitting before more is sent (`--ignore-balance` goes on, saying so once). A balance that
cannot be read is a warning, once, never a stop.

The policy is `BalanceRule` (when to read, what is short: pure); `WalletCheck` carries it out
for one run, asked by the runner before each submit.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ClientError
from ..text import money

log = logging.getLogger("pipeline.run")


@dataclass(frozen=True)
class BalanceRule:
    """When the wallet is read and when its balance is short (pure policy)."""

    step: float = 0.1  # read again each time the run has committed this share of its estimate

    def next_read(self, committed: float, estimate: float) -> float | None:
        """The USD this run will have committed when the wallet is read next, after a read
        at `committed`; None: no later read (no estimate to take tenths of)."""
        if estimate <= 0:
            return None
        stride = self.step * estimate
        return (math.floor(committed / stride + 1e-9) + 1) * stride

    @staticmethod
    def short(balance: float, to_go: float, unpriced: int = 0) -> str | None:
        """Why `balance` cannot pay what the run still has to send (`to_go` USD, and
        `unpriced` cells at no known price, which count as nothing), or None when it can."""
        if balance >= to_go - 1e-9:
            return None
        more = f" (and {unpriced} cells at an unknown price)" if unpriced else ""
        return (f"balance {money(balance)} < {money(to_go)} still to run{more}: top up, or "
                "lower the sweep with --only")


class WalletCheck:
    """The wallet check of one run. `allows()` before each submit: False once the balance was
    found short (the run's control is told why, as for any early stop)."""

    def __init__(self, client: Any, tally: Any, control: Any, cells: Iterable[str], *,
                 ignore: bool = False, rule: BalanceRule = BalanceRule()):
        self.client = client
        self.tally = tally
        self.control = control
        self.cells = tuple(cells)  # the run's own cells (a --only selection)
        self.ignore = ignore
        self.rule = rule
        self.start = tally.ledger.committed
        self.estimate, _ = tally.to_go_of(self.cells)  # what this run means to send
        self.due: float | None = 0.0  # committed by this run when the next read is due
        self.reads = 0
        self.balance: float | None = None  # as last read
        self._warned: set[str] = set()  # kinds of warning given (each is given once)
        self._lock = asyncio.Lock()

    def _committed(self) -> float:
        return max(0.0, self.tally.ledger.committed - self.start)

    async def allows(self) -> bool:
        """Read the wallet if a read is due; False when the run must stop submitting."""
        if self.control.submitting_stopped:
            return False
        if self.due is None or self._committed() < self.due:
            return True
        async with self._lock:  # one read at a time; the others wait for its verdict
            if self.control.submitting_stopped:
                return False
            committed = self._committed()
            if self.due is None or committed < self.due:
                return True
            self.due = self.rule.next_read(committed, self.estimate)
            return await self._read()

    async def _read(self) -> bool:
        try:
            balance = await self.client.balance()
        except ClientError as exc:
            self._warn("unread", f"the account's balance cannot be read ({exc}); going on "
                                 "without the wallet check")
            return True
        self.reads += 1
        self.balance = balance
        to_go, unpriced = self.tally.to_go_of(self.cells)
        why = self.rule.short(balance, to_go, unpriced)
        if why is None:
            log.info("balance %s covers the %s still to run", money(balance), money(to_go))
            return True
        if self.ignore:
            self._warn("ignored", f"{why.split(':', 1)[0]}; going on (--ignore-balance)")
            return True
        self.control.halt(why)
        return False

    def _warn(self, kind: str, text: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("%s", text)


def wallet_check(client: Any, tally: Any, control: Any, cells: Iterable[Any], *,
                 ignore: bool = False) -> WalletCheck:
    """The wallet check of a run over `cells` (pipeline.prepare.expand.Cell)."""
    return WalletCheck(client, tally, control, (c.id for c in cells), ignore=ignore)


def balance_now(backend: str, *, offline: bool = False) -> float | None:
    """The account's wallet for `plan` (None: offline, the built-in simulator, no token, or
    it cannot be read: `plan` then says nothing of it)."""
    if offline or backend == "sim":
        return None
    from ..client import RunComfyClient
    from ..errors import MissingToken

    try:
        client = RunComfyClient.from_env(retry_attempts=2, retry_timeout=10.0, timeout=10.0)
    except MissingToken:
        return None

    async def ask() -> float | None:
        async with client:
            try:
                return float(await client.balance())
            except ClientError as exc:
                log.info("the account's balance cannot be read (%s)", exc)
                return None
    return asyncio.run(ask())


def balance_lines(balance: float | None, to_go: float | None, unpriced: int = 0
                  ) -> tuple[str | None, str | None]:
    """What `plan` says of the wallet: a line for the table, and a warning when the balance
    cannot pay what a run would send (both None when the balance was not read)."""
    if balance is None:
        return None, None
    warning = BalanceRule.short(balance, to_go or 0.0, unpriced) if to_go is not None or \
        unpriced else None
    return f"balance: {money(balance)} (the account's wallet)", warning
