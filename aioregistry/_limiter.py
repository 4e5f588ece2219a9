"""A scan's bound on requests in flight to one registry, which follows the registry.

`AdaptiveLimiter` moves its bound once per round (the exchanges started while the bound had
one value, at least 32, judged when the last of them has ended, so the quick answers that come
back first cannot pass for the typical one):

- It doubles (TCP's slow start) while every slot stays taken and the round's median answer
  comes back within 1.5 times the fastest answer seen: requests are hardly queueing, so the
  link's latency, not the registry, bounds the throughput, and twice the requests in flight get
  about twice as much done. When the registry (or the client's CPU) is the bottleneck, the
  median is many times the fastest answer and the bound stays where it is.
- It gives way to a registry that refuses requests beyond a number in flight (bare 503s, as a
  proxy's or a load balancer's connection cap), without mistaking random loss (503s at a flat
  rate) for one. Each exchange knows how many of the limiter's exchanges were in flight when
  it began; a round that refuses more than the share learnt to be loss, in which every
  exchange begun with fewer than some number in flight was admitted (four at least) and most
  begun with more were refused, shows a capacity: the bound goes to one less than that number.
  Once a capacity is known, a refusing round whose exchanges all began alike (a steady state)
  is cut by what its share implies (with refused slots held, ``limit - capacity`` of every
  ``limit`` are refused), by half at most. Refusals alike at every number in flight are loss,
  which fewer in flight would not cure: that share is tolerated from then on. A registry that
  showed a capacity gets one more in flight after a round without refusals (additive
  increase), probing just above the capacity now and then: each time a probe one above is
  refused again, it waits twice as many clean rounds before the next (up to 16). Half a round
  refused is judged at once, not at the round's end.

A refused exchange keeps its slot for the typical answer time before giving it up, as if it
had been admitted: otherwise its slot would come back at once, be refilled and refused again,
and the share of refusals would say nothing about how many requests in flight are too many.
429s are not this limiter's business: the host's rate control (`_pacing.HostPacer`) answers
them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

import anyio

__all__ = ["MIN_ROUND", "AdaptiveLimiter", "Exchange", "Round"]

MIN_ROUND = 32  # exchanges per round at least: fewer make a share of refusals mere noise


class Exchange:
    """One attempt under an `AdaptiveLimiter`, as the transport reports it.

    ``timed``: whether its time says something about the registry's speed (an error answer
    comes back fast and does not); ``connecting``: the time spent opening a connection for it
    (TCP and TLS handshakes), which says nothing about the registry's load and is left out;
    ``refused``: the registry answered a bare 503 (no ``Retry-After``).
    """

    __slots__ = ("connecting", "hedged", "in_flight", "opening", "refused", "timed")

    def __init__(self, in_flight: int = 0) -> None:
        self.timed = True
        self.connecting = 0.0
        self.opening = False  # a connection is being opened for it now
        self.refused = False
        self.hedged = False  # a duplicate was sent: its time is the hedging's, not the host's
        self.in_flight = in_flight  # this limiter's exchanges in flight as it began, itself too


class Round:
    """The exchanges started while the bound had one value."""

    __slots__ = (
        "busy",
        "closed",
        "ended",
        "epoch",
        "opened",
        "refused",
        "sent",
        "size",
        "started",
        "times",
    )

    def __init__(self, epoch: int, size: int) -> None:
        self.epoch = epoch  # the bound's change count when it began
        self.size = size  # it closes once this many have started
        self.started = 0
        self.ended = 0
        self.closed = False  # no more exchanges join it
        self.times: list[float] = []
        self.busy = 0  # exchanges that ended with every slot taken
        self.refused = 0
        self.opened = 0.0  # when its first exchange began (clock time)
        self.sent: list[tuple[int, bool]] = []  # (in flight as it began, refused) of each


class AdaptiveLimiter:
    """A capacity limiter for one host whose bound follows the host (see the module doc).

    ``async with limiter.exchange() as exchange:`` takes a slot for one HTTP exchange and
    learns from it. ``initial`` is where the bound starts, ``ceiling`` the most it may reach
    (``initial == ceiling`` makes a fixed bound, which still gives way to a registry that
    refuses more requests in flight and grows back afterwards).
    """

    def __init__(
        self,
        initial: int,
        ceiling: int,
        *,
        on_grow: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= initial <= ceiling:
            raise ValueError(f"need 1 <= initial ({initial}) <= ceiling ({ceiling})")
        self._limiter = anyio.CapacityLimiter(initial)
        self._limit = initial
        self._ceiling = ceiling
        self._clock = clock
        self._on_grow = on_grow  # called whenever the bound grows
        self._fastest = float("inf")  # the shortest exchange seen: the bare round trip
        self._typical = 0.0  # the latest round's median answer time
        self._epoch = 0
        self._round = Round(0, max(MIN_ROUND, initial))
        self._tolerated = 0.0  # the share of refusals learnt to be loss, not capacity
        self.capped = False  # the registry showed a capacity: grow by one per round only
        self._clean = 0  # rounds in a row without refusals, since the last change
        self._patience = 1  # such rounds a capped bound waits before it probes one above
        self._probed = 0  # the bound that was last probed above the capacity, and refused
        self._answered = anyio.Event()  # set at the first admitted answer
        self.peak = initial  # the highest bound reached, for the statistics

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def tolerated(self) -> float:
        """The share of refusals this limiter has learnt to read as random loss."""
        return self._tolerated

    def exchange(self) -> _Slot:
        """``async with limiter.exchange() as exchange:``: hold a slot for one HTTP exchange
        (one attempt) and learn from how it went (the caller fills in the `Exchange`)."""
        return _Slot(self)

    def start(self) -> Round:
        """An exchange begins: it joins the current round, which closes once it is full."""
        round_ = self._round
        if not round_.started:
            round_.opened = self._clock()
        round_.started += 1
        if round_.started >= round_.size:
            round_.closed = True
            self._round = Round(self._epoch, max(MIN_ROUND, self._limit))
        return round_

    def end(
        self,
        round_: Round,
        elapsed: float | None,
        *,
        saturated: bool,
        refused: bool = False,
        in_flight: int = 0,
    ) -> None:
        """An exchange begun with ``in_flight`` of this limiter's exchanges in flight (itself
        too) ended after ``elapsed`` seconds (None: its time tells nothing), ``refused`` or
        not."""
        round_.ended += 1
        round_.sent.append((in_flight, refused))
        if refused:
            round_.refused += 1
            early = round_.refused == max(MIN_ROUND // 2, round_.size // 2)
            if early and round_.epoch == self._epoch and not self.capped:
                # Half a round refused already: judge now rather than let the rest of it
                # (and the rounds begun meanwhile) be refused too.
                self._refusing(round_, round_.refused / round_.ended)
        elif elapsed is not None:
            if not self._typical:
                self._typical = elapsed  # until a round is judged
                self._answered.set()
            self._fastest = min(self._fastest, elapsed)
            round_.times.append(elapsed)
            round_.busy += saturated
        if round_.closed and round_.ended == round_.started:
            self._judge(round_)

    async def hold_after_refusal(self) -> None:
        """Keep a refused exchange's slot for the typical answer time (before any exchange
        was admitted, until one is, at most a second)."""
        if self._typical > 0:
            await anyio.sleep(self._typical)
        else:
            with anyio.move_on_after(1.0):
                await self._answered.wait()

    def _judge(self, round_: Round) -> None:
        if round_.times:
            self._typical = sorted(round_.times)[len(round_.times) // 2]
        if round_.epoch != self._epoch:
            return  # begun under an earlier bound: it tells nothing about this one
        share = round_.refused / round_.ended
        refusing = round_.refused >= 2 and share > self._tolerated
        if refusing:
            self._refusing(round_, share)
        elif not round_.times:
            return
        elif self.capped:
            self._clean = self._clean + 1 if not round_.refused else 0
            if self._clean >= self._patience:
                self._set(self._limit + 1)
        else:
            median = sorted(round_.times)[len(round_.times) // 2]
            if round_.busy * 2 >= round_.started and median <= 1.5 * self._fastest:
                # Answers take hardly longer than the bare round trip: nothing queues, so
                # the link's latency bounds the throughput and more in flight gets more done.
                self._set(self._limit * 2)

    def _refusing(self, round_: Round, share: float) -> None:
        """A round refused more than the tolerated share: a capacity, or loss?"""
        target = _capacity(round_.sent)  # refused when many were in flight, not when few
        if target is None and self.capped:
            # At a capacity seen before, all sent with as many in flight: with refused slots
            # held, ``limit - capacity`` of every ``limit`` are refused.
            target = max(round(self._limit * (1 - share)), self._limit // 2)
        if target is None:  # refused alike however many were in flight: loss
            self._tolerated = min(0.5, max(self._tolerated, share) * 1.25)
            return
        if self.capped and self._limit == self._probed:
            # Probing one above the capacity was refused again: probe less often (up to
            # every 16 clean rounds), so the refusals stay a small share.
            self._patience = min(16, self._patience * 2)
        self._probed = self._limit
        self.capped = True
        self._set(min(self._limit - 1, target))

    def _set(self, limit: int) -> None:
        old, self._limit = self._limit, min(self._ceiling, max(1, limit))
        if self._limit == old:
            return
        self._limiter.total_tokens = self._limit
        self.peak = max(self.peak, self._limit)
        # The exchanges in flight were started under the old bound: a fresh round judges
        # the new one.
        self._epoch += 1
        self._clean = 0
        self._round.closed = True
        self._round = Round(self._epoch, max(MIN_ROUND, self._limit))
        if self._limit > old and self._on_grow is not None:
            self._on_grow()


class _Slot:
    """The context manager of `AdaptiveLimiter.exchange` (a class: this runs per request)."""

    __slots__ = ("_exchange", "_limiter", "_owner", "_round", "_started")

    def __init__(self, owner: AdaptiveLimiter) -> None:
        self._owner = owner
        self._limiter = owner._limiter

    async def __aenter__(self) -> Exchange:
        limiter = self._limiter
        await limiter.acquire()
        self._round = self._owner.start()
        self._started = self._owner._clock()
        self._exchange = Exchange(int(limiter.borrowed_tokens))
        return self._exchange

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        owner, limiter, exchange = self._owner, self._limiter, self._exchange
        refused = exc_type is None and exchange.refused
        try:
            if refused:
                await owner.hold_after_refusal()
        finally:
            saturated = exc_type is None and limiter.borrowed_tokens >= limiter.total_tokens
            limiter.release()
            elapsed = None
            if exc_type is None and exchange.timed and not refused:
                elapsed = owner._clock() - self._started - exchange.connecting
            owner.end(
                self._round,
                elapsed,
                saturated=saturated,
                refused=refused,
                in_flight=exchange.in_flight,
            )


def _capacity(sent: list[tuple[int, bool]]) -> int | None:
    """How many in flight a registry admits, if the round shows one: below some number in
    flight every exchange was admitted (four at least), and from it on most (half or more)
    were refused. Loss refuses alike at every number in flight, so a few at most are refused
    above the first refusal; when all were begun alike there is no evidence either way."""
    refused_at = [in_flight for in_flight, refused in sent if refused]
    if not refused_at:
        return None
    first = min(refused_at)
    below = sum(1 for in_flight, _ in sent if in_flight < first)
    above = [refused for in_flight, refused in sent if in_flight >= first]
    if below < 4 or sum(above) < len(above) / 2:
        return None
    return max(1, first - 1)
