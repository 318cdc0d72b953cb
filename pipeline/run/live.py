"""The run's requests live on the server, in the order sent, and what `concurrency: auto`
learns from each status answer about them (pipeline.run.auto.AutoConcurrency, pure policy):
the bookkeeping between the runner's events and that policy, and the windows on our clock
(a submit from its send to its answer, a status answer from its call to its reading, an end
through the server's clock) that decide each fact an answer is read with."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from .auto import QUEUED, RUNNING, AutoConcurrency

# cells of ours that ended on the server unnoticed yet (their slots lent out): a count the
# progress shows under `concurrency: auto` (LiveRequests.confirmed), never journalled
ENDED_UNNOTICED = "ended_unnoticed"


class LiveRequests:
    """The run's requests live on the server, in the order sent, and what `auto` learns from
    them: the bookkeeping between the runner's events and AutoConcurrency (which stays pure).
    Also read by the pollers (which requests are the oldest; when one was last seen waiting).
    `wake` is called when the limit grows (waiters for a slot look again); `on_capacity` with
    each new capacity `auto` finds. A submit whose outcome is unknown (a 5xx, a dropped
    connection) may have left a request running ahead of ours: it is counted `hidden` in what
    later requests are seen to wait behind, until it has surely ended: a request of ours sent
    after that answer came back was seen running (first in, first out: the hidden one had
    started by then), and since then as long has passed as any request of ours took on the
    server. (Counting it from its submit instead, one that waited long in the queue was
    forgotten while it still held a slot, and a figure came out one low.)

    Each request's creation on the server is known as a window on our clock: from our sending
    its submit (`posting`) to our reading the answer (`sent`). A status answer is read a while
    after the server made it, and requests of ours may have ended in between and been noticed
    first: the ends noticed lately are kept (`_ends`) so that an answer counts those live when
    it was asked (see AutoConcurrency on windows that overlap)."""

    KEEP_ENDS = 60.0  # seconds an end is kept for the status answers in flight when noticed

    def __init__(self, auto: AutoConcurrency | None = None, *,
                 wake: Callable[[], None] = lambda: None):
        self.auto = auto
        self.wake = wake
        self.on_capacity: Callable[[int], object] | None = None
        self.order: dict[str, float] = {}  # cells with a request live, in the order sent:
        #                                    when (time.time()) its submit was answered
        self.since: dict[str, float] = {}  # when its submit was sent (absent: as `order`)
        # submits of unknown outcome: [sent, answered, when one sent after it was seen running]
        self.unknown: list[list[float]] = []
        self.longest = 0.0  # the longest a request of ours took from its submit to its end
        self._asked: set[str] = set()  # cells of `order` whose request has answered a status
        self.waited_until: dict[str, float] = {}  # when a live request was last seen waiting
        self._running: dict[str, float] = {}  # when a live request was first seen running
        self._posting: dict[str, float] = {}  # submits on their way: when sent
        self._widest = 0.0  # the widest creation window so far
        # ends noticed lately: (noticed, sent window, end window or None), in noticed order
        self._ends: deque[tuple[float, float, float, tuple[float, float] | None]] = deque()
        self._ends_since = 0.0  # ends noticed before this are forgotten
        self._offset: tuple[float, float] | None = None  # the server's clock minus ours

    def posting(self, cell: str, at: float | None = None) -> None:
        """A submit for `cell` is being sent now (the earliest its request can exist)."""
        if self.auto is not None:
            self._posting[cell] = time.time() if at is None else at

    def _on_our_clock(self, created: float, finished: float, posted: float,
                      answered: float) -> tuple[float, float]:
        """When a request ended, as a window on our clock. It was created between our sending
        its submit and reading the answer, which bounds the server's clock against ours (the
        bounds of every request so far, where they agree, narrow it: as NTP does); its end is
        as far from its creation as the server says."""
        lo, hi = created - answered, created - posted  # the server's clock minus ours
        if self._offset is not None and max(lo, self._offset[0]) <= min(hi, self._offset[1]):
            lo, hi = max(lo, self._offset[0]), min(hi, self._offset[1])
        self._offset = lo, hi  # (bounds that disagree: the clock moved, start again)
        took = finished - created
        return max(posted + took, finished - hi), min(answered + took, finished - lo)

    def unsent(self, cell: str) -> None:
        """The submit for `cell` sent last failed (its outcome, if unknown: `outcome_unknown`)."""
        self._posting.pop(cell, None)

    def sent(self, cell: str, at: float | None = None) -> None:
        """A request of `cell` is live on the server (accepted now, or found by a resume)."""
        answered = time.time() if at is None else at
        self.order[cell] = answered
        posted = self._posting.pop(cell, None)
        if posted is not None and posted < answered:
            self.since[cell] = posted
            self._widest = max(self._widest, answered - posted)

    def outcome_unknown(self, at: float | None = None, answered: float | None = None) -> None:
        """A submit sent `at` (time.time()) was answered by a 5xx or a dropped connection at
        `answered` (default now): it may be live unseen, ahead of ours sent after it. What
        ours were seen waiting behind since is no exact figure."""
        answered = time.time() if answered is None else answered
        self.unknown.append([answered if at is None else at, answered, math.inf])

    def hidden(self, before: float, now: float) -> int:
        """Submits of unknown outcome sent before `before` that may still be live at `now`."""
        if self.longest:
            self.unknown = [u for u in self.unknown if now - u[2] < self.longest]
        return sum(1 for u in self.unknown if u[0] < before)

    def _started(self, cell: str, now: float) -> None:
        """`cell`'s request ran by `now`: so had every hidden one created before it."""
        posted = self.since.get(cell, self.order.get(cell))
        for u in self.unknown:
            if posted is not None and posted >= u[1] and now < u[2]:
                u[2] = now

    def seen(self, cell: str, status: str, queue_position: int | None, now: float,
             asked: float | None = None) -> None:
        """A status answer for `cell`'s live request (from its poller or the queue watch),
        read at `now` for a call sent at `asked` (default: `now`)."""
        if self.auto is None or cell not in self.order:
            return
        asked = now if asked is None else asked
        first = cell not in self._asked
        self._asked.add(cell)
        before = self.auto.limit, self.auto.capacity
        ran: list[str] | None = None
        if status == RUNNING:
            if self.unknown:
                self._started(cell, now)
            ran = [c for c, t in self._running.items() if t <= asked and c != cell]
            self._running.setdefault(cell, now)
        queued = status == QUEUED and queue_position
        ahead, surely, earlier = self._ahead(cell, bool(queued))
        ended_live = ended_maybe = 0
        if queued:  # first in, first out: those just before it (answered before it) wait too
            for other in [*ahead[max(0, earlier - queued + 1):earlier], cell]:
                self.waited_until[other] = now
            if asked < self._ends_since:  # ends it should count are forgotten: no figure
                return
            ended_live, ended_maybe = self._ended_while_asked(cell, asked, now)
        self.auto.seen(cell, status, queue_position, ahead=ahead, live=len(self.order),
                       first=first, now=now, asked=asked, surely=surely,
                       ended_live=ended_live, ended_maybe=ended_maybe, ran=ran,
                       hidden=self.hidden(self.order[cell], now) if self.unknown else 0)
        self._learnt(before)

    def _ahead(self, cell: str, queued: bool) -> tuple[list[str], list[str], int]:
        """Ours live that may have been created before `cell`'s request (those answered before
        it first: how many, the third), and those of them surely created before it (answered
        before it was sent). For a request seen running (`queued` False) only those answered
        before it."""
        lo, hi = self.since.get(cell, self.order[cell]), self.order[cell]
        ahead: list[str] = []
        surely: list[str] = []
        passed = False
        earlier = 0
        for other, answered in self.order.items():
            if other == cell:
                passed, earlier = True, len(ahead)
                continue
            if not passed:  # answered before it: before it unless sent while it was
                ahead.append(other)
                if answered <= lo:
                    surely.append(other)
            elif not queued or answered - self._widest > hi:
                break  # (answered later still: sent after it was answered)
            elif self.since.get(other, answered) < hi:  # sent while it was: maybe before it
                ahead.append(other)
        return ahead, surely, earlier

    def _ended_while_asked(self, cell: str, asked: float, now: float) -> tuple[int, int]:
        """Ours that may have been created before `cell`'s request and live when the server
        answered, yet not among those live now: noticed ended since `asked`, or still on their
        way (their submit not answered yet). (How many surely, how many maybe.)"""
        lo, hi = self.since.get(cell, self.order[cell]), self.order[cell]
        maybe = sum(1 for other, at in self._posting.items() if at < hi and other != cell)
        surely = 0
        for noticed, sent_lo, sent_hi, window in reversed(self._ends):
            if noticed <= asked:
                break
            if sent_lo >= hi:  # sent after it was answered: behind it
                continue
            if window is not None and window[1] <= asked:
                continue  # ended before the call was sent
            if sent_hi <= lo and window is not None and window[0] > now:
                surely += 1  # before it, and ended after the server answered
            else:
                maybe += 1  # (it may have ended, or been behind, as the server saw)
        return surely, maybe

    def ended(self, cell: str, span: tuple[float, float] | None,
              noticed: float | None = None) -> None:
        """`cell`'s request ended, noticed at `noticed` (default now); `span`: its creation
        and its end on the server's clock (POSIX seconds), when the server said."""
        self._asked.discard(cell)
        self.waited_until.pop(cell, None)
        self._running.pop(cell, None)
        self._posting.pop(cell, None)
        if self.unknown:
            self._started(cell, time.time() if noticed is None else noticed)
        answered = self.order.pop(cell, None)
        posted = self.since.pop(cell, answered)
        if answered is None or posted is None:
            return
        window = None
        if span is not None:
            created, finished = span
            self.longest = max(self.longest, finished - created)
            window = self._on_our_clock(created, finished, posted, answered)
        if self.auto is None:
            return
        noticed = time.time() if noticed is None else noticed
        self._ends.append((noticed, posted, answered, window))
        while self._ends and self._ends[0][0] < noticed - self.KEEP_ENDS:
            self._ends_since = self._ends.popleft()[0]
        before = self.auto.limit, self.auto.capacity
        self.auto.ended(cell, window)
        self._learnt(before)

    def rate_limited(self, now: float) -> None:
        """A submit was answered 429: with `auto`, ask for fewer."""
        if self.auto is not None:
            before = self.auto.limit, self.auto.capacity
            self.auto.rate_limited(len(self.order), now)
            self._learnt(before)

    def confirmed(self, counts: dict[str, int]) -> dict[str, int]:
        """A job's counts with its queued and running cells as the server would count them:
        with the capacity found, those of ours live beyond it wait, the rest run (a cell not
        polled lately is counted queued by its journal, though it may run, or have ended).
        Those that ended unnoticed (their slots lent to new requests) are counted apart, as
        `ended_unnoticed`: counted running, the line said "running 40" at a capacity of 20."""
        if self.auto is None:
            return counts
        queued, running = counts.get("queued", 0), counts.get("running", 0)
        waiting = self.auto.server_queue(queued + running)
        if waiting is None:
            return counts
        if waiting < queued:
            queued, running = waiting, queued + running - waiting
        ended = min(self.auto.unnoticed, running)
        if (queued, running, ended) == (counts.get("queued", 0), counts.get("running", 0), 0):
            return counts
        shown = {**counts, "queued": queued, "running": running - ended}
        if not ended:
            return shown
        out = {}
        for key, value in shown.items():  # right after `running`: the line lists them in order
            out[key] = value
            if key == "running":
                out[ENDED_UNNOTICED] = ended
        return out

    def _learnt(self, before: tuple[int, int | None]) -> None:
        assert self.auto is not None
        if self.auto.capacity != before[1] and self.auto.capacity is not None and \
                self.on_capacity is not None:
            self.on_capacity(self.auto.capacity)
        if self.auto.limit > before[0]:
            self.wake()
