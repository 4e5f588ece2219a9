"""A reverse proxy on 127.0.0.1 that injects seeded, recorded faults in front of a registry.

:class:`FaultProxy` forwards every request to ``upstream`` (a real registry) and, for a seeded
share of them, misbehaves the way networks and servers do:

* ``503``: a burst of 503 answers to several consecutive requests;
* ``429``: 429 with a small ``Retry-After`` (0 or 1 s);
* ``reset``: the connection is reset (RST) without an answer;
* ``stall``: headers and part of the body, then nothing until the client gives up;
* ``truncate``: a ``Content-Length`` larger than the body sent, then the connection closes;
* ``flip``: one byte of a manifest or blob body changed, headers (``Docker-Content-Digest``,
  ``Content-Length``) untouched;
* ``hold``: the answer is held for ``hold`` seconds (2 by default), then given in full: a
  slow answer, not a fault to retry.

Faults are drawn from ``random.Random(seed)`` in arrival order. Each request path is faulted
at most ``max_faults_per_path`` times with a retryable fault (so a client retrying at least
that often always gets through) and at most once with ``flip``. Every request is recorded
with the fault it got (:attr:`FaultProxy.records`), so a test can tell which answers were
corrupted and how many retries the client owed.

Independently of those faults the proxy can throttle, as a registry's front end does, before a
request is forwarded or faulted (a refused request consumes no fault draw and no token):

* ``max_in_flight=N``: a request arriving while N are being answered gets 503, no
  ``Retry-After``;
* ``rps=R``: a token bucket refilled at R per second holding at most ``rps_burst`` tokens
  (R/10 by default, at least 1), full at the start; a request finding it empty gets 429, with
  ``Retry-After: <rps_retry_after>`` when that is given, else none.

:attr:`FaultProxy.admitted`, :attr:`FaultProxy.refused` and :attr:`FaultProxy.peak_in_flight`
(the most admitted requests being answered at once) count what throttling did; refused requests
are recorded too, with ``throttled=True`` and their status as the fault.
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import struct
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from .webapp import start_app

__all__ = ["FAULTS", "RETRYABLE", "FaultProxy", "ProxyRecord", "rate_for_share"]

FAULTS = ("503", "429", "reset", "stall", "truncate", "flip", "hold")
RETRYABLE = frozenset({"503", "429", "reset", "stall", "truncate"})
#: Faults that need a body to cut short; a HEAD answer has none.
_NEEDS_BODY = frozenset({"stall", "truncate", "flip"})
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True)
class ProxyRecord:
    """One request the proxy received and the fault it answered with (None: passed through)."""

    method: str
    path: str  # path and query, as sent
    fault: str | None
    time: float  # time.monotonic() when it arrived
    throttled: bool = False  # refused by max_in_flight or the rps bucket (fault: its status)


def rate_for_share(share: float, burst: tuple[int, int] = (2, 5)) -> float:
    """The ``rate`` at which 503 bursts (the only fault) make ``share`` of all answers.

    A request outside a burst starts one with probability ``rate``; the burst is that answer
    and the next ``randint(*burst) - 1``, drawing nothing. Over a long run the 503 share is
    ``rate * B / (1 - rate + rate * B)`` for the mean burst length ``B``, solved here for
    ``rate``. The per-path budget (``max_faults_per_path``) lets a path that has used it up
    through even inside a burst, so the share measured can come out a little lower.
    """
    if not 0 <= share < 1:
        raise ValueError("share must be in [0, 1)")
    mean = (burst[0] + burst[1]) / 2
    return share / (mean * (1 - share) + share)


def _is_content(method: str, path: str) -> bool:
    """A manifest or blob GET: the answers whose bytes a flip corrupts."""
    return method == "GET" and ("/manifests/" in path or "/blobs/" in path)


class FaultProxy:
    """Forward to ``upstream`` (``http://host:port``), faulting a seeded share of requests.

    ``rate`` is the probability that a request starts a fault (`rate_for_share` turns a share
    of 503 answers into one); ``weights`` the relative odds of each kind (only those given are
    used); ``burst`` the range of a 503 burst's length; ``latency`` a delay added to every
    request; ``hold`` how long a ``hold`` fault holds its answer. ``max_in_flight``, ``rps``,
    ``rps_burst`` and ``rps_retry_after`` throttle (see the module doc). ``ssl_context``
    serves HTTPS, ``upstream_ssl`` verifies an ``https://`` upstream, ``connections`` caps the
    connections to it (0: no cap). Use as ``async with FaultProxy(...) as proxy:``;
    :attr:`host` is ``127.0.0.1:PORT``.
    """

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        rate: float = 0.0,
        weights: Mapping[str, float] | None = None,
        max_faults_per_path: int = 2,
        burst: tuple[int, int] = (2, 5),
        latency: float = 0.0,
        hold: float = 2.0,
        max_in_flight: int | None = None,
        rps: float | None = None,
        rps_burst: float | None = None,
        rps_retry_after: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        upstream_ssl: ssl.SSLContext | None = None,
        connections: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        unknown = set(weights or {}) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        if rps is not None and rps <= 0:
            raise ValueError("rps must be positive")
        self.upstream = upstream.rstrip("/")
        self.seed = seed
        self.rate = rate
        self.weights = dict(weights or {})
        self.max_faults_per_path = max_faults_per_path
        self.burst = burst
        self.latency = latency
        self.hold = hold
        self.max_in_flight = max_in_flight
        self.rps = rps
        self.rps_burst = max(1.0, rps / 10) if rps and rps_burst is None else rps_burst
        self.rps_retry_after = rps_retry_after
        self.ssl_context = ssl_context  # serve HTTPS with it (None: plain HTTP)
        self.upstream_ssl = upstream_ssl  # verify an https upstream with it
        self.connections = connections  # the most connections to upstream (0: no cap)
        self.clock = clock  # the bucket's time (injectable, so tests need no sleeping)
        self.records: list[ProxyRecord] = []
        self.admitted = 0
        self.refused = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._tokens = self.rps_burst or 0.0
        self._refilled = clock()
        self.host = ""
        self._rng = random.Random(seed)  # noqa: S311  (reproducible faults, not cryptography)
        self._burst_left = 0
        self._faulted: Counter[tuple[str, str]] = Counter()
        self._flipped: set[tuple[str, str]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closing = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FaultProxy:
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=60),
            connector=aiohttp.TCPConnector(limit=self.connections, ssl=self.upstream_ssl or True),
        )
        self._runner, port = await start_app(self._handle, ssl_context=self.ssl_context)
        self.host = f"127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- what happened -----------------------------------------------------------------------

    def faults(self, *kinds: str) -> list[ProxyRecord]:
        """The faulted requests, of the given kinds (all kinds when none are given)."""
        return [r for r in self.records if r.fault and (not kinds or r.fault in kinds)]

    @property
    def retryable_faults(self) -> int:
        """Answers a client must retry to get through: every fault but ``flip``."""
        return sum(1 for r in self.records if r.fault in RETRYABLE)

    def flipped_paths(self) -> set[str]:
        return {r.path for r in self.records if r.fault == "flip"}

    def counts(self) -> dict[str, object]:
        """What the proxy saw, for a report: requests, throttling, and faults by kind."""
        faults = Counter(r.fault for r in self.records if r.fault and not r.throttled)
        return {
            "requests": len(self.records),
            "admitted": self.admitted,
            "refused": self.refused,
            "peak_in_flight": self.peak_in_flight,
            "faults": dict(sorted(faults.items())),
        }

    # -- throttling --------------------------------------------------------------------------

    def _refusal(self) -> web.Response | None:
        """The answer to a request throttling turns away, or None to admit it."""
        if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
            return web.Response(status=503, text="fault proxy: too many requests in flight\n")
        if self.rps is not None:
            now = self.clock()
            capacity = self.rps_burst or 1.0
            self._tokens = min(capacity, self._tokens + (now - self._refilled) * self.rps)
            self._refilled = now
            if self._tokens < 1:
                headers = (
                    {} if self.rps_retry_after is None else {"Retry-After": self.rps_retry_after}
                )
                return web.json_response(
                    {"errors": [{"code": "TOOMANYREQUESTS", "message": "fault proxy: rate"}]},
                    status=429,
                    headers=headers,
                )
            self._tokens -= 1
        return None

    # -- faults ------------------------------------------------------------------------------

    def _choose(self, method: str, path: str) -> str | None:
        key = (method, path)
        budget = self._faulted[key] < self.max_faults_per_path
        if self._burst_left > 0 and "503" in self.weights:
            self._burst_left -= 1
            return "503" if budget else None
        if not self.weights or self._rng.random() >= self.rate:
            return None
        kinds = list(self.weights)
        kind = self._rng.choices(kinds, weights=[self.weights[k] for k in kinds])[0]
        if kind == "503":
            self._burst_left = self._rng.randint(*self.burst) - 1
        if kind in _NEEDS_BODY and method == "HEAD":
            kind = "reset"
        if kind == "flip":
            if not _is_content(method, path) or key in self._flipped:
                return None
            self._flipped.add(key)
            return kind
        return kind if budget or kind == "hold" else None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path_qs
        refusal = self._refusal()
        if refusal is not None:
            self.refused += 1
            self.records.append(
                ProxyRecord(
                    request.method, path, str(refusal.status), time.monotonic(), throttled=True
                )
            )
            return refusal
        self.admitted += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer(request, path)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, path: str) -> web.StreamResponse:
        fault = self._choose(request.method, path)
        if fault in RETRYABLE:
            self._faulted[(request.method, path)] += 1
        self.records.append(ProxyRecord(request.method, path, fault, time.monotonic()))
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault == "hold":
            await asyncio.sleep(self.hold)
        if fault == "reset":
            return self._reset(request)
        if fault == "503":
            return web.Response(status=503, text="fault proxy: service unavailable\n")
        if fault == "429":
            return web.json_response(
                {"errors": [{"code": "TOOMANYREQUESTS", "message": "fault proxy: slow down"}]},
                status=429,
                headers={"Retry-After": self._rng.choice(("0", "0", "0", "1"))},
            )
        status, headers, body = await self._forward(request)
        if fault == "flip" and body:
            at = self._rng.randrange(len(body))
            body = body[:at] + bytes([body[at] ^ (1 << self._rng.randrange(8))]) + body[at + 1 :]
        if fault in ("stall", "truncate") and len(body) >= 2:
            return await self._cut_short(request, status, headers, body, stall=fault == "stall")
        return web.Response(status=status, headers=headers, body=body)

    async def _forward(self, request: web.Request) -> tuple[int, CIMultiDict[str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=await request.read() or None,
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            out = CIMultiDict(
                (k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            )
            if request.method == "HEAD" and upstream.content_length is not None:
                out["Content-Length"] = str(upstream.content_length)
            return upstream.status, out, body

    def _reset(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        if sock is not None:  # SO_LINGER 0: close() sends RST, not FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return web.Response(status=204)  # never sent: the connection is gone

    async def _cut_short(
        self,
        request: web.Request,
        status: int,
        headers: CIMultiDict[str],
        body: bytes,
        *,
        stall: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        if stall:
            # Say nothing more until the client hangs up (handler_cancellation cancels this
            # handler then) or the proxy closes.
            await self._closing.wait()
        if request.transport is not None:
            request.transport.close()
        return response
