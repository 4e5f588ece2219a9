"""Pacing per registry host: shared backoff, a requests-per-second cap, adaptive concurrency.

A registry that answers 429 (or 503) is telling the whole client to slow down, not the one
task that happened to ask, so the backoff lives here, one `HostPacer` per host shared by every
task of a client: a throttling answer pauses every request to that host until the pause ends
(the server's ``Retry-After``, or an exponential backoff with jitter that grows while the host
keeps throttling and resets once it answers normally again). The same object enforces an
optional cap on requests per second.

`AdaptiveLimiter` bounds a scan's requests in flight to one host and moves that bound once per
round (as many requests as the bound, judged when the last of them has ended):

- it doubles (TCP's slow start) while every slot stays taken and the round's median answer
  comes back within 1.5 times the fastest answer seen: requests are hardly queueing, so the
  link's latency, not the registry, bounds the throughput, and twice the requests in flight
  get about twice as much done. When the registry (or the client's CPU) is the bottleneck, the
  median is many times the fastest answer and the bound stays where it is;
- it halves when the host throttles (429/503; at most once per round), and then grows back by
  one per round (additive increase, multiplicative decrease) to where it was.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from types import TracebackType

import anyio

__all__ = ["AdaptiveLimiter", "Exchange", "HostPacer", "Round"]

_MAX_PAUSE = 60.0  # a shared pause never exceeds this, whatever the backoff computes


class HostPacer:
    """Backoff state and request-rate cap of one host, shared by all tasks of a client."""

    def __init__(
        self,
        *,
        requests_per_second: float | None = None,
        backoff: float = 0.25,
        max_wait: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = 1.0 / requests_per_second if requests_per_second else 0.0
        self._backoff = backoff
        self._max_wait = max_wait
        self._clock = clock
        self._next_slot = 0.0  # the earliest start of the next request under the rate cap
        self.resume_at = 0.0  # no request to this host starts before this (clock time)
        self.throttles = 0  # 429/503 answers seen: a signal for adaptive limiters
        self.round_trip: float | None = None  # the quickest answer seen (handshakes left out)
        self._level = 0  # consecutive throttling answers, for the exponential backoff

    async def wait_turn(self) -> None:
        """Wait out a shared pause, then for a slot under the requests-per-second cap."""
        while True:
            now = self._clock()
            if now >= self.resume_at:
                break
            # Spread the restart a little so that a pause does not end in a burst.
            pause = self.resume_at - now
            await anyio.sleep(pause + random.uniform(0, min(0.5, pause * 0.1)))  # noqa: S311
        if self._interval:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
            if slot > now:
                await anyio.sleep(slot - now)

    def throttled(self, retry_after: float | None) -> float:
        """The host answered 429/503: pause every request to it; returns the pause length.

        The pause is the server's ``Retry-After`` when it gave one, otherwise a backoff that
        doubles with each throttling answer in a row, capped by ``max_wait``, and drawn
        between half and all of that (so many clients do not come back in step).
        """
        self.throttles += 1
        self._level += 1
        if retry_after is not None:
            pause = min(retry_after, _MAX_PAUSE)
        else:
            ceiling = min(self._max_wait, self._backoff * 2 ** min(self._level - 1, 30))
            pause = random.uniform(ceiling / 2, ceiling)  # noqa: S311  (jitter)
        self.resume_at = max(self.resume_at, self._clock() + pause)
        return pause

    def answered(self) -> None:
        """A normal answer: the next throttle starts the backoff from the bottom again."""
        self._level = 0

    def answered_in(self, seconds: float) -> None:
        """A successful exchange took ``seconds`` (without opening its connection)."""
        if self.round_trip is None or seconds < self.round_trip:
            self.round_trip = seconds


class Exchange:
    """One attempt under an `AdaptiveLimiter`: ``timed`` says whether its time counts;
    ``connecting`` is the time spent opening a connection for it (TCP and TLS handshakes),
    which says nothing about the registry's load and is left out."""

    __slots__ = ("connecting", "timed")

    def __init__(self) -> None:
        self.timed = True
        self.connecting = 0.0


class Round:
    """The exchanges started while the bound had one value: judged once all have ended, so
    the quick answers that come back first cannot pass for the typical one."""

    __slots__ = ("busy", "closed", "ended", "started", "throttled", "times")

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0
        self.closed = False  # no more exchanges join it
        self.times: list[float] = []
        self.busy = 0  # exchanges that ended with every slot taken
        self.throttled = False


class AdaptiveLimiter:
    """A capacity limiter for one host whose bound follows the host (see the module doc).

    ``async with limiter.exchange():`` takes a slot for one HTTP exchange and times it.
    ``initial`` is where the bound starts, ``ceiling`` the most it may reach (``initial ==
    ceiling`` makes a fixed bound that still halves when the host throttles and grows back
    afterwards).
    """

    def __init__(
        self,
        initial: int,
        ceiling: int,
        pacer: HostPacer,
        *,
        on_grow: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= initial <= ceiling:
            raise ValueError(f"need 1 <= initial ({initial}) <= ceiling ({ceiling})")
        self._limiter = anyio.CapacityLimiter(initial)
        self._limit = initial
        self._ceiling = ceiling
        self._recover_to = initial  # where the bound returns to after a throttling cut
        self._pacer = pacer
        self._throttles_seen = pacer.throttles
        self._clock = clock
        self._on_grow = on_grow  # called whenever the bound grows
        self._fastest = float("inf")  # the shortest exchange seen: the bare round trip
        self._round = Round()
        self._since_cut = initial  # exchanges ended since the last cut (one may come at once)
        self.peak = initial  # the highest bound reached, for the statistics

    @property
    def limit(self) -> int:
        return self._limit

    def exchange(self) -> _Slot:
        """``async with limiter.exchange() as exchange:``: hold a slot for one HTTP exchange
        (one attempt) and learn from how long it took.

        The caller clears ``exchange.timed`` when the answer says nothing about the
        registry's speed (a throttling or error answer comes back fast).
        """
        return _Slot(self)

    def start(self) -> Round:
        """An exchange begins: it joins the current round, which closes once it is full."""
        round_ = self._round
        round_.started += 1
        if round_.started >= max(8, self._limit):
            round_.closed = True
            self._round = Round()
        return round_

    def end(self, round_: Round, elapsed: float | None, *, saturated: bool) -> None:
        """An exchange ended after ``elapsed`` seconds (None: its time tells nothing)."""
        round_.ended += 1
        self._since_cut += 1
        if self._pacer.throttles != self._throttles_seen:
            # The host throttled: cut at once, then not again for a round, since the answers
            # already in flight carry the same news.
            self._throttles_seen = self._pacer.throttles
            round_.throttled = True
            if self._since_cut >= self._limit:
                self._recover_to = max(self._recover_to, self._limit)
                self._set(self._limit // 2)
                self._since_cut = 0
        elif elapsed is not None:
            self._fastest = min(self._fastest, elapsed)
            round_.times.append(elapsed)
            round_.busy += saturated
        if round_.closed and round_.ended == round_.started:
            self._judge(round_)

    def _judge(self, round_: Round) -> None:
        if round_.throttled or not round_.times:
            return
        if self._limit < self._recover_to:
            self._set(self._limit + 1)  # recovering from a throttling cut
            return
        median = sorted(round_.times)[len(round_.times) // 2]
        if round_.busy * 2 >= round_.started and median <= 1.5 * self._fastest:
            # Answers take hardly longer than the bare round trip: nothing queues, so the
            # link's latency bounds the throughput and more in flight gets more done.
            self._set(self._limit * 2)
            self._recover_to = self._limit

    def _set(self, limit: int) -> None:
        old, self._limit = self._limit, min(self._ceiling, max(1, limit))
        self._limiter.total_tokens = self._limit
        self.peak = max(self.peak, self._limit)
        if self._limit > old and self._on_grow is not None:
            self._on_grow()


class _Slot:
    """The context manager of `AdaptiveLimiter.exchange` (a class: this runs per request)."""

    __slots__ = ("_exchange", "_limiter", "_owner", "_round", "_started")

    def __init__(self, owner: AdaptiveLimiter) -> None:
        self._owner = owner
        self._limiter = owner._limiter

    async def __aenter__(self) -> Exchange:
        await self._limiter.acquire()
        self._round = self._owner.start()
        self._started = self._owner._clock()
        self._exchange = Exchange()
        return self._exchange

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        limiter = self._limiter
        saturated = exc_type is None and limiter.borrowed_tokens >= limiter.total_tokens
        limiter.release()
        exchange = self._exchange
        elapsed = None
        if exc_type is None and exchange.timed:
            elapsed = self._owner._clock() - self._started - exchange.connecting
        self._owner.end(self._round, elapsed, saturated=saturated)
