"""What the team ledger keeps and answers, as plain values: a hold (one attempt) and its
states, the answers `TeamLedger.acquire` gives when it takes no slot (`Full`, `OverBudget`),
and the pure sums the store's transactions use (a hold's share of the account's totals, a
runner's place in the line).

Apart from `store` because they are the ledger's vocabulary, not its operations: the runner
(`run/team`) and `admin` build and read them too, and nothing here touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LIVE, BILLED, RELEASED = "live", "billed", "released"


@dataclass(frozen=True)
class Hold:
    """One attempt as the ledger keeps it."""

    key: str
    job: str
    job_uid: str
    host: str
    pid: int
    cell: str
    attempt: int
    base_url: str
    state: str  # live | billed | released
    estimate_micros: int = 0
    cost_micros: int | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Full:
    """No slot for this runner now: `live` requests are live on the account against
    `concurrency` (`holders`: (job, live) of each job holding slots, most first), and `ahead`
    runners (their jobs) wait before it for the free ones."""

    live: int
    concurrency: int
    holders: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    ahead: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        """`4/4 held by ta (2), tc (2)`, and `; 1 runner ahead (tb)` when others wait first."""
        held = ", ".join(f"{job} ({n})" for job, n in self.holders)
        said = f"{self.live}/{self.concurrency} held" + (f" by {held}" if held else "")
        if self.ahead:
            n = len(self.ahead)
            said += f"; {n} runner{'s' if n != 1 else ''} ahead ({', '.join(self.ahead)})"
        return said


@dataclass(frozen=True)
class OverBudget:
    """Reserving would cross the team budget; `reason` says by how much."""

    reason: str


def contribution(state: str, estimate: int, cost: int | None) -> tuple[int, int, int]:
    """(live, committed, spent) micro-figures one hold adds to the account's totals."""
    if state == LIVE:
        return 1, estimate, 0
    if state == BILLED:
        paid = cost if cost is not None else estimate
        return 0, paid, paid
    return 0, 0, 0


def runner_of(hold: Hold) -> str:
    """The runner (one process running one job) that asks for `hold`: its place in the line."""
    return f"{hold.job_uid}:{hold.host}:{hold.pid}"
