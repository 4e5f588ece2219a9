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
import time
from collections.abc import AsyncIterator, Awaitable, Callable

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
    Timeouts,
)
from aioregistry._pacing import AdaptiveLimiter, HostPacer

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
        await asyncio.sleep(self.delay)
        return web.Response(body=CONFIG)

    async def _manifest(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append(time.monotonic())
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


def test_throttling_pauses_the_host_with_a_growing_backoff_that_resets():
    clock = Clock()
    pacer = HostPacer(backoff=0.5, max_wait=3.0, clock=clock)
    first = pacer.throttled(None)
    assert 0.25 <= first <= 0.5
    assert pacer.resume_at == pytest.approx(clock.now + first)
    second = pacer.throttled(None)
    assert 0.5 <= second <= 1.0  # doubles while the host keeps throttling
    for _ in range(10):
        capped = pacer.throttled(None)
    assert 1.5 <= capped <= 3.0  # never beyond max_wait
    pacer.answered()
    assert pacer.throttled(None) <= 0.5  # a normal answer starts the backoff again
    assert pacer.throttles == 13


def test_retry_after_sets_the_pause_and_pauses_only_extend():
    clock = Clock()
    pacer = HostPacer(clock=clock)
    assert pacer.throttled(4.0) == 4.0
    assert pacer.resume_at == clock.now + 4.0
    pacer.throttled(1.0)
    assert pacer.resume_at == clock.now + 4.0  # a shorter pause does not cut a longer one


def one(limiter: AdaptiveLimiter, elapsed: float | None, *, saturated: bool = True) -> None:
    limiter.end(limiter.start(), elapsed, saturated=saturated)


def feed(limiter: AdaptiveLimiter, rounds: int, elapsed: float, *, saturated: bool = True):
    """Whole rounds: as many exchanges as the bound start, then all of them end."""
    for _ in range(rounds):
        started = [limiter.start() for _ in range(max(8, limiter.limit))]
        for round_ in started:
            limiter.end(round_, elapsed, saturated=saturated)


def test_a_round_is_judged_only_when_every_exchange_of_it_has_ended():
    limiter = AdaptiveLimiter(16, 256, HostPacer())
    started = [limiter.start() for _ in range(16)]
    for round_ in started[:15]:  # the quick ones come back first...
        limiter.end(round_, 0.100, saturated=True)
    assert limiter.limit == 16
    limiter.end(started[15], 0.100, saturated=True)  # ...the round is judged with the last
    assert limiter.limit == 32


def test_limit_doubles_while_latency_bounds_the_throughput():
    limiter = AdaptiveLimiter(16, 256, HostPacer())
    feed(limiter, 1, 0.100)
    assert limiter.limit == 32
    feed(limiter, 1, 0.140)  # slower, but within 1.5 times the fastest: still latency-bound
    assert limiter.limit == 64
    feed(limiter, 10, 0.100)
    assert limiter.limit == 256  # never beyond the ceiling
    assert limiter.peak == 256


def test_limit_stays_when_answers_queue_or_demand_is_low():
    limiter = AdaptiveLimiter(64, 256, HostPacer())
    one(limiter, 0.001)  # one quick answer sets the bare round trip
    feed(limiter, 5, 0.040)  # the registry is the bottleneck: answers wait in its queue
    assert limiter.limit == 64
    idle = AdaptiveLimiter(64, 256, HostPacer())
    feed(idle, 5, 0.100, saturated=False)  # fast, but the scan does not use its slots
    assert idle.limit == 64


def test_limit_halves_when_the_host_throttles_and_grows_back_to_where_it_was():
    pacer = HostPacer()
    limiter = AdaptiveLimiter(64, 64, pacer)
    pacer.throttled(0.0)
    pacer.throttled(0.0)
    one(limiter, 0.01)
    assert limiter.limit == 32
    for _ in range(31):  # answers in flight carry the same news: no second cut this round
        pacer.throttled(0.0)
        one(limiter, None)
    assert limiter.limit == 32
    pacer.throttled(0.0)
    one(limiter, None)
    assert limiter.limit == 16
    # No more throttling: one step per round, whatever the latency; the first of these rounds
    # holds the throttled answers, so it does not count.
    feed(limiter, 20, 0.5)
    assert limiter.limit == 16 + 19
    feed(limiter, 100, 0.5)
    assert limiter.limit == 64  # back to where it was, and the fixed ceiling holds
    assert limiter.peak == 64


# -- end to end against a server --------------------------------------------------------------


async def test_one_429_pauses_every_request_to_that_host(serve):
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
        throttled_at = server.manifest_arrivals()[0]
        others = [client.get_manifest(f"{server.host}/test/pace:{i}") for i in range(5)]
        results = await asyncio.gather(first, *others)
        assert {m.digest for m in results} == {sha(MANIFEST)}
        assert client.stats.retries == 1
    later = server.manifest_arrivals()[1:]
    assert len(later) == 6
    # Nobody, not only the task that got the 429, asked again before the server's second.
    assert min(later) - throttled_at >= 0.95


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
    # Starting at 64 in flight, the scan would keep meeting 429s without backing off; it
    # halves at each throttling round trip and soon stays near what the registry allows.
    assert len(throttled) < 150
    assert max(seen[150:300]) <= 4 * allowed
    # Once the throttling stops, the bound grows back: more in flight than was allowed.
    assert max(seen[-150:]) > 2 * allowed
    assert scan.stats.retries > 0


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
