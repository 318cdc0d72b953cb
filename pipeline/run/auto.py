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
- Until a request of ours has waited, each request first seen running while every slot of
  ours is used raises the limit by one (doubling per round, like TCP's slow start), from
  `start`, or from the capacity a previous run kept. With the capacity known, a whole round of
  requests first seen running, none of them waiting, says that the account runs more now: the
  capacity is probed one higher (exact figures take it down again if not).
- A 429 says the server wants fewer: the limit drops below what is live and growth pauses.

The limit settles at capacity + `queue_ahead`: a couple of requests wait on the server, so no
slot idles while the runner notices a finish, and the queue stays short (cheap to cancel).
The runner keeps asking its newest live request (pipeline.run.poll.watch_queue): that is the
one whose answer says the most (every other request of ours is before it). `LiveRequests` keeps
the run's live requests in the order sent and tells `AutoConcurrency` what each answer means.
"""

from __future__ import annotations

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
    waiting: int  # queue_position - 1
    unresolved: set[str]  # request ids
    live: int = 0  # of ours before it, known to have been live at `at`


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
    _bound: int | None = None  # an upper bound of the capacity before the first exact figure
    _quiet: int = 0  # requests first seen running (none waiting) since one was seen waiting
    _exact: deque[int] = field(default_factory=lambda: deque(maxlen=EXACT))
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
        if self.capacity is not None:
            base = self.capacity + self.queue_ahead
        elif self._bound is not None:
            base = min(self.growing, self._bound + self.queue_ahead)
        else:
            base = self.growing
        return max(1, min(self.ceiling, base) + self.unnoticed)

    # --- what the runner saw -----------------------------------------------------------------
    def seen(self, request: str, status: str, queue_position: int | None, *,
             ahead: Sequence[str], live: int, first: bool, now: float) -> None:
        """A status answer: `ahead` are ours submitted before `request` and believed live,
        `live` is how many of ours are believed live; `first`: its first status answer."""
        if status not in (QUEUED, RUNNING):
            return
        self._resolve(request, live_then=lambda _: True)
        if status == QUEUED and queue_position:
            self._queued(len(ahead), queue_position - 1, ahead, now)
            return
        if self.capacity is not None:
            # it runs, so at most capacity - 1 of those before it do: the rest ended unnoticed
            self.unnoticed = max(0, len(ahead) + 1 - self.capacity)
        if not first or now < self.paused_until:
            return
        saturated = live >= self.limit - self.unnoticed  # the limit is what holds us back
        if self.capacity is None and self._bound is None:
            if saturated:  # it and all before it run (none has ended yet): try twice as many
                self.growing = min(self.ceiling, max(self.growing, 2 * (len(ahead) + 1)))
            return
        self._quiet += 1
        if saturated and self.capacity is not None and \
                self._quiet > self.capacity + self.queue_ahead:
            self.capacity = min(self.ceiling, self.capacity + 1)  # probe: exact figures judge
            self._quiet = 0

    def _queued(self, before: int, waiting: int, ahead: Sequence[str], now: float) -> None:
        self._quiet = 0
        figure = before - waiting  # the capacity plus ours that ended unnoticed
        if figure < 1:
            return
        if self.capacity is None:
            self._bound = figure if self._bound is None else min(self._bound, figure)
        else:
            self.unnoticed = max(0, figure - self.capacity)
        if len(self._pending) < PENDING:
            self._pending.append(_Figure(now, waiting, set(ahead)))

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
                    self._exact.append(max(1, f.live - f.waiting))
                    self.capacity = min(self._exact)
                    self._bound = None
        if done:
            self._pending = [f for f in self._pending if f not in done]

    def rate_limited(self, live: int, now: float, pause: float = 30.0) -> None:
        """A 429: ask for fewer than are live now, and do not grow for `pause` seconds."""
        target = max(1, live - 1)
        if self.capacity is None:
            self.growing = min(self.growing, target)
            if self._bound is not None:
                self._bound = min(self._bound, max(1, target - self.queue_ahead))
        else:
            self.capacity = max(1, min(self.capacity, target - self.queue_ahead))
            self._exact.clear()
            self._exact.append(self.capacity)
        self.unnoticed = 0
        self.paused_until = now + pause

    def describe(self) -> str:
        if self.capacity is None:
            return f"auto: learning (limit {self.limit})"
        return f"auto: capacity {self.capacity} + {self.queue_ahead} waiting"


class LiveRequests:
    """The run's requests live on the server, in the order sent, and what `auto` learns from
    them: the bookkeeping between the runner's events and AutoConcurrency (which stays pure).
    Also read by the pollers (which requests are the oldest; when one was last seen waiting).
    `wake` is called when the limit grows (waiters for a slot look again); `on_capacity` with
    each new capacity `auto` finds."""

    def __init__(self, auto: AutoConcurrency | None = None, *,
                 wake: Callable[[], None] = lambda: None):
        self.auto = auto
        self.wake = wake
        self.on_capacity: Callable[[int], object] | None = None
        self.order: dict[str, None] = {}  # cells with a request live, in the order sent
        self._asked: set[str] = set()  # cells of `order` whose request has answered a status
        self.waited_until: dict[str, float] = {}  # when a live request was last seen waiting

    def sent(self, cell: str) -> None:
        """A request of `cell` is live on the server (accepted now, or found by a resume)."""
        self.order[cell] = None

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
                       first=first, now=now)
        self._learnt(before)

    def ended(self, cell: str, finished_at: float | None) -> None:
        """`cell`'s request ended (`finished_at`: when, on our clock, if the server said)."""
        self._asked.discard(cell)
        self.waited_until.pop(cell, None)
        if self.order.pop(cell, 0) is None and self.auto is not None:
            before = self.auto.limit, self.auto.capacity
            self.auto.ended(cell, finished_at)
            self._learnt(before)

    def rate_limited(self, now: float) -> None:
        """A submit was answered 429: with `auto`, ask for fewer."""
        if self.auto is not None:
            before = self.auto.limit, self.auto.capacity
            self.auto.rate_limited(len(self.order), now)
            self._learnt(before)

    def _learnt(self, before: tuple[int, int | None]) -> None:
        assert self.auto is not None
        if self.auto.capacity != before[1] and self.auto.capacity is not None and \
                self.on_capacity is not None:
            self.on_capacity(self.auto.capacity)
        if self.auto.limit > before[0]:
            self.wake()
