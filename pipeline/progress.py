"""Progress of a run: a tqdm bar on a terminal, a plain log line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from . import cost as costs
from .state import DONE, FAILED, LIVE, UNKNOWN

LOG_EVERY = 10.0  # seconds between plain progress lines
REFRESH_EVERY = 0.5  # seconds between recounts (a recount walks every cell)


class Progress:
    """Shows done / failed / in flight, spend so far and an ETA; cheap when called often."""

    def __init__(self, runner: Any, enabled: bool | None = None):
        self.runner = runner
        self.total = len(runner.cells)
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.bar = None
        self.last_count = 0.0
        self.last_line = 0.0
        self.started = time.monotonic()
        self.shown: tuple | None = None
        self.every = REFRESH_EVERY
        self.per_cell: float | None = None
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="cell", dynamic_ncols=True, file=sys.stderr,
                            desc=runner.plan.job)
        self.update(force=True)

    def counts(self) -> tuple[int, int, int, int]:
        r = self.runner
        done = failed = live = unknown = 0
        for cell in r.cells:
            rec = r.state.cells.get(cell.id)
            if rec is None:
                continue
            st = rec.state(r.max_attempts)
            if st == DONE:
                done += 1
            elif st == FAILED:
                failed += 1
            elif st in LIVE or cell.id in r.submitting:
                live += 1
            elif st == UNKNOWN:
                unknown += 1
        return done, failed, live, unknown

    def update(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_count < self.every:
            return
        self.last_count = now
        done, failed, live, unknown = self.counts()
        to_go = self.to_go(done + failed + unknown)
        # A recount walks every cell: on a huge job, recount less often than it costs.
        self.every = max(REFRESH_EVERY, 20 * (time.monotonic() - now))
        spent = self.runner.spent()
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix_str(f"failed {failed} live {live} unknown {unknown} "
                                     f"spent {costs.money(spent)} to go {costs.money(to_go)}",
                                     refresh=False)
            self.bar.refresh()
            return
        state = (done, failed, live, unknown)
        if force or (state != self.shown and now - self.last_line >= LOG_EVERY):
            self.shown, self.last_line = state, now
            print(f"[{self.runner.plan.job}] {done}/{self.total} done, {failed} failed, "
                  f"{live} live, {unknown} unknown, spent {costs.money(spent)}, "
                  f"to go {costs.money(to_go)}, "
                  f"{int(now - self.started)} s", file=sys.stderr, flush=True)

    def to_go(self, settled: int) -> float | None:
        """Estimated USD for the cells not settled yet (None when the price is unknown)."""
        r = self.runner
        if self.per_cell is None and r.cells:  # the mean estimate, worked out once
            each = [costs.cell_cost(r.price, c.request, r.fps) for c in r.cells]
            if None not in each:
                self.per_cell = sum(each) / len(each)
        if self.per_cell is None:
            return None
        return max(0, self.total - settled) * self.per_cell

    def close(self) -> None:
        self.update(force=True)
        if self.bar is not None:
            self.bar.close()
