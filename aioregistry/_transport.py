"""The one place HTTP happens.

`Transport` owns (or borrows) one aiohttp ``ClientSession``; `Transport.send` is the choke
point that turns aiohttp, ssl and OS exceptions into `TransportError` subclasses, reads bodies
under a size cap, retries what may be retried (`Retries`), paces each host (`_pacing`) and
counts every exchange (`_stats.Meter`). Error statuses come back as `_responses.Response`
values: what they mean is the caller's to say.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

import aiohttp
import anyio
import anyio.lowlevel
from yarl import URL

from ._config import DEFAULT_LIMITS, DEFAULT_RETRIES, DEFAULT_TIMEOUTS, Limits, Retries, Timeouts
from ._exceptions import (
    ConnectError,
    InvalidContent,
    RequestTimeout,
    TLSError,
    TransportError,
    UsageError,
)
from ._limiter import AdaptiveLimiter, Exchange
from ._pacing import HostPacer
from ._references import DOCKER_HUB_REGISTRY
from ._responses import ERROR_BODY_LIMIT, Response, redact_url, retry_after
from ._stats import Meter
from ._version import __version__

__all__ = ["Transport"]

USER_AGENT = f"aioregistry/{__version__}"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
THROTTLE_STATUSES = frozenset({429, 503})  # the host turned the request away
_HEDGES = 2  # duplicates of one late request at most
_NO_CEIL = float("inf")  # aiohttp's ceil_threshold that rounds no deadline up
_UNKNOWN_DELAY = 0.1  # how often a request sent before the hedging delay was known looks again


def _cert_env() -> tuple[str | None, str | None]:
    return os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")


# What aiohttp's default context was built with (it is built when aiohttp is imported, which
# this module does first); a process that changes the variables later gets a context of its own.
_CERT_ENV_AT_IMPORT = _cert_env()


def _ssl_context(*, insecure: bool, ca_file: str | None) -> ssl.SSLContext | bool:
    """The TLS settings of every connection.

    ``True`` and ``False`` are aiohttp's own verifying and non-verifying contexts, built once
    when aiohttp is imported: a default context of ours would cost every command 17 ms of its
    start (35 ms where SSL_CERT_FILE names the system's bundle, loaded twice) for the same
    certificates. Ours is built for a CA file, or when SSL_CERT_FILE or SSL_CERT_DIR changed
    since aiohttp's was. OpenSSL reads SSL_CERT_FILE itself but says nothing when it cannot,
    so an unreadable one is an error here.
    """
    env_file = os.environ.get("SSL_CERT_FILE")
    if env_file and not os.access(env_file, os.R_OK):
        raise UsageError(f"cannot load CA file {env_file!r} (SSL_CERT_FILE): cannot read it")
    if insecure:
        return False
    if not ca_file and _cert_env() == _CERT_ENV_AT_IMPORT:
        return True
    ctx = ssl.create_default_context()
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load CA file {ca_file!r}: {exc}") from exc
    return ctx


class Transport:
    """Sends requests through one ``ClientSession``, mapping every failure to our errors."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        insecure: bool = False,
        ca_file: str | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limits: Limits = DEFAULT_LIMITS,
        retries: Retries = DEFAULT_RETRIES,
        meter: Meter | None = None,
    ) -> None:
        self._retries = retries
        self.meter = meter or Meter()
        self._ssl = _ssl_context(insecure=insecure, ca_file=ca_file)
        # No rounding up: aiohttp moves a deadline above 5 s to the next whole second of its
        # clock, and a try of "7 s" would wait up to 8.
        self._timeout = aiohttp.ClientTimeout(
            total=timeouts.total,
            sock_connect=timeouts.connect,
            sock_read=timeouts.read,
            ceil_threshold=_NO_CEIL,
        )
        self._limits = limits
        self._pacers: dict[str, HostPacer] = {}
        self._session = session
        self._owns_session = session is None
        self._closed = False

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            # e.g. a scan iterated after its client was closed: never open a session no one
            # will close.
            raise RuntimeError("RegistryClient is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections,
                limit_per_host=self._limits.per_host,
                ssl=self._ssl,
                timeout_ceil_threshold=_NO_CEIL,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                raise_for_status=False,
                trace_configs=[_connection_timing()],
            )
        return self._session

    async def preopen(self, base: URL, count: int, *, within: float) -> int:
        """Open up to ``count`` connections to ``base``'s origin and leave them in the pool;
        the number opened (those not open after ``within`` seconds are given up).

        A scan calls it while its first token and tag list are on their way, so that the
        requests it then sends to a distant registry find their connections open: a new
        one costs a round trip (TCP) and another (TLS 1.3) before its request. Nothing is
        sent on them; a connection that cannot be opened is left out (the requests will say
        why), and aiohttp closes what stays idle past its keep-alive.
        """
        connector = self._get_session().connector
        if connector is None:
            return 0
        if connector.limit:
            count = min(count, connector.limit - 1)  # never wait for the pool's own limit
        loop = asyncio.get_running_loop()
        url = base.with_path("/v2/")
        timeout = aiohttp.ClientTimeout(sock_connect=self._timeout.sock_connect)
        asked = anyio.Event()  # every task has asked the pool for a connection
        opened = 0

        async def one() -> None:
            nonlocal opened
            probe = _PoolProbe()
            request = aiohttp.ClientRequest("GET", url, loop=loop, ssl=self._ssl)
            try:
                connection = await connector.connect(request, [probe], timeout)  # type: ignore[list-item]
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                return
            # Given back only once every task has asked for one: an idle connection (the
            # ping's) given back at once would be taken by the next task, and the next...
            try:
                await asked.wait()
            finally:
                connection.release()  # even when given up: never left taken from the pool
            if not probe.reused:
                opened += 1

        with anyio.move_on_after(within):
            async with anyio.create_task_group() as tg:
                for _ in range(count):
                    tg.start_soon(one)
                # Each task runs until it holds a connection of the pool or opens one.
                await anyio.lowlevel.checkpoint()
                asked.set()
        return opened

    async def aclose(self) -> None:
        self._closed = True
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def send(
        self,
        method: str,
        url: str | URL,
        *,
        headers: dict[str, str] | None = None,
        max_body: int,
        allow_redirects: bool = True,
        data: dict[str, str] | None = None,
        kind: str | None = None,
        limiter: AdaptiveLimiter | None = None,
        urgent: bool = False,
    ) -> Response:
        """One HTTP exchange. Error statuses are returned, not raised: callers decide.

        ``kind`` names the request in the statistics (``manifest``, ``blob``, ``token``...).
        GET and HEAD are retried under the `Retries` policy and the host's retry budget, and
        hedged when their answer is late (`_pacing`). ``limiter`` (a scan's bound on requests
        in flight) is held for each attempt, never while waiting to retry. ``urgent`` requests
        (the rest of a tag already begun) go first under a rate cap; retries always do.
        """
        idempotent = method in ("GET", "HEAD")
        attempts = self._retries.attempts if idempotent else 1
        pacer = self.pacer(url)
        started = time.monotonic()
        send = functools.partial(
            self._attempt,
            method,
            url,
            headers=headers,
            max_body=max_body,
            allow_redirects=allow_redirects,
            data=data,
            kind=kind,
        )
        attempt = tries = 0
        while True:
            attempt += 1
            tries += 1
            last = attempt >= attempts
            sent_at = await pacer.wait_turn(urgent=urgent or tries > 1)
            try:
                resp = await self._exchange(pacer, limiter, send, hedge=idempotent)
            except (ConnectError, RequestTimeout) as exc:
                retryable = isinstance(exc, RequestTimeout) or exc.retryable
                wait = self._backoff(attempt)
                if (
                    last
                    or not retryable
                    or not await self._may_retry(pacer, started, wait, costly=True)
                ):
                    if isinstance(exc, RequestTimeout) and tries > 1:
                        raise _timed_out(method, exc.url, exc.timeout, tries) from exc.__cause__
                    raise
            else:
                if resp.status not in RETRY_STATUSES:
                    return resp
                asked = retry_after(resp.header("Retry-After"))
                if resp.status == 429 or (resp.status == 503 and asked is not None):
                    pacer.throttled(sent_at, asked)  # evidence: the host's rate is cut
                if asked is not None and asked > self._retries.max_wait:
                    return resp  # the server asks for a longer wait than we are willing to
                # Whatever the status, this request alone waits before it asks again.
                wait = asked if asked is not None else self._backoff(attempt)
                if limiter is not None and limiter.capped and resp.status == 503 and asked is None:
                    # Refused by a registry whose capacity the limiter knows: the request was
                    # sent a little too early, not lost; it costs no attempt (the retry
                    # budget and the time budget still bound it).
                    attempt -= 1
                elif last:
                    return resp
                if not await self._may_retry(pacer, started, wait, costly=False):
                    return resp
            self.meter.retry()
            await anyio.sleep(wait)

    async def _may_retry(
        self, pacer: HostPacer, started: float, wait: float, *, costly: bool
    ) -> bool:
        """Whether a retry after ``wait`` seconds fits the time budget (``Retries.total`` from
        ``started``) and the host's retry budget, waiting for the latter if it is short."""
        deadline = started + self._retries.total - wait
        if time.monotonic() > deadline:
            return False
        return await pacer.retry_turn(costly=costly, deadline=deadline)

    async def _exchange(
        self,
        pacer: HostPacer,
        limiter: AdaptiveLimiter | None,
        send: Callable[..., Awaitable[Response]],
        *,
        hedge: bool,
    ) -> Response:
        """One attempt under a slot of ``limiter``, told to it and to the pacer."""
        async with limiter.exchange() if limiter else _Unlimited() as exchange:
            sent = time.monotonic()
            if hedge:
                resp = await self._hedged(pacer, send, exchange)
            else:
                resp = await _tracked(pacer, lambda: send(exchange=exchange))
            status = resp.status
            if status in THROTTLE_STATUSES:
                self.meter.refused()
                exchange.refused = status == 503 and retry_after(resp.header("Retry-After")) is None
            exchange.timed = status < 400 and not exchange.hedged
            if status not in RETRY_STATUSES:
                elapsed = time.monotonic() - sent - exchange.connecting
                pacer.answered(elapsed if exchange.timed else None)
                if status == 401 and not exchange.hedged:
                    # A challenge is answered at once: the round trip (the ping's, before a
                    # scan's first tag list, for what it opens ahead), if no timing else.
                    pacer.round_trip_seen(elapsed)
            return resp

    async def _hedged(
        self,
        pacer: HostPacer,
        send: Callable[..., Awaitable[Response]],
        exchange: Exchange,
    ) -> Response:
        """``send()``, and a duplicate of it if its answer is late and the hedging budget
        allows (`_pacing`), and a second one if that is late too: the first good answer wins
        and the others are cancelled; if all fail, the first request's outcome is the
        answer."""
        if not pacer.hedging:
            return await _tracked(pacer, lambda: send(exchange=exchange))
        mark = pacer.mark()
        began = time.monotonic()
        first = asyncio.ensure_future(_tracked(pacer, lambda: send(exchange=exchange)))
        tasks = [first]
        try:
            delay = await _until_late(pacer, first, mark, began, exchange)
            if delay is None or not pacer.may_hedge():
                return await first
            pending, paid = set(tasks), True
            while pending:
                if paid:  # a duplicate (and one more if it is late too: it may have met
                    # whatever held the first)
                    self.meter.hedge()
                    exchange.hedged = True
                    hedge = asyncio.ensure_future(_hedge(pacer, lambda: send(exchange=exchange)))
                    tasks.append(hedge)
                    pending.add(hedge)
                done, pending = await asyncio.wait(
                    pending, timeout=delay, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    if task.exception() is None and task.result().status not in RETRY_STATUSES:
                        return task.result()
                paid = not done and len(tasks) <= _HEDGES and pacer.may_hedge()
            return first.result()
        finally:
            for task in tasks:
                task.add_done_callback(_retrieve)
                task.cancel()

    def pacer(self, url: str | URL) -> HostPacer:
        """The shared pace of the host ``url`` points at."""
        parsed = URL(url) if isinstance(url, str) else url
        key = f"{parsed.host}:{parsed.port}"
        pacer = self._pacers.get(key)
        if pacer is None:
            rps = self._limits.requests_per_second
            if rps is None and parsed.host == DOCKER_HUB_REGISTRY:
                rps = self._limits.docker_hub_requests_per_second
            retries = self._retries
            pacer = self._pacers[key] = HostPacer(
                requests_per_second=rps,
                budget=retries.budget,
                hedge_after=retries.hedge_after,
                hedge_share=retries.hedge_share,
            )
        return pacer

    def _deadline(self, exc: BaseException) -> float | None:
        """The deadline (seconds) whose passing raised ``exc``."""
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return self._timeout.sock_connect
        if isinstance(exc, aiohttp.SocketTimeoutError):
            return self._timeout.sock_read
        return self._timeout.total

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._retries.max_wait, self._retries.backoff * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311  (jitter, not cryptography)

    async def _attempt(
        self,
        method: str,
        url: str | URL,
        *,
        headers: dict[str, str] | None,
        max_body: int,
        allow_redirects: bool,
        data: dict[str, str] | None,
        kind: str | None,
        exchange: Exchange | None = None,
    ) -> Response:
        session = self._get_session()
        shown = redact_url(url)
        self.meter.request(kind or method)
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                data=data,
                allow_redirects=allow_redirects,
                ssl=self._ssl,
                timeout=self._timeout,
                trace_request_ctx=exchange,
            ) as resp:
                body = await _read_body(resp, method, max_body, shown)
                self.meter.received(len(body))
                if resp.status >= 400 and headers and "Authorization" in headers:
                    body = _scrub(body, headers["Authorization"])
                return Response(
                    method, str(resp.url), resp.status, resp.reason or "", resp.headers, body
                )
        except aiohttp.ClientConnectorCertificateError as exc:
            raise TLSError(
                f"TLS certificate of {_origin(url)} not trusted: {exc.certificate_error}"
                " (use --ca-file to trust its CA, or -k to skip verification)",
                url=shown,
            ) from exc
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            raise TLSError(f"TLS handshake with {_origin(url)} failed: {exc}", url=shown) from exc
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise _timed_out(method, shown, self._deadline(exc), 1) from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(
                f"cannot connect to {_origin(url)}: {exc.os_error}", url=shown
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise UsageError(f"invalid URL {shown}") from exc
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientPayloadError,
            aiohttp.ClientOSError,
        ) as exc:
            raise ConnectError(
                f"{method} {shown}: connection lost ({exc})", url=shown, retryable=True
            ) from exc
        except aiohttp.TooManyRedirects as exc:
            raise TransportError(f"{method} {shown}: too many redirects", url=shown) from exc
        except (aiohttp.ClientError, OSError) as exc:
            # Not repr(): some aiohttp errors carry the request, Authorization header included.
            raise TransportError(
                f"{method} {shown} failed: {type(exc).__name__}: {exc}", url=shown
            ) from exc


async def _until_late(
    pacer: HostPacer,
    first: asyncio.Future[Response],
    mark: tuple[int, int, int],
    began: float,
    exchange: Exchange,
) -> float | None:
    """Wait until ``first`` is done (None) or late: older than the hedging delay (which is
    returned), the time spent opening a connection left out, behind the requests sent after
    it, and among few late ones."""
    while not first.done():
        # The delay may become known (or change) while the request waits; opening a
        # connection is no sign of a late answer.
        delay = pacer.hedge_delay()
        if delay is None or exchange.opening:
            await asyncio.wait([first], timeout=_UNKNOWN_DELAY)
        elif (left := began + exchange.connecting + delay - time.monotonic()) > 0:
            await asyncio.wait([first], timeout=left)
        elif pacer.overtaken(mark) and pacer.few_late(delay):
            return delay
        else:
            await asyncio.wait([first], timeout=delay / 4)  # until it is behind
    return None


async def _tracked(pacer: HostPacer, request: Callable[[], Awaitable[Response]]) -> Response:
    """``request()``, told to the pacer as sent and ended (a task cancelled before it began
    was never sent)."""
    start = pacer.sent()
    try:
        return await request()
    finally:
        pacer.ended(start)


async def _hedge(pacer: HostPacer, request: Callable[[], Awaitable[Response]]) -> Response:
    """A duplicate of a late request: it waits for a turn under the host's rate caps (ahead
    of new work) like any request, then goes."""
    await pacer.wait_turn(urgent=True)
    return await _tracked(pacer, request)


def _retrieve(task: asyncio.Future[Response]) -> None:
    """A losing request's outcome, taken so that asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


class _PoolProbe:
    """Stands for an aiohttp ``Trace`` in `Transport.preopen`: tells whether the pool gave
    a connection it held (``reused``) rather than open one; every other signal is ignored."""

    reused = False

    async def send_connection_reuseconn(self) -> None:
        self.reused = True

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        if not name.startswith("send_"):
            raise AttributeError(name)
        return _ignore


async def _ignore(*_args: object, **_kwargs: object) -> None:
    return None


class _Unlimited:
    """What `AdaptiveLimiter.exchange` is to a request no limiter bounds."""

    async def __aenter__(self) -> Exchange:
        return Exchange()

    async def __aexit__(self, *_: object) -> None:
        return None


def _connection_timing() -> aiohttp.TraceConfig:
    """Tells each `Exchange` how long it waited for a connection: opening one (new
    connections only) or for a free one of the pool, neither of which says anything about the
    registry's speed, so an adaptive limiter and the hedging can tell handshakes and our own
    pool from a registry's queue. A session the caller gave us has no such hook: its exchanges
    are timed whole. (Queueing for the pool and opening a connection come one after the
    other, never nested.)"""

    async def waits(_: aiohttp.ClientSession, ctx: SimpleNamespace, __: object) -> None:
        ctx.waiting_since = time.monotonic()
        exchange = ctx.trace_request_ctx
        if isinstance(exchange, Exchange):
            exchange.opening = True

    async def has_it(_: aiohttp.ClientSession, ctx: SimpleNamespace, __: object) -> None:
        exchange = ctx.trace_request_ctx
        if isinstance(exchange, Exchange) and hasattr(ctx, "waiting_since"):
            exchange.connecting += time.monotonic() - ctx.waiting_since
            exchange.opening = False

    config = aiohttp.TraceConfig()
    config.on_connection_create_start.append(waits)
    config.on_connection_create_end.append(has_it)
    config.on_connection_queued_start.append(waits)
    config.on_connection_queued_end.append(has_it)
    return config


def _timed_out(method: str, shown: str | None, timeout: float | None, tries: int) -> RequestTimeout:
    """The error of a request whose last try timed out: how long (per try), after how many."""
    after = "" if timeout is None else f" after {timeout:g} s"
    return RequestTimeout(
        f"{method} {shown} timed out{after} ({tries} {'try' if tries == 1 else 'tries'})",
        url=shown,
        timeout=timeout,
        tries=tries,
    )


def _origin(url: str | URL) -> str:
    parsed = URL(url) if isinstance(url, str) else url
    return str(parsed.origin())


async def _read_body(resp: aiohttp.ClientResponse, method: str, max_body: int, shown: str) -> bytes:
    if method == "HEAD":
        return b""
    error = resp.status >= 400
    limit = ERROR_BODY_LIMIT if error else max_body
    length = resp.content_length
    if not error and length is not None and length > limit:
        raise InvalidContent(f"{method} {shown}: body of {length} bytes exceeds limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await resp.content.read(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    if size > limit:
        if error:
            return body[:limit]  # an error body is for the message; the rest does not matter
        raise InvalidContent(f"{method} {shown}: body exceeds limit of {limit} bytes")
    return body


def _scrub(body: bytes, authorization: str) -> bytes:
    """An error body with the credential we sent blanked out (some servers echo requests)."""
    secret = authorization.partition(" ")[2].strip().encode()
    return body.replace(secret, b"***") if len(secret) >= 8 else body
