"""Pacing per registry host: rate control, shared pauses, the retry budget, hedging's state.

One `HostPacer` per host, shared by every task of a client, holds what the client knows about
that host and what it owes it:

- **Throttling answers** (429, or a 503 with ``Retry-After``) are evidence that the host is
  over its rate: `throttled` cuts the request rate to just under the rate the host admitted
  over the last second (after a ``Retry-After``, counted from the first answer since the
  sending got busy, the requests in flight with it at the first cut), then lets it grow
  back: along a cubic curve (as TCP CUBIC and the AWS SDKs' adaptive mode) back to that rate
  within a second, most of the way within half of it, then doubling every half second, and
  the cap is dropped at four times that rate. One cut per round trip: the answers to
  requests sent before the cut carry the same news. A ``Retry-After`` is for the request
  that got it; the whole host pauses only when it admits nothing at all (no good answer for
  a second of refusals), so that a registry down for maintenance is not hammered.
- **Random loss** (a bare 503, 502, 504, a reset) is no evidence of anything: that request
  alone is retried after its own jittered backoff. A scan's `_limiter.AdaptiveLimiter` tells a
  registry that refuses requests beyond a number in flight from loss.
- **The retry budget** (the AWS SDKs' retry quota): a retry costs tokens (more after a
  timeout, which held a connection for long), an answer that is no refusal earns one back.
  When the budget is short, retries wait for answers to earn it back (until the retry time
  budget runs out, then the error is the result), so a registry in trouble never meets a
  retry storm from us: our retries come at most at a fifth of the rate it answers.
- **A fixed cap** (``requests_per_second``) spaces request starts; under any cap, requests
  marked urgent (the rest of a tag already begun) go before new ones, so results stream.
- **Hedging's state**: recent answer times (hedged ones left out), whose 90th percentile says
  when an answer is late, when each request in flight was sent (when many are late, the
  registry is slow for everyone and a duplicate would only lengthen its queue),
  the requests in flight and answered (a request is late only once many sent after it have
  been answered: when the registry is slow for everyone, a duplicate would only add load),
  and the hedging budget (a share of the requests sent).
"""

from __future__ import annotations

import bisect
import random
import time
from collections import deque
from collections.abc import Callable

import anyio

__all__ = ["OVERTAKEN", "HostPacer"]

_MAX_PAUSE = 60.0  # a shared pause never exceeds this, whatever the server asks
_BETA = 0.9  # a throttling cut leaves this share of the admitted rate
_REGAIN = 1.0  # seconds the cubic curve takes back to the admitted rate
_DOUBLING = 0.5  # seconds in which the rate doubles beyond it
_DROP = 4.0  # the adaptive cap is dropped once it reaches this multiple of that rate
_WINDOW = 1.0  # seconds of good answers that measure the admitted rate
_EARLY = 16  # good answers after which a quiet moment no longer restarts that measure
_RETRY_COST = 5
_TIMEOUT_COST = 10
_SAMPLES = 256  # recent answer times kept for the hedging delay
_HEDGE_BURST = 20.0  # hedges that may come at once (the budget holds no more)
OVERTAKEN = 16  # a request is behind once this many sent after it have been answered


class _Waiter:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()


class HostPacer:
    """What a client knows about one host's pace (see the module doc)."""

    def __init__(
        self,
        *,
        requests_per_second: float | None = None,
        budget: int | None = 500,
        hedge_after: float = 0.2,
        hedge_share: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fixed = 1.0 / requests_per_second if requests_per_second else 0.0
        self._clock = clock
        self.resume_at = 0.0  # no request to this host starts before this (clock time)
        self.round_trip: float | None = None  # the quickest answer seen (handshakes left out)
        # rate control
        self._next_slot = 0.0  # the earliest start of the next request under a rate cap
        self._queues: tuple[deque[_Waiter], deque[_Waiter]] = (deque(), deque())
        self._admitted: deque[float] = deque()  # times of good answers, the last _WINDOW s
        self._sending_since: float | None = None  # the first request, or the end of a pause
        self._busy_since: float | None = None  # the same, or the first after a quiet start
        self._early = 0  # good answers since then
        self._cut_at = float("-inf")  # the latest throttling cut
        self._admitted_rate = 0.0  # the rate the host admitted at that cut
        self._throttled_since: float | None = None  # the first throttle since a good answer
        # the retry budget
        self._capacity = budget
        self._budget = float(budget or 0)
        self._earned = anyio.Event()  # set when good answers have refilled the budget
        # hedging
        self._hedge_after = hedge_after
        self._hedge_share = hedge_share
        self._hedge_tokens = _HEDGE_BURST if hedge_share > 0 else 0.0
        self._times: deque[float] = deque(maxlen=_SAMPLES)
        self._new_samples = 0
        self._p90: float | None = None
        self._in_flight = 0
        self._answers = 0  # answers of any kind so far
        self._sent = 0  # requests sent so far
        self._starts: list[float] = []  # when each request in flight was sent, in order
        self._last_answer = float("-inf")  # when the latest request ended

    # -- waiting for a turn -----------------------------------------------------------------

    @property
    def requests_per_second(self) -> float | None:
        """The fixed cap on requests per second (None: none)."""
        return 1.0 / self._fixed if self._fixed else None

    @property
    def rate(self) -> float | None:
        """The adaptive cap on requests per second now (None: no throttling to answer)."""
        return self._adaptive_rate(self._clock())

    def _adaptive_rate(self, now: float) -> float | None:
        if not self._admitted_rate:
            return None
        t = (now - self._cut_at) / _REGAIN
        if t <= 1:  # concave back to the admitted rate, as CUBIC
            rate = self._admitted_rate * (1 - (1 - _BETA) * (1 - t) ** 3)
        else:  # then above it, doubling every _DOUBLING seconds
            rate = self._admitted_rate * 2 ** ((now - self._cut_at - _REGAIN) / _DOUBLING)
        if rate >= _DROP * self._admitted_rate:
            self._admitted_rate = 0.0  # long without throttling: the cap is dropped
            return None
        return rate

    def _interval(self, now: float) -> float:
        rate = self._adaptive_rate(now)
        return max(self._fixed, 1.0 / rate if rate else 0.0)

    async def wait_turn(self, *, urgent: bool = False) -> float:
        """Wait out a shared pause, then for a turn under the rate caps; returns the time of
        sending (the clock's), which `throttled` wants back."""
        while True:
            now = self._clock()
            if now >= self.resume_at:
                break
            # Spread the restart a little so that a pause does not end in a burst.
            pause = self.resume_at - now
            await anyio.sleep(pause + random.uniform(0, min(0.5, pause * 0.1)))  # noqa: S311
        now = self._clock()
        self._sending(now)
        if not (self._fixed or self._admitted_rate):
            return now
        urgent_queue, normal_queue = self._queues
        if not urgent_queue and not normal_queue and now >= self._next_slot:
            self._next_slot = now + self._interval(now)
            return now
        waiter = _Waiter()
        queue = urgent_queue if urgent else normal_queue
        queue.append(waiter)
        try:
            while True:
                if self._head() is waiter:
                    now = self._clock()
                    if now >= self._next_slot:
                        queue.popleft()
                        self._next_slot = max(now, self._next_slot) + self._interval(now)
                        return now
                    await anyio.sleep(self._next_slot - now)
                else:
                    await waiter.event.wait()
                    waiter.event = anyio.Event()
        finally:
            if waiter in queue:
                queue.remove(waiter)  # cancelled while waiting
            head = self._head()
            if head is not None:
                head.event.set()

    def _sending(self, now: float) -> None:
        """A request is about to be sent: where the measures of the admitted rate begin."""
        if self._sending_since is None:
            self._sending_since = now
        if self._busy_since is None or (not self._in_flight and self._early < _EARLY):
            # With nothing of ours at the host before it has answered many, the time before
            # (a scan's ping, token and tag list) says nothing of how fast it admits.
            self._busy_since = now
            self._early = 0

    def _head(self) -> _Waiter | None:
        urgent, normal = self._queues
        return urgent[0] if urgent else normal[0] if normal else None

    # -- what answers say -------------------------------------------------------------------

    def answered(self, seconds: float | None) -> None:
        """An answer that was no refusal came back; a good one after ``seconds`` (without
        opening its connection; None: an error answer, whose time tells nothing)."""
        now = self._clock()
        self._throttled_since = None
        self._early += 1
        self._admitted.append(now)
        self._forget_admitted(now)
        if self._capacity is not None:
            self._budget = min(self._capacity, self._budget + 1)
            if self._budget >= _RETRY_COST and self._earned.statistics().tasks_waiting:
                self._earned.set()
                self._earned = anyio.Event()
        if seconds is None:
            return
        if self.round_trip is None or seconds < self.round_trip:
            self.round_trip = seconds
        self._times.append(seconds)
        self._new_samples += 1
        if self._new_samples >= 32 or (self._p90 is None and len(self._times) >= 16):
            self._new_samples = 0
            ordered = sorted(self._times)
            self._p90 = ordered[int(len(ordered) * 0.9)]

    def round_trip_seen(self, seconds: float) -> None:
        """An answer that says how far the host is but not how fast it serves (a 401
        challenge): `round_trip` until timed answers come."""
        if self.round_trip is None:
            self.round_trip = seconds

    def throttled(self, sent_at: float, retry_after: float | None) -> None:
        """A 429 (or a 503 with ``Retry-After``) came back for a request sent at ``sent_at``."""
        now = self._clock()
        if self._throttled_since is None:
            self._throttled_since = now
        elif retry_after is not None and now - self._throttled_since >= min(retry_after, 1.0):
            # Nothing admitted since the throttling began, however long it waited: everyone
            # waits as the server asks.
            pause = min(retry_after, _MAX_PAUSE)
            if now + pause > self.resume_at:
                self.resume_at = now + pause
                self._sending_since = self._busy_since = None
        if sent_at <= self._cut_at:
            return  # sent before the last cut: the same news
        admitted = self._forget_admitted(now)
        start = self._sending_since
        if start is None:
            start = admitted[0] if admitted else now
        since = max(now - _WINDOW, start)
        current = self._adaptive_rate(now)
        measured = None
        if retry_after is not None:
            measured = self._measured_since_busy(now, first=current is None)
        if measured is None and len(admitted) >= 4 and now - since >= 0.05:
            measured = len(admitted) / (now - since)
        if measured is not None:
            rate = measured if current is None else min(measured, current)
        elif current is not None:
            rate = current
        else:
            return  # nothing admitted to measure: the requests' own backoff answers this
        self._admitted_rate = rate
        self._cut_at = now
        # Requests already given turns at the old rate keep them; the next turn waits.
        self._next_slot = max(self._next_slot, now + 1.0 / (rate * _BETA))

    def _measured_since_busy(self, now: float, *, first: bool) -> float | None:
        """The rate admitted since the sending got busy, from its first good answer on (the
        answers come a while after the requests: counted from the sending, the first of a
        scan, while its connections open, look like a fraction of what the host admits).

        Taken for a throttle with a ``Retry-After``, which keeps its request away as long as
        it says: a cut a little too high costs a few more refusals and is cut again. A bare
        429's request is back at once, and there the first cut is the lower, older measure
        (the whole window, the ping's and the tag list's answers in it): a host that 429s
        beyond a number in flight is left no time to refuse one request again and again.
        The ``first`` cut counts the requests in flight as admitted too: refusals come back
        at once, the admitted ones take their time.
        """
        if self._busy_since is None:
            return None
        window = [at for at in self._admitted if at >= max(now - _WINDOW, self._busy_since)]
        if len(window) < 4 or now - window[0] < 0.05:
            return None
        admitted = len(window) - 1 + (self._in_flight if first else 0)
        return admitted / (now - window[0])

    def _forget_admitted(self, now: float) -> deque[float]:
        """The good answers of the last _WINDOW seconds (older ones dropped)."""
        admitted = self._admitted
        while admitted and admitted[0] < now - _WINDOW:
            admitted.popleft()
        return admitted

    # -- the retry budget -------------------------------------------------------------------

    async def retry_turn(self, *, costly: bool = False, deadline: float) -> bool:
        """Take a retry's cost from the budget (``costly``: after a timeout or a lost
        connection), waiting while it is short for answers to earn it back; False (nothing
        taken) if that takes until ``deadline`` (clock time)."""
        if self._capacity is None:
            return True
        cost = _TIMEOUT_COST if costly else _RETRY_COST
        while self._budget < cost:
            left = deadline - self._clock()
            if left <= 0:
                return False
            with anyio.move_on_after(left):
                await self._earned.wait()
        self._budget -= cost
        return True

    # -- hedging ----------------------------------------------------------------------------

    def sent(self) -> float:
        """A request was sent: the hedging budget grows by its share. Returns its start,
        which `ended` wants back."""
        if self._hedge_share > 0:
            self._hedge_tokens = min(_HEDGE_BURST, self._hedge_tokens + self._hedge_share)
        self._in_flight += 1
        self._sent += 1
        start = self._clock()
        self._starts.append(start)  # in order: the clock only moves on
        return start

    def mark(self) -> tuple[int, int, int]:
        """What `overtaken` needs to know of a request about to be sent."""
        return self._answers, self._in_flight, self._sent

    def ended(self, start: float = 0.0) -> None:
        """A request sent (`sent`) at ``start`` has its answer or failed."""
        self._last_answer = self._clock()
        starts = self._starts
        at = bisect.bisect_left(starts, start)
        if at < len(starts):
            del starts[at]
        self._in_flight -= 1
        self._answers += 1

    def overtaken(self, mark: tuple[int, int, int]) -> bool:
        """Whether the request ``mark`` came from is behind the others: 16 requests sent
        after it have been answered (at least: the answers since, less those that were in
        flight before it), or half of them if fewer were sent after it (the last requests of
        a scan, some of them late too)."""
        answers, before, sent = mark
        later = self._sent - sent - 1  # itself left out
        return self._answers - answers - before >= min(OVERTAKEN, later // 2)

    def few_late(self, delay: float) -> bool:
        """Whether few of the requests in flight are older than ``delay``: at most a quarter.
        When more are, the registry is slow for everyone (a queue), and a duplicate would only
        lengthen it. With 16 or fewer in flight (the end of a scan, a burst's last requests)
        a share says little: then they are late only if no answer at all has come for half
        the delay (answers still coming are a queue being served)."""
        starts = self._starts
        now = self._clock()
        if len(starts) <= OVERTAKEN:
            return now - self._last_answer >= delay / 2
        return bisect.bisect_left(starts, now - delay) <= len(starts) // 4

    @property
    def hedging(self) -> bool:
        """Whether late requests may be hedged at all."""
        return self._hedge_share > 0

    def hedge_delay(self) -> float | None:
        """How long an answer may take before it is late and worth a duplicate request:
        twice the 90th percentile of recent answers (about the 99th of a usual spread, and
        robust to the few late ones among them), at least ``hedge_after`` (None: not yet
        known, or hedging is off)."""
        if self._hedge_share <= 0 or self._p90 is None:
            return None
        return max(self._hedge_after, 2 * self._p90)

    def may_hedge(self) -> bool:
        """Take one hedge from the budget; False when it is spent."""
        if self._hedge_tokens < 1:
            return False
        self._hedge_tokens -= 1
        return True
