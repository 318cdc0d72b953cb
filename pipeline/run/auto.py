"""`run.concurrency: auto`: how many requests to keep live, learnt from what the server says.

Pure policy, no I/O: the runner tells it what it saw (a status answer, a request that ended,
a 429) and reads `limit`, the number of requests it may have live now. The facts it uses:

- The server runs requests first in, first out. A request of ours seen waiting at
  `queue_position` p (1-based) has p - 1 requests waiting in front of it; every other request
  submitted before it has started: it runs, or has ended. So at the instant the server
  answered, the account ran (those live before it) - (p - 1): the capacity, when the queue is
  not empty. We only know which of ours were still live then once each has been seen again,
  or has ended (with the server's own run time): the observation is kept until then and
  becomes a figure (`_Figure`): the range of capacities it allows.
- Every figure is a true bound: it counts only facts the server would confirm. We never know
  the server's instant to the millisecond, only windows on our clock: the answer was made
  between our sending the status call and reading its answer; a request was created between
  our sending its submit and reading the answer; it ended its run time after that. Where two
  windows overlap (a request that ended while the answer was on its way, two submits in
  flight together) or a submit's outcome is unknown (`hidden`: a 5xx, a dropped connection;
  it may run ahead of ours), the fact is undecided, and widens the figure's range rather
  than count one way. (Counted as ended, one such request made a figure one too low, and a
  loaded machine settled one below the account's capacity.) The capacity is the most that
  the latest figures allow where they agree (AutoConcurrency._settle says why the most).
- With the capacity known, the same observation says how many slots are free on the server
  already, ours having ended unnoticed: (ours surely before it and believed live) - (p - 1) -
  capacity; a request seen running says at least (ours surely before it) + 1 - capacity.
  `limit` lends those out at once, and takes the loan back as the runner notices the ends
  (`ended`), so a slot never idles while a poll catches up.
- Until a request of ours has waited, the limit doubles each time a whole round of it is
  seen running (the request at the limit's edge first seen running while every slot of ours
  is used: like TCP's slow start), from `start`, or from the capacity a previous run kept.
  With the capacity known, our newest request seen running says that every request of ours
  before it had started: those of them surely live then (decided as above, an undecided one
  not counted) and it are a lower bound of what the account runs. One above the capacity
  found says that the account runs more now: the capacity becomes that figure, and waiting
  requests judge it again. (A guess one higher on a run of such answers alone, as this once
  did, let a loaded runner that noticed ends late keep one more live than the account ran.)
- Only a request seen waiting says the server is full, so only such an observation lowers
  the capacity. A failed generation is a request that ended (its slot was free from then
  on); a 5xx or a dropped connection says nothing of the capacity (but for the `hidden`
  request it may have left). A 429 says the server wants fewer calls now: the limit drops
  below what is live for a pause and growth pauses, while the capacity found stays.

The limit settles at capacity + `queue_ahead`: a couple of requests wait on the server, so no
slot idles while the runner notices a finish, and the queue stays short (cheap to cancel).
The runner keeps asking its newest live request (pipeline.run.poll.watch_queue): that is the
one whose answer says the most (every other request of ours is before it).
`pipeline.run.live.LiveRequests` keeps the run's live requests in the order sent, with the
windows on our clock that decide each fact, and tells `AutoConcurrency` what each answer means.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

QUEUED, RUNNING = "in_queue", "in_progress"
HISTORY = 20  # the last figures that, where they agree, say the capacity
PENDING = 8  # observations waiting to become figures, at most


@dataclass
class _Figure:
    """One observation, waiting until we know which requests before it were live then."""

    asked: float  # when the status call was sent: the server answered at or after this
    at: float  # when its answer was read: the server answered at or before this
    waiting: int  # queue_position - 1 (0 for a request seen running)
    unresolved: set[str]  # request ids
    doubtful: set[str] = field(default_factory=set)  # of those, maybe created after it
    live: int = 0  # of ours before it, surely live when the server answered
    maybe: int = 0  # of ours, maybe before it and live then
    hidden: int = 0  # submits of unknown outcome before it: maybe live on the server
    low: bool = False  # a request seen running: only a lower bound

    def bounds(self) -> tuple[int, int | None]:
        """What the observation says of the capacity: at least, at most (None: no limit).
        Waiting at position p behind k of ours and h others live, the account ran
        k + h - (p - 1); running, with k of ours before it live, at least k + 1."""
        if self.low:
            return self.live + 1, None
        return (max(1, self.live - self.waiting),
                max(1, self.live + self.maybe + self.hidden - self.waiting))


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
    _bound: int | None = None  # an upper bound of the capacity before the first figure
    _figures: deque[tuple[int, int | None]] = field(
        default_factory=lambda: deque(maxlen=HISTORY))  # (at least, at most), oldest first
    _pending: list[_Figure] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.growing = max(1, self.start)

    @classmethod
    def resume(cls, kept: int | None, queue_ahead: int = 2) -> AutoConcurrency:
        """Start from the capacity a previous run of the job found (and go on learning)."""
        auto = cls(queue_ahead=queue_ahead)
        if kept:
            auto.capacity = kept
            auto._figures.append((kept, kept))
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
             hidden: int = 0, asked: float | None = None, surely: Sequence[str] | None = None,
             ended_live: int = 0, ended_maybe: int = 0,
             ran: Sequence[str] | None = None) -> None:
        """A status answer read at `now`, asked at `asked` (default `now`): `ahead` are ours
        maybe submitted before `request` and believed live, `surely` those of them surely
        submitted before it (default: all); `live` is how many of ours are believed live;
        `first`: its first status answer; `hidden`: submits before it whose outcome is
        unknown, which may be live on the server; `ended_live`, `ended_maybe`: ours before it
        noticed ended since `asked`, surely and maybe live when the server answered; `ran`
        (for a request seen running): ours seen running in answers read before `asked`, and
        believed live (default: `surely`)."""
        if status not in (QUEUED, RUNNING):
            return
        asked = now if asked is None else asked
        surely = ahead if surely is None else surely
        ran = surely if ran is None else ran
        if self.held_to is not None and now >= self.paused_until:
            self.held_to = None  # the pause after a 429 is over
        self._seen_live(request, asked)
        if status == QUEUED and queue_position:
            waiting = queue_position - 1
            self._queued(_Figure(asked, now, waiting, set(ahead), set(ahead) - set(surely),
                                 live=ended_live, maybe=ended_maybe, hidden=hidden),
                         len(ahead), len(surely))
            return
        if self.capacity is not None:
            # it runs, so at most capacity - 1 of those before it do: the rest ended unnoticed
            self.unnoticed = max(0, len(surely) + 1 - self.capacity)
            if len(ran) + 1 > self.capacity and sum(f.low for f in self._pending) < 2:
                # it runs, and so did those seen running before: those of them still live
                # then say how many the account ran at least. Once each is decided, a figure
                self._pending.append(_Figure(asked, now, 0, set(ran), low=True))
        newest = len(ahead) + 1 >= live  # every request of ours is before it, or it
        if now < self.paused_until or not (first or newest):
            return
        saturated = live >= self.target  # the limit is what holds us back
        if self.capacity is None and self._bound is None:
            if first and saturated and len(ahead) + 1 >= self.growing:
                # a whole round runs (it and all before it started): try twice as many (a
                # guess while learning: the first request seen waiting bounds it)
                self.growing = min(self.ceiling, 2 * (len(ahead) + 1))

    def _queued(self, f: _Figure, before: int, surely: int) -> None:
        most = before + f.live + f.maybe + f.hidden - f.waiting  # at most, however decided
        if most < 1:
            return
        if self.capacity is None:
            self._bound = most if self._bound is None else min(self._bound, most)
        else:  # (lent on those surely before it only: lending errs low)
            self.unnoticed = max(0, surely - f.waiting - self.capacity)
        if not f.unresolved:
            self._settle(f)
        elif sum(1 for p in self._pending if not p.low) < PENDING:
            self._pending.append(f)

    def ended(self, request: str, window: tuple[float, float] | None) -> None:
        """One of ours was seen ended: `window` is when, on our clock (it ended at or after
        window[0] and at or before window[1]); None when unknown. Takes back a lent slot."""
        if self.unnoticed:
            self.unnoticed -= 1
        done = []
        for f in self._pending:
            if request not in f.unresolved:
                continue
            f.unresolved.discard(request)
            if window is not None and window[0] > f.at:  # ended after the answer: live then
                self._count(f, request, sure=True)
            elif window is None or window[1] > f.asked:  # may have ended while it was asked
                self._count(f, request, sure=False)
            if not f.unresolved:
                done.append(f)
        self._settle_all(done)

    def _seen_live(self, request: str, asked: float) -> None:
        """`request` answered a status call sent at `asked`: live then, so live at every
        observation answered before it was asked."""
        done = []
        for f in self._pending:
            if request in f.unresolved and f.at <= asked:
                f.unresolved.discard(request)
                self._count(f, request, sure=True)
                if not f.unresolved:
                    done.append(f)
        self._settle_all(done)

    @staticmethod
    def _count(f: _Figure, request: str, sure: bool) -> None:
        if sure and request not in f.doubtful:
            f.live += 1
        elif not f.low:  # (a lower bound counts only what is sure)
            f.maybe += 1

    def _settle_all(self, done: list[_Figure]) -> None:
        if done:
            self._pending = [f for f in self._pending if f not in done]
            for f in done:
                self._settle(f)

    def _settle(self, f: _Figure) -> None:
        """An observation whose every request is decided: a figure, the range it allows. The
        capacity is the most that the latest figures allow where they agree (newest first: a
        figure that disagrees with newer ones is from before the account changed). The most,
        as every figure is a true bound, and the undecided counted in it (a submit of unknown
        outcome, a request that may have ended while the answer was on its way) make its
        range wide: the least it allows is often far too low (slots would idle), while the
        most of one figure or another is exact, and one too high only keeps a request more
        waiting. (A figure once counted an undecided request as ended: one too low.)"""
        low, high = f.bounds()
        if f.low and (self.capacity is None or low <= self.capacity):
            return  # (says nothing new)
        self._figures.append((min(low, self.ceiling), high))
        least, most = 1, None
        for lo, hi in reversed(self._figures):
            new_least = max(least, lo)
            new_most = hi if most is None else most if hi is None else min(most, hi)
            if new_most is not None and new_least > new_most:
                break
            least, most = new_least, new_most
        self.capacity = min(self.ceiling, least if most is None else most)
        self._bound = None

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
