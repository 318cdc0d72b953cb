"""`run.concurrency: auto`: how many requests to keep live, learnt from what the server says.

Pure policy, no I/O: the runner tells it what it saw (a status answer, a request that ended,
a 429) and reads `limit`, the number of requests it may have live now. The facts it uses:

- The server runs requests first in, first out. A request of ours seen waiting at
  `queue_position` p (1-based) has p - 1 requests waiting in front of it; every other request
  of ours submitted before it has started: it runs, or has ended. So at that instant the
  account ran (ours live before it) - (p - 1) of ours: the capacity, when the queue is not
  empty. We only know which of them were still live once each has been seen again, or has
  ended (with the server's own finish time): the observation is kept until then and becomes
  an exact figure (`_Figure`). The capacity is the smallest of the last few exact figures
  (an end is dated on our clock a little late, by the submit's answer time, so a figure can
  only err upwards).
- With the capacity known, the same observation says how many slots are free on the server
  already, ours having ended unnoticed: (ours live before it) - (p - 1) - capacity; a request
  seen running says at least (ours live before it) + 1 - capacity. `limit` lends those out at
  once, and takes the loan back as the runner notices the ends (`ended`), so a slot never
  idles while a poll catches up.
- Until a request of ours has waited, the limit doubles each time a whole round of it is
  seen running (the request at the limit's edge first seen running while every slot of ours
  is used: like TCP's slow start), from `start`, or from the capacity a previous run kept.
  With the capacity known, a whole round of answers saying that our newest request runs (the
  server's queue empty although we keep `queue_ahead` waiting), none of them waiting, says
  that the account runs more now: the capacity is probed one higher (exact figures take it
  down again if not). An answer about an older request says nothing of the queue behind it.
- Only a request seen waiting says the server is full, so only such an observation lowers
  the capacity. A failed generation is a request that ended (its slot was free from then
  on); a 5xx or a dropped connection says nothing of the capacity, except that a submit
  whose outcome is unknown may have been accepted: such a request (`hidden`) may run ahead
  of ours, so a figure counts it as ours: an upper bound, which may cap the capacity but
  never raise it. A 429 says the server wants
  fewer calls now: the limit drops below what is live for a pause and growth pauses, while
  the capacity found stays what it is.

The limit settles at capacity + `queue_ahead`: a couple of requests wait on the server, so no
slot idles while the runner notices a finish, and the queue stays short (cheap to cancel).
The runner keeps asking its newest live request (pipeline.run.poll.watch_queue): that is the
one whose answer says the most (every other request of ours is before it). `LiveRequests` keeps
the run's live requests in the order sent and tells `AutoConcurrency` what each answer means.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

QUEUED, RUNNING = "in_queue", "in_progress"
EXACT = 3  # exact figures whose smallest is the capacity
PENDING = 8  # observations waiting to become exact figures, at most


@dataclass
class _Figure:
    """One queue observation, waiting until we know which requests before it were live."""

    at: float
    waiting: int  # queue_position - 1, less the submits of unknown outcome before it
    unresolved: set[str]  # request ids
    live: int = 0  # of ours before it, known to have been live at `at`
    hidden: int = 0  # submits of unknown outcome before it: the figure is only a bound


@dataclass
class AutoConcurrency:
    """The learnt capacity and the limit it implies."""

    queue_ahead: int = 2
    start: int = 2
    ceiling: int = 512
    capacity: int | None = None
    unnoticed: int = 0  # slots free on the server (ours ended there), lent out until noticed
    growing: int = 0  # the limit while the capacity is unknown
    paused_until: float = 0.0  # no growth before this time (after a 429)
    held_to: int | None = None  # after a 429, at most this many live until paused_until
    _bound: int | None = None  # an upper bound of the capacity before the first exact figure
    _quiet: int = 0  # answers of the newest request running since one was seen waiting
    _exact: deque[int] = field(default_factory=lambda: deque(maxlen=EXACT))
    _upper: deque[int] = field(default_factory=lambda: deque(maxlen=EXACT))  # bounds only
    _pending: list[_Figure] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.growing = max(1, self.start)

    @classmethod
    def resume(cls, kept: int | None, queue_ahead: int = 2) -> AutoConcurrency:
        """Start from the capacity a previous run of the job found (and go on learning)."""
        auto = cls(queue_ahead=queue_ahead)
        if kept:
            auto.capacity = kept
            auto._exact.append(kept)
        return auto

    @property
    def limit(self) -> int:
        """How many requests of ours may be live now (the slots lent out included)."""
        return self.target + self.unnoticed

    @property
    def target(self) -> int:
        """How many requests the server should have of ours (running and waiting): the
        capacity found plus `queue_ahead`, or what learning allows, or less for a pause after
        a 429. What a person is shown (the slots lent out are the runner's bookkeeping)."""
        if self.capacity is not None:
            base = self.capacity + self.queue_ahead
        elif self._bound is not None:
            base = min(self.growing, self._bound + self.queue_ahead)
        else:
            base = self.growing
        if self.held_to is not None:
            base = min(base, self.held_to)
        return max(1, min(self.ceiling, base))

    def server_queue(self, live: int) -> int | None:
        """How many of our `live` requests the server has waiting, at most, as it would say:
        beyond the capacity found, once the slots of those that ended unnoticed are taken off
        (None while the capacity is unknown)."""
        if self.capacity is None:
            return None
        return max(0, live - self.unnoticed - self.capacity)

    # --- what the runner saw -----------------------------------------------------------------
    def seen(self, request: str, status: str, queue_position: int | None, *,
             ahead: Sequence[str], live: int, first: bool, now: float,
             hidden: int = 0) -> None:
        """A status answer: `ahead` are ours submitted before `request` and believed live,
        `live` is how many of ours are believed live; `first`: its first status answer;
        `hidden`: submits before it whose outcome is unknown, which may be live on the server."""
        if status not in (QUEUED, RUNNING):
            return
        if self.held_to is not None and now >= self.paused_until:
            self.held_to = None  # the pause after a 429 is over
        self._resolve(request, live_then=lambda _: True)
        if status == QUEUED and queue_position:
            self._queued(len(ahead), queue_position - 1, ahead, now, hidden)
            return
        if self.capacity is not None:
            # it runs, so at most capacity - 1 of those before it do: the rest ended unnoticed
            self.unnoticed = max(0, len(ahead) + 1 - self.capacity)
        newest = len(ahead) + 1 >= live  # every request of ours is before it, or it
        if now < self.paused_until or not (first or newest):
            return
        saturated = live >= self.target  # the limit is what holds us back
        if self.capacity is None and self._bound is None:
            if first and saturated and len(ahead) + 1 >= self.growing:
                # a whole round runs (it and all before it started): try twice as many
                self.growing = min(self.ceiling, 2 * (len(ahead) + 1))
            return
        if not newest:
            return
        self._quiet += 1
        if saturated and self.capacity is not None and \
                self._quiet > self.capacity + self.queue_ahead:
            self.capacity = min(self.ceiling, self.capacity + 1)  # probe: exact figures judge
            self._quiet = 0

    def _queued(self, before: int, waiting: int, ahead: Sequence[str], now: float,
                hidden: int = 0) -> None:
        self._quiet = 0
        figure = before - waiting  # the capacity plus ours that ended unnoticed
        if figure + hidden < 1:
            return
        if self.capacity is None:  # (a hidden request may hold a slot: it counts as ours)
            bound = figure + hidden
            self._bound = bound if self._bound is None else min(self._bound, bound)
        else:
            self.unnoticed = max(0, figure - self.capacity)
        if len(self._pending) < PENDING:  # (those hidden count as ours: it errs upwards)
            self._pending.append(_Figure(now, waiting - hidden, set(ahead), hidden=hidden))

    def ended(self, request: str, finished_at: float | None) -> None:
        """One of ours was seen ended (`finished_at`: when, by the server's clock brought to
        ours; None when unknown). Takes back a lent slot."""
        if self.unnoticed:
            self.unnoticed -= 1
        self._resolve(request, live_then=lambda at: finished_at is not None and
                      finished_at > at, unknown=finished_at is None)

    def _resolve(self, request: str, live_then: Callable[[float], bool],
                 unknown: bool = False) -> None:
        done = []
        for f in self._pending:
            if request in f.unresolved:
                if unknown:  # cannot tell: the observation cannot become exact
                    done.append(f)
                    continue
                f.unresolved.discard(request)
                f.live += 1 if live_then(f.at) else 0
                if not f.unresolved:
                    done.append(f)
                    (self._upper if f.hidden else self._exact).append(max(1, f.live - f.waiting))
                    self.capacity = min(self._exact or self._upper)
                    if self._upper:  # a bound caps what exact figures say, never raises it
                        self.capacity = min(self.capacity, min(self._upper))
                    self._bound = None
        if done:
            self._pending = [f for f in self._pending if f not in done]

    def rate_limited(self, live: int, now: float, pause: float = 30.0) -> None:
        """A 429: ask for fewer than are live now, and do not grow, for `pause` seconds. The
        capacity found stays: a 429 limits calls, it does not measure the account's slots."""
        if self.held_to is not None and now < self.paused_until:
            return  # one step down per pause, however many 429s come in it
        target = max(1, live - 1)
        if self.capacity is None:
            self.growing = min(self.growing, target)
        self.held_to = target
        self.unnoticed = 0
        self.paused_until = now + pause

    def describe(self) -> str:
        if self.capacity is None:
            return f"auto: learning (limit {self.target})"
        return f"auto: capacity {self.capacity} + {self.queue_ahead} waiting"


class LiveRequests:
    """The run's requests live on the server, in the order sent, and what `auto` learns from
    them: the bookkeeping between the runner's events and AutoConcurrency (which stays pure).
    Also read by the pollers (which requests are the oldest; when one was last seen waiting).
    `wake` is called when the limit grows (waiters for a slot look again); `on_capacity` with
    each new capacity `auto` finds. A submit whose outcome is unknown (a 5xx, a dropped
    connection) may have left a request running ahead of ours: it is counted `hidden` in what
    later requests are seen to wait behind, until as long has passed as any request of ours
    took from its submit to its end (until one has ended, for good)."""

    def __init__(self, auto: AutoConcurrency | None = None, *,
                 wake: Callable[[], None] = lambda: None):
        self.auto = auto
        self.wake = wake
        self.on_capacity: Callable[[int], object] | None = None
        self.order: dict[str, float] = {}  # cells with a request live, in the order sent:
        #                                    when (time.time()) it was sent
        self.unknown: list[float] = []  # when submits of unknown outcome were sent
        self.longest = 0.0  # the longest a request of ours took from its submit to its end
        self._asked: set[str] = set()  # cells of `order` whose request has answered a status
        self.waited_until: dict[str, float] = {}  # when a live request was last seen waiting

    def sent(self, cell: str, at: float | None = None) -> None:
        """A request of `cell` is live on the server (accepted now, or found by a resume)."""
        self.order[cell] = time.time() if at is None else at

    def outcome_unknown(self, at: float | None = None) -> None:
        """A submit sent `at` (time.time()) was answered by a 5xx or a dropped connection: it
        may be live unseen, ahead of ours sent after it. What ours were seen waiting behind
        since is no exact figure."""
        self.unknown.append(time.time() if at is None else at)

    def hidden(self, before: float, now: float) -> int:
        """Submits of unknown outcome sent before `before` that may still be live at `now`."""
        if self.longest:
            self.unknown = [t for t in self.unknown if now - t < self.longest]
        return sum(1 for t in self.unknown if t < before)

    def seen(self, cell: str, status: str, queue_position: int | None, now: float) -> None:
        """A status answer for `cell`'s live request (from its poller or the queue watch)."""
        if self.auto is None or cell not in self.order:
            return
        first = cell not in self._asked
        self._asked.add(cell)
        before = self.auto.limit, self.auto.capacity
        ahead = []
        for other in self.order:
            if other == cell:
                break
            ahead.append(other)
        if status == QUEUED and queue_position:  # first in, first out: those just before it
            for other in [*ahead[len(ahead) - queue_position + 1:], cell]:  # wait too
                self.waited_until[other] = now
        self.auto.seen(cell, status, queue_position, ahead=ahead, live=len(self.order),
                       first=first, now=now, hidden=self.hidden(self.order[cell], now)
                       if self.unknown else 0)
        self._learnt(before)

    def ended(self, cell: str, finished_at: float | None) -> None:
        """`cell`'s request ended (`finished_at`: when, on our clock, if the server said)."""
        self._asked.discard(cell)
        self.waited_until.pop(cell, None)
        sent = self.order.pop(cell, None)
        if sent is not None and finished_at is not None:
            self.longest = max(self.longest, finished_at - sent)
        if sent is not None and self.auto is not None:
            before = self.auto.limit, self.auto.capacity
            self.auto.ended(cell, finished_at)
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
        polled lately is counted queued by its journal, though it may run, or have ended)."""
        if self.auto is None:
            return counts
        live = counts.get("queued", 0) + counts.get("running", 0)
        waiting = self.auto.server_queue(live)
        if waiting is None or waiting >= counts.get("queued", 0):
            return counts
        return {**counts, "queued": waiting, "running": live - waiting}

    def _learnt(self, before: tuple[int, int | None]) -> None:
        assert self.auto is not None
        if self.auto.capacity != before[1] and self.auto.capacity is not None and \
                self.on_capacity is not None:
            self.on_capacity(self.auto.capacity)
        if self.auto.limit > before[0]:
            self.wake()
