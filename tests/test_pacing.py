"""Pacing per registry host: shared backoff, the requests-per-second cap, retried timeouts,
the retry time budget and the scan's adaptive concurrency.

The policies are checked on their own with a fake clock; the behaviour end to end against an
in-process server (`support.fakes.FakeServer`), because a real registry neither throttles nor
stalls on demand. Times are only ever asserted as lower bounds set by the protocol (a pause the
server asked for), never as how fast something ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import orjson
import pytest
from aiohttp import web
from support.content import sha
from support.fakes import DOCKER_V2, FakeServer, Handler, docker_manifest

from aioregistry import (
    Limits,
    RegistryClient,
    RequestTimeout,
    ResponseError,
    Retries,
    ScanStats,
    Timeouts,
)
from aioregistry._limiter import MIN_ROUND, AdaptiveLimiter
from aioregistry._pacing import HostPacer
from aioregistry._transport import Transport

pytestmark = pytest.mark.anyio

CONFIG = orjson.dumps({"architecture": "amd64", "os": "linux", "config": {}})
MANIFEST = docker_manifest(CONFIG)
PACE = "/v2/test/pace"


class Server:
    """A FakeServer for ``test/pace``: ``handler`` answers its manifests; the ping, the tag list
    (``tags``) and its blobs (``CONFIG``) have fixed answers.

    Manifest requests are counted in flight from their arrival (before ``delay``) until they
    are answered; their arrival times and the number in flight at each arrival are recorded.
    """

    def __init__(self, fake: FakeServer, handler: Handler) -> None:
        self.fake = fake
        self.handler = handler
        self.host = fake.host
        self.tags: list[str] = []
        self.arrivals: list[float] = []  # monotonic, manifest requests only
        self.in_flight = 0
        self.in_flight_at_arrival: list[int] = []  # manifest requests only
        self.released = asyncio.Event()  # ends stalled answers
        self.sequence: list[str] = []  # "manifest" or "blob", in the order they arrived
        self.delay = 0.0  # added before every answer: a registry this far away
        fake.route("GET", "/v2/")(self._ping)
        fake.route("GET", f"{PACE}/tags/list")(self._tag_list)
        fake.route("GET", f"{PACE}/blobs/*")(self._blob)
        fake.route("GET", f"{PACE}/manifests/*")(self._manifest)

    async def stall(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.released.wait(), 30)

    async def _ping(self, _: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.delay)
        return web.json_response({})

    async def _tag_list(self, _: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.delay)
        return web.json_response({"name": "test/pace", "tags": self.tags})

    async def _blob(self, _: web.Request) -> web.StreamResponse:
        self.sequence.append("blob")
        await asyncio.sleep(self.delay)
        return web.Response(body=CONFIG)

    async def _manifest(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append(time.monotonic())
        self.sequence.append("manifest")
        self.in_flight += 1
        self.in_flight_at_arrival.append(self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            return await self.handler(request)
        finally:
            self.in_flight -= 1

    def manifest_arrivals(self) -> list[float]:
        return list(self.arrivals)


def manifest_response() -> web.Response:
    return web.Response(body=MANIFEST, content_type=DOCKER_V2)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    servers: list[Server] = []
    async with contextlib.AsyncExitStack() as stack:

        async def start(handler: Handler) -> Server:
            server = Server(await stack.enter_async_context(FakeServer()), handler)
            servers.append(server)
            return server

        yield start
        for server in servers:
            server.released.set()


def client_for(**options) -> RegistryClient:
    return RegistryClient(plain_http=True, use_env_credentials=False, **options)


# -- the policies on a fake clock -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admit(pacer: HostPacer, clock: Clock, rate: float, seconds: float) -> None:
    """Good answers at ``rate`` per second for ``seconds`` (the clock moves on)."""
    for _ in range(int(rate * seconds)):
        clock.now += 1 / rate
        pacer.answered(0.01)


def test_a_throttle_cuts_the_rate_to_just_under_what_was_admitted_then_it_grows_back():
    clock = Clock()
    pacer = HostPacer(clock=clock)
    sent = clock.now
    admit(pacer, clock, 300, 1.0)
    assert pacer.rate is None  # no throttling, no cap
    pacer.throttled(sent, None)
    assert pacer.rate == pytest.approx(270, rel=0.02)  # 0.9 of the 300/s admitted
    pacer.throttled(sent, None)  # sent before the cut: the same news, no second cut
    assert pacer.rate == pytest.approx(270, rel=0.02)
    clock.now += 0.5
    assert 280 < pacer.rate < 300  # concave: most of the way back within half a second
    clock.now += 0.5
    assert pacer.rate == pytest.approx(300, rel=0.01)  # back at the admitted rate
    clock.now += 0.5
    assert pacer.rate == pytest.approx(600, rel=0.01)  # then doubling every half second...
    admit(pacer, clock, 300, 0.5)
    later = clock.now
    pacer.throttled(later, None)  # ...until the host throttles again
    assert pacer.rate == pytest.approx(270, rel=0.05)
    clock.now += 10
    assert pacer.rate is None  # long without throttling: the cap is dropped


async def _fan_out_after_a_quiet_start(pacer: HostPacer, clock: Clock, in_flight: int) -> float:
    """A scan's start on one host: the ping (answered), 0.5 s with nothing there (its token
    from another host), then the fan-out: 0.2 s of good answers at 300/s, and ``in_flight``
    requests sent and not answered yet. Returns when the fan-out's first request was sent."""
    await pacer.wait_turn()
    start = pacer.sent()
    clock.now += 0.01
    pacer.answered(0.01)
    pacer.ended(start)
    clock.now += 0.5
    sent = await pacer.wait_turn()
    for _ in range(in_flight):
        pacer.sent()
    admit(pacer, clock, 300, 0.2)
    return sent


async def test_a_retry_after_cut_measures_the_host_from_the_fan_out_and_its_first_answer():
    """The first 429 with Retry-After of a scan: the quiet start (ping, token) and the time
    before the first answers came are no part of what the host admits, and what is in
    flight was let in too (refusals come back at once). Measured from the ping, as a bare
    429 is (below), the cut was to a third of the rate (bench: 1.1x a scan told the rate)."""
    clock = Clock()
    pacer = HostPacer(clock=clock)
    sent = await _fan_out_after_a_quiet_start(pacer, clock, in_flight=0)
    pacer.throttled(sent, 1.0)
    assert pacer.rate == pytest.approx(0.9 * 300, rel=0.05)
    clock = Clock()
    pacer = HostPacer(clock=clock)
    sent = await _fan_out_after_a_quiet_start(pacer, clock, in_flight=30)
    pacer.throttled(sent, 1.0)
    assert pacer.rate == pytest.approx(0.9 * (300 + 30 / 0.2), rel=0.05)


async def test_a_bare_429_cut_stays_the_cautious_one():
    """A bare 429's request is back at once: its first cut keeps the lower measure (the
    whole window, the ping's answer and the quiet in it), so that a host that refuses beyond
    a number in flight is not met with the same request again and again."""
    clock = Clock()
    pacer = HostPacer(clock=clock)
    sent = await _fan_out_after_a_quiet_start(pacer, clock, in_flight=30)
    pacer.throttled(sent, None)
    assert pacer.rate is not None
    assert pacer.rate < 0.5 * 0.9 * 300


def test_a_throttle_with_nothing_admitted_to_measure_leaves_the_rate_alone():
    clock = Clock()
    pacer = HostPacer(clock=clock)
    pacer.throttled(clock.now, None)
    assert pacer.rate is None  # the request's own backoff answers it
    assert pacer.resume_at == 0


def test_retry_after_pauses_the_host_only_once_nothing_has_been_admitted_for_a_while():
    clock = Clock()
    pacer = HostPacer(clock=clock)
    admit(pacer, clock, 100, 1.0)
    pacer.throttled(clock.now, 1.0)
    clock.now += 0.5
    pacer.answered(0.01)  # the host admits others: the Retry-After is that request's
    pacer.throttled(clock.now, 1.0)
    assert pacer.resume_at == 0
    clock.now += 1.0  # a second of refusals and nothing admitted: everyone waits
    pacer.throttled(clock.now, 2.0)
    assert pacer.resume_at == clock.now + 2.0


async def test_the_retry_budget_is_spent_by_retries_and_earned_back_by_answers():
    pacer = HostPacer(budget=20)
    soon = time.monotonic() + 0.05
    assert await pacer.retry_turn(costly=True, deadline=soon)  # 10
    assert await pacer.retry_turn(deadline=soon)  # 5
    assert await pacer.retry_turn(deadline=soon)  # 5: empty
    assert not await pacer.retry_turn(deadline=soon)  # short until the deadline: no retry
    waiting = asyncio.ensure_future(pacer.retry_turn(deadline=time.monotonic() + 30))
    for _ in range(4):
        pacer.answered(0.01)
    await asyncio.sleep(0.01)
    assert not waiting.done()  # 4 tokens: short of a retry's 5, the retry waits
    pacer.answered(None)  # any answer that is no refusal earns one
    assert await asyncio.wait_for(waiting, 5)
    unbounded = HostPacer(budget=None)
    assert all([await unbounded.retry_turn(deadline=0) for _ in range(1000)])


def test_hedging_waits_for_answer_times_and_its_budget_caps_it():
    clock = Clock()
    pacer = HostPacer(hedge_after=0.2, hedge_share=0.05, clock=clock)
    assert pacer.hedge_delay() is None  # no answer times yet: nothing is late
    for _ in range(100):
        pacer.answered(0.01)
    assert pacer.hedge_delay() == 0.2  # the floor: twice the 90th percentile is less
    for _ in range(200):
        pacer.answered(1.0)
    assert pacer.hedge_delay() == pytest.approx(2.0)
    hedges = sum(pacer.may_hedge() for _ in range(30))
    assert hedges == 20  # the burst
    for _ in range(110):
        pacer.sent()
    assert sum(pacer.may_hedge() for _ in range(10)) == 5  # 5% of 110 requests
    for _ in range(10_000):
        pacer.sent()
    assert sum(pacer.may_hedge() for _ in range(100)) == 20  # no more than the burst saved
    off = HostPacer(hedge_share=0, clock=clock)
    for _ in range(100):
        off.answered(0.01)
    assert off.hedge_delay() is None


def test_a_request_is_behind_once_16_sent_after_it_are_answered_or_half_of_fewer():
    pacer = HostPacer()
    for _ in range(3):
        pacer.sent()  # three in flight before ours
    mark = pacer.mark()
    pacer.sent()  # ours
    for _ in range(40):
        pacer.sent()  # forty after it
    for _ in range(3 + 15):  # the three before ours, and fifteen after it
        pacer.ended()
    assert not pacer.overtaken(mark)
    pacer.ended()
    assert pacer.overtaken(mark)  # sixteen sent after it are answered
    last = pacer.mark()
    for _ in range(5):
        pacer.sent()  # the last request of a scan, and four after it
    for _ in range(40 - 16 + 1):  # the rest of the earlier ones
        pacer.ended()
    assert not pacer.overtaken(last)
    pacer.ended()
    assert not pacer.overtaken(last)
    pacer.ended()
    assert pacer.overtaken(last)  # half of the four sent after it are answered


def test_hedging_holds_back_while_many_requests_are_late():
    clock = Clock()
    pacer = HostPacer(clock=clock)
    starts = [pacer.sent() for _ in range(40)]  # forty sent at once: a burst
    clock.now += 1.0
    assert not pacer.few_late(0.5)  # all of them late: a queue, no straggler
    for start in starts[:35]:
        pacer.ended(start)
    for _ in range(40):
        pacer.sent()  # forty new ones
    assert pacer.few_late(0.5)  # five late of forty-five: stragglers
    small = HostPacer(clock=clock)
    starts = [small.sent() for _ in range(10)]
    clock.now += 1.0
    small.ended(starts[0])
    assert not small.few_late(0.5)  # few in flight, answers still coming: a queue
    clock.now += 0.25
    assert small.few_late(0.5)  # nothing answered for half the delay: they are stuck


async def test_under_a_rate_cap_urgent_requests_go_before_new_ones():
    pacer = HostPacer(requests_per_second=200)
    order: list[str] = []

    async def ask(name: str, *, urgent: bool) -> None:
        await pacer.wait_turn(urgent=urgent)
        order.append(name)

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(functools.partial(ask, f"new{i}", urgent=False))
        await anyio.sleep(0.012)  # a couple of turns go to the first comers
        for i in range(3):
            tg.start_soon(functools.partial(ask, f"urgent{i}", urgent=True))
    urgent_at = [order.index(f"urgent{i}") for i in range(3)]
    new_after = [order.index(f"new{i}") for i in range(4, 10)]
    # The urgent ones came last but go next; the new ones still waiting go after them.
    assert max(urgent_at) < min(new_after), order


def test_docker_hub_gets_a_default_rate_cap_that_the_user_overrides():
    hub = "https://registry-1.docker.io/v2/"
    default = Transport()
    assert default.pacer(hub).requests_per_second == 25
    assert default.pacer("https://ghcr.io/v2/").requests_per_second is None
    assert Transport(limits=Limits(requests_per_second=5)).pacer(hub).requests_per_second == 5
    lifted = Transport(limits=Limits(docker_hub_requests_per_second=None))
    assert lifted.pacer(hub).requests_per_second is None


def one(
    limiter: AdaptiveLimiter, elapsed: float | None, *, saturated: bool = True, refused=False
) -> None:
    limiter.end(limiter.start(), elapsed, saturated=saturated, refused=refused)


def feed(limiter: AdaptiveLimiter, rounds: int, elapsed: float, *, saturated: bool = True):
    """Whole rounds: as many exchanges as the bound start, then all of them end."""
    for _ in range(rounds):
        started = [limiter.start() for _ in range(max(MIN_ROUND, limiter.limit))]
        for round_ in started:
            limiter.end(round_, elapsed, saturated=saturated)


def feed_refusing(
    limiter: AdaptiveLimiter, rounds: int, refuse: Callable[[int, int], bool], *, ramp: bool
) -> list[int]:
    """Whole rounds in generations of ``limit`` exchanges; ``refuse(i, limit)`` says whether
    the i-th of a generation is refused. With ``ramp`` each generation's exchanges begin one
    after another (the i-th with i others in flight, as when a scan starts), else all with
    ``limit`` in flight (a steady state). Returns the bounds seen."""
    seen = []
    for _ in range(rounds):
        limit = limiter.limit
        n = max(MIN_ROUND, limit)
        started = [limiter.start() for _ in range(n)]
        for i, round_ in enumerate(started):
            limiter.end(
                round_,
                0.01,
                saturated=True,
                refused=refuse(i % limit, limit),
                in_flight=i % limit + 1 if ramp else limit,
            )
        seen.append(limiter.limit)
    return seen


def test_a_round_is_judged_only_when_every_exchange_of_it_has_ended():
    limiter = AdaptiveLimiter(16, 256)
    started = [limiter.start() for _ in range(MIN_ROUND)]
    for round_ in started[:-1]:  # the quick ones come back first...
        limiter.end(round_, 0.100, saturated=True)
    assert limiter.limit == 16
    limiter.end(started[-1], 0.100, saturated=True)  # ...the round is judged with the last
    assert limiter.limit == 32


def test_limit_doubles_while_latency_bounds_the_throughput():
    limiter = AdaptiveLimiter(16, 256)
    feed(limiter, 1, 0.100)
    assert limiter.limit == 32
    feed(limiter, 1, 0.140)  # slower, but within 1.5 times the fastest: still latency-bound
    assert limiter.limit == 64
    feed(limiter, 10, 0.100)
    assert limiter.limit == 256  # never beyond the ceiling
    assert limiter.peak == 256


def test_limit_stays_when_answers_queue_or_demand_is_low():
    limiter = AdaptiveLimiter(64, 256)
    one(limiter, 0.001)  # one quick answer sets the bare round trip
    feed(limiter, 5, 0.040)  # the registry is the bottleneck: answers wait in its queue
    assert limiter.limit == 64
    idle = AdaptiveLimiter(64, 256)
    feed(idle, 5, 0.100, saturated=False)  # fast, but the scan does not use its slots
    assert idle.limit == 64


def test_a_registry_that_refuses_beyond_a_capacity_gets_just_that_many():
    limiter = AdaptiveLimiter(64, 64)
    seen = feed_refusing(limiter, 1, lambda i, _limit: i >= 8, ramp=True)  # 8 admitted at once
    assert limiter.capped
    assert seen == [8]  # refused from 9 in flight on: straight to 8
    seen = feed_refusing(limiter, 60, lambda i, _limit: i >= 8, ramp=False)
    assert set(seen) <= {8, 9}  # probing one above now and then...
    assert seen.count(9) >= 2
    assert seen[-30:].count(9) <= 4  # ...less often each time it is refused
    assert limiter.tolerated == 0


def test_flat_loss_is_told_from_a_capacity_and_tolerated():
    rng = random.Random(3)  # noqa: S311  (a fault pattern, not cryptography)
    limiter = AdaptiveLimiter(64, 64)
    seen = feed_refusing(limiter, 1, lambda _i, _limit: rng.random() < 0.1, ramp=True)
    seen += feed_refusing(limiter, 40, lambda _i, _limit: rng.random() < 0.1, ramp=False)
    assert not limiter.capped
    assert seen == [64] * 41  # refused alike at every number in flight: fewer would not help
    assert limiter.tolerated >= 0.1


def test_a_burst_of_loss_is_no_capacity():
    limiter = AdaptiveLimiter(64, 64)
    feed(limiter, 2, 0.01)
    feed_refusing(limiter, 1, lambda i, _limit: 20 <= i < 28, ramp=True)  # a burst of 8
    feed(limiter, 3, 0.01)
    assert limiter.limit == 64
    assert not limiter.capped


# -- end to end against a server --------------------------------------------------------------


async def test_a_retry_after_delays_the_request_that_got_it_not_the_others(serve):
    calls = 0
    throttled = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            throttled.set()
            return web.Response(status=429, headers={"Retry-After": "1"})
        return manifest_response()

    server = await serve(handler)
    async with client_for() as client:
        await client.list_tags(f"{server.host}/test/pace")  # ping done: only manifests below
        first = asyncio.ensure_future(client.get_manifest(f"{server.host}/test/pace:a"))
        await throttled.wait()
        for _ in range(500):  # until the client has read the 429 (the server sent it first)
            if client.stats.retries:
                break
            await asyncio.sleep(0.002)
        others = [client.get_manifest(f"{server.host}/test/pace:{i}") for i in range(5)]
        assert {m.digest for m in await asyncio.gather(*others)} == {sha(MANIFEST)}
        assert not first.done()  # still waiting out its Retry-After...
        assert (await first).digest == sha(MANIFEST)
        assert client.stats.retries == 1
        assert client.stats.refused == 1
    arrivals = server.manifest_arrivals()
    assert len(arrivals) == 7
    # ...which it honoured: its second try came a second after its first.
    assert arrivals[-1] - arrivals[0] >= 0.95


async def test_a_host_that_admits_nothing_is_paused_for_everyone(serve):
    refusing = True
    asked_enough = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if len(server.arrivals) >= 60:
            asked_enough.set()
        if refusing:
            return web.Response(status=503, headers={"Retry-After": "0.5"}, text="maintenance")
        return manifest_response()

    server = await serve(handler)
    async with client_for(retries=Retries(attempts=20, total=30)) as client:
        await client.list_tags(f"{server.host}/test/pace")
        tasks = [
            asyncio.ensure_future(client.get_manifest(f"{server.host}/test/pace:{i}"))
            for i in range(20)
        ]
        await asked_enough.wait()  # each asked three times, or so
        refusing = False
        assert {m.digest for m in await asyncio.gather(*tasks)} == {sha(MANIFEST)}
    arrivals = sorted(server.manifest_arrivals())
    # Once the host had admitted nothing for a while, everyone waited for the pause: the
    # requests came in waves, not each on its own clock.
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert sum(gap >= 0.4 for gap in gaps) >= 2


async def test_requests_per_second_cap(serve):
    async def handler(request: web.Request) -> web.StreamResponse:
        return manifest_response()

    server = await serve(handler)
    async with client_for(limits=Limits(requests_per_second=20)) as client:
        refs = [f"{server.host}/test/pace:{i}" for i in range(10)]
        await asyncio.gather(*(client.get_manifest(ref) for ref in refs))
    arrivals = sorted(server.manifest_arrivals())
    assert len(arrivals) == 10
    # Ten requests at 20 per second cannot start within less than 9 intervals of 50 ms.
    assert arrivals[-1] - arrivals[0] >= 0.45 - 0.02


async def test_a_stalled_body_times_out_and_is_retried(serve):
    calls = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        if calls > 1:
            return manifest_response()
        response = web.StreamResponse(headers={"Content-Type": DOCKER_V2})
        response.content_length = len(MANIFEST)
        await response.prepare(request)
        await response.write(MANIFEST[:10])
        await server.stall()  # mid-body; the client's read timeout ends this
        return response

    server = await serve(handler)
    async with client_for(timeouts=Timeouts(read=0.3)) as client:
        manifest = await client.get_manifest(f"{server.host}/test/pace:a")
        assert manifest.digest == sha(MANIFEST)
        assert client.stats.retries == 1
    assert calls == 2


async def test_a_body_that_keeps_stalling_ends_in_a_timeout_error(serve):
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": DOCKER_V2})
        await response.prepare(request)
        await server.stall()
        return response

    server = await serve(handler)
    retries = Retries(attempts=2, backoff=0.01)
    async with client_for(timeouts=Timeouts(read=0.2), retries=retries) as client:
        with pytest.raises(RequestTimeout, match="timed out"):
            await client.get_manifest(f"{server.host}/test/pace:a")
    assert len(server.manifest_arrivals()) == 2


async def test_retrying_stops_at_the_time_budget(serve):
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, headers={"Retry-After": "0.3"}, text="busy")

    server = await serve(handler)
    retries = Retries(attempts=50, backoff=0.01, total=1.0)
    async with client_for(retries=retries) as client:
        with pytest.raises(ResponseError, match="503"):
            await client.get_manifest(f"{server.host}/test/pace:a")
    # 0.3 s apart within a 1 s budget: the first try and at most three retries, not fifty.
    assert 2 <= len(server.manifest_arrivals()) <= 4


async def test_scan_backs_off_when_the_registry_throttles_and_recovers_after(serve):
    throttling = True
    allowed = 4

    async def handler(request: web.Request) -> web.StreamResponse:
        if throttling and server.in_flight > allowed:
            return web.Response(status=429, text="slow down")
        await asyncio.sleep(0.02)
        return manifest_response()

    server = await serve(handler)
    server.tags = [f"t{i:04d}" for i in range(600)]
    retries = Retries(attempts=8, backoff=0.01, max_wait=0.05)
    ok = 0
    async with (
        client_for(retries=retries) as client,
        client.scan(f"{server.host}/test/pace", what="manifest") as scan,
    ):
        async for result in scan:
            assert result.error is None, result.error
            assert result.digest == sha(MANIFEST)
            ok += 1
            if ok == 300:
                throttling = False  # the registry stops throttling halfway
    assert ok == 600
    seen = server.in_flight_at_arrival
    throttled = [n for n in seen[:300] if n > allowed]
    # Starting at 64 in flight, the scan would keep meeting 429s without backing off; each
    # 429 cuts its request rate to just under what the registry admitted, and it soon stays
    # near what the registry allows.
    assert len(throttled) < 200  # without the cuts, 9 in 10 (64 in flight where 4 fit)
    assert max(seen[150:300]) <= 4 * allowed
    # Once the throttling stops, the bound grows back: more in flight than was allowed.
    assert max(seen[-150:]) > 2 * allowed
    assert scan.stats.retries > 0


async def _digest_scan(server: Server, tags: int, **options) -> ScanStats:
    server.tags = [f"t{i:04d}" for i in range(tags)]
    async with (
        client_for(**options) as client,
        client.scan(f"{server.host}/test/pace", what="digest") as scan,
    ):
        results = [result async for result in scan]
    assert [r.error for r in results if r.error is not None] == []
    assert sorted(r.tag or "" for r in results) == server.tags
    assert {r.digest for r in results} == {sha(MANIFEST)}
    return scan.stats


async def test_sporadic_503s_are_retried_alone_and_the_scan_keeps_its_pace(serve):
    rng = random.Random(7)  # noqa: S311  (a fault pattern, not cryptography)

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.005)
        if rng.random() < 0.1:
            return web.Response(status=503, text="lost")
        return manifest_response()

    server = await serve(handler)
    # Six tries: at 10% loss, one request in 10,000 would fail all four of the default.
    stats = await _digest_scan(server, 1000, retries=Retries(attempts=6))
    assert stats.refused > 50
    # Loss at a flat rate is no reason for fewer requests in flight: the bound stays where
    # it was (read as throttling, every 503 would halve it and pause the host).
    assert max(server.in_flight_at_arrival[-300:]) >= 16


async def test_a_registry_that_refuses_beyond_8_in_flight_gets_about_8(serve):
    async def handler(request: web.Request) -> web.StreamResponse:
        if server.in_flight > 8:
            return web.Response(status=503, text="too many")
        await asyncio.sleep(0.01)
        return manifest_response()

    server = await serve(handler)
    stats = await _digest_scan(server, 600)
    admitted = len(server.arrivals) - stats.refused
    assert admitted >= 600
    # Found by experiment (fewer in flight, far fewer refused) and kept: no retry storm...
    assert stats.refused <= 0.25 * admitted, (stats.refused, admitted)
    # ...and about as many in flight as the registry takes (64 to begin with).
    late = sorted(server.in_flight_at_arrival[-300:])
    assert late[int(len(late) * 0.9)] <= 10, late


async def test_a_token_bucket_without_retry_after_is_met_at_its_rate(serve):
    bucket = {"tokens": 10.0, "at": time.monotonic()}

    async def handler(request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        bucket["tokens"] = min(10.0, bucket["tokens"] + (now - bucket["at"]) * 300)
        bucket["at"] = now
        if bucket["tokens"] < 1:
            return web.Response(status=429, text="slow down")  # no Retry-After
        bucket["tokens"] -= 1
        return manifest_response()

    server = await serve(handler)
    stats = await _digest_scan(server, 900)
    admitted = len(server.arrivals) - stats.refused
    assert stats.refused > 0  # the bucket did throttle
    # Each 429 cuts the rate to just under what the bucket admitted: refusals stay few (with
    # only each request's own backoff they would be many times the admitted).
    assert stats.refused <= 0.15 * admitted, (stats.refused, admitted)


async def test_under_a_rate_cap_a_config_scan_streams_results_from_the_start(serve):
    async def handler(request: web.Request) -> web.StreamResponse:
        return manifest_response()

    server = await serve(handler)
    server.tags = [f"t{i:04d}" for i in range(40)]
    async with (
        client_for(limits=Limits(requests_per_second=100)) as client,
        client.scan(f"{server.host}/test/pace", what="config") as scan,
    ):
        results = [result async for result in scan]
    assert len(results) == 40
    # Every tag has the same config, fetched once: right after the first manifest, before
    # the other tags' manifests (without priorities the scan's many workers would have
    # asked for all 40 first).
    assert server.sequence.count("blob") == 1
    assert server.sequence.index("blob") <= 3, server.sequence


@pytest.mark.parametrize("hedging", [True, False])
async def test_a_late_answer_is_hedged_and_the_first_answer_wins(serve, hedging):
    held: list[str] = []
    done: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.002)
        if request.path.endswith("/t0500") and not held:
            held.append(request.path)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.released.wait(), 3)
            done.append(request.path)
        return manifest_response()

    server = await serve(handler)
    retries = Retries(hedge_share=0.05 if hedging else 0)
    stats = await _digest_scan(server, 1000, retries=retries)
    if hedging:
        # The scan was over while the held answer was still held: a duplicate answered it.
        assert done == []
        assert 1 <= stats.hedges <= 0.05 * stats.total_requests + 20
    else:
        assert done == held  # waited for it
        assert stats.hedges == 0


async def test_a_distant_registry_gets_more_requests_in_flight_from_the_start(serve):
    crowd = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        # Answers wait (up to 2 s) until more than 128 requests are in flight, so how fast a
        # loaded machine sends them does not decide the outcome; a client that starts at 64
        # and grows cannot get there without answers, and times out here.
        if server.in_flight > 128:
            crowd.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(crowd.wait(), 2)
        return manifest_response()

    server = await serve(handler)
    server.delay = 0.2  # every answer takes 200 ms, the ping's and the tag list's too
    server.tags = [f"t{i:04d}" for i in range(600)]
    async with (
        client_for() as client,
        client.scan(f"{server.host}/test/pace", what="digest") as scan,
    ):
        digests = {result.digest async for result in scan}
    assert digests == {sha(MANIFEST)}
    # 64 in flight suit a round trip up to 25 ms; 200 ms calls for eight times as many, capped
    # at 256, which the scan starts with instead of growing there round by round (growing
    # from 64, no more than 128 could be in flight among the first 200 requests).
    assert scan.stats.concurrency[server.host] == 256
    assert max(server.in_flight_at_arrival[:200]) > 128
