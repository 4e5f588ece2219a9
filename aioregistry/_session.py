"""A session per registry endpoint: the ping, authorised requests, manifests and blobs.

`Sessions` (one per client) pings each registry host once (``GET /v2/``, single-flight) to
learn its scheme and its auth challenge, so every later request carries the right
``Authorization`` from the start: a bearer registry costs one token request per scope, not a
401 per request. A loopback registry is tried over HTTPS first and over HTTP when HTTPS is
refused; a TLS registry we do not trust is never retried in clear text.

A `Session` is what the operations hold: one endpoint, optionally bound to an
`AdaptiveLimiter` (a scan's view, `Session.limited`), which the transport holds a slot of
for each attempt of each request. Manifests and blobs come back verified: by digest, the
bytes must hash to it; by tag, a ``Docker-Content-Digest`` that disagrees with the bytes is
a `DigestMismatch`. A Docker schema 1 manifest is refused as such first (`refuse_schema1`),
by ``GET`` or ``HEAD``: it is re-signed on every ``GET``, so no digest check could pass.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from ._authflow import AuthFlow, Endpoint, pick_challenge
from ._exceptions import (
    ConnectError,
    DigestMismatch,
    InvalidContent,
    TLSError,
    TransportError,
    UsageError,
)
from ._flight import SingleFlight
from ._limiter import AdaptiveLimiter
from ._media import ACCEPT_MANIFESTS
from ._models import (
    ImageIndex,
    ImageManifest,
    compute_digest,
    parse_manifest,
    refuse_schema1,
    verify_digest,
)
from ._pacing import HostPacer
from ._ratelimit import LIMIT_HEADER, RateLimit, parse_rate_limit
from ._references import Reference, Repository, is_loopback_host, parse_digest
from ._responses import Response, error_for_response
from ._scopes import RepoType, repository_scope
from ._transport import Transport

__all__ = ["MANIFEST_LIMIT", "PING_LIMIT", "Session", "Sessions"]

MANIFEST_LIMIT = 4 * 1024 * 1024
PING_LIMIT = 64 * 1024


class Sessions:
    """The registries one client talks to, each pinged once; their latest rate limits."""

    def __init__(self, transport: Transport, auth: AuthFlow, *, plain_http: bool) -> None:
        self.transport = transport
        self.auth = auth
        self.rate_limits: dict[str, RateLimit] = {}  # by registry host, the latest announced
        self._plain_http = plain_http
        self._sessions: dict[str, Session] = {}
        self._pings: SingleFlight[str, Session] = SingleFlight()

    async def get(self, host: str) -> Session:
        """The session of registry ``host``, pinging it first if this is the first time."""
        session = self._sessions.get(host)
        if session is not None:
            return session
        return await self._pings.do(host, lambda: self._ping(host))

    async def pull(self, repo: Repository, repo_type: RepoType) -> tuple[Session, str]:
        """The session of ``repo``'s registry and the pull scope of ``repo``."""
        return await self.get(repo.registry), repository_scope(repo.path, "pull", repo_type)

    async def _ping(self, host: str) -> Session:
        if self._plain_http:
            schemes = ["http"]
        elif is_loopback_host(host):
            schemes = ["https", "http"]
        else:
            schemes = ["https"]
        first_error: TransportError | None = None
        for scheme in schemes:
            base = URL.build(scheme=scheme, authority=host)
            try:
                resp = await self.transport.send(
                    "GET", base.with_path("/v2/"), max_body=PING_LIMIT, kind="ping"
                )
            except TransportError as exc:
                certificate = isinstance(exc, TLSError) and isinstance(
                    exc.__cause__, aiohttp.ClientConnectorCertificateError
                )
                if certificate or not isinstance(exc, (ConnectError, TLSError)):
                    raise  # a TLS registry we do not trust must not be retried in clear text
                first_error = first_error or exc
                continue
            endpoint = Endpoint(host, base, None)
            if resp.status == 401:
                endpoint.challenge = pick_challenge(resp, host)
            elif resp.status >= 400:
                raise error_for_response(resp, what=f"{host} is not a usable registry")
            session = self._sessions[host] = Session(self, endpoint)
            return session
        assert first_error is not None  # noqa: S101  (the loop ran at least once)
        if len(schemes) > 1:
            raise type(first_error)(
                f"{first_error} (and over plain HTTP, tried because {host} is loopback)",
                url=first_error.url,
            ) from first_error
        raise first_error


class Session:
    """One registry endpoint as the operations use it (see the module doc)."""

    __slots__ = ("_auth", "_sessions", "_transport", "endpoint", "limiter")

    def __init__(
        self, sessions: Sessions, endpoint: Endpoint, limiter: AdaptiveLimiter | None = None
    ) -> None:
        self._sessions = sessions
        self._transport = sessions.transport
        self._auth = sessions.auth
        self.endpoint = endpoint  # shared by every view: a renewed challenge is for all
        self.limiter = limiter

    @property
    def host(self) -> str:
        return self.endpoint.host

    @property
    def pacer(self) -> HostPacer:
        """The host's shared backoff and rate state."""
        return self._transport.pacer(self.endpoint.base)

    def limited(self, limiter: AdaptiveLimiter) -> Session:
        """This endpoint with every request bounded by ``limiter``."""
        return Session(self._sessions, self.endpoint, limiter)

    def url(self, path: str) -> URL:
        return self.endpoint.base.with_path(path, encoded=True)

    async def preopen(self, count: int, within: float) -> int:
        """Open up to ``count`` connections to the registry ahead of requests, giving up
        those not open after ``within`` seconds (`Transport.preopen`); the number opened."""
        return await self._transport.preopen(self.endpoint.base, count, within=within)

    async def request(
        self,
        scope: str,
        method: str,
        url: URL,
        *,
        max_body: int,
        what: str,
        kind: str,
        accept: str | None = None,
        urgent: bool = False,
    ) -> Response:
        """Send with the right ``Authorization``; on a 401, renew once; raise error statuses.

        A slot of the limiter is held for the HTTP exchange only, never while waiting for a
        token. ``urgent``: the request finishes work already begun (a scan's child manifests
        and configs), so it goes before new work under a rate cap.
        """
        endpoint = self.endpoint
        resp: Response | None = None
        for attempt in range(2):
            headers = {"Accept": accept} if accept else {}
            token = await self._auth.authorize(endpoint, scope, headers)
            resp = await self._transport.send(
                method,
                url,
                headers=headers,
                max_body=max_body,
                kind=kind,
                limiter=self.limiter,
                urgent=urgent,
            )
            if resp.status != 401 or attempt or not self._auth.renew(endpoint, scope, resp, token):
                break
        assert resp is not None  # noqa: S101
        if LIMIT_HEADER in resp.headers:
            self._sessions.rate_limits[endpoint.host] = parse_rate_limit(resp.headers)
        if resp.status >= 400:
            raise self._auth.error(resp, endpoint, what)
        return resp

    async def get_manifest(
        self, ref: Reference, scope: str, *, urgent: bool = False
    ) -> ImageManifest | ImageIndex:
        """The manifest or index ``ref`` names, exactly as sent and verified."""
        resp = await self.request(
            scope,
            "GET",
            self._manifest_url(ref),
            accept=ACCEPT_MANIFESTS,
            max_body=MANIFEST_LIMIT,
            what=f"manifest of {ref}",
            kind="manifest",
            urgent=urgent,
        )
        # Before any digest check: a schema 1 manifest's bytes change on every GET.
        refuse_schema1(resp.body, resp.header("Content-Type"), where=f"manifest of {ref}")
        if ref.digest is not None:
            digest = verify_digest(resp.body, ref.digest, what=f"manifest {ref}")
        else:
            # By tag the bytes decide; the header may be missing (PROTOCOL.md), but one that
            # disagrees means the bytes are not what the registry stored: never trust either.
            digest = compute_digest(resp.body)
            claimed = _header_digest(resp)
            if claimed is not None and claimed != digest:
                raise DigestMismatch(
                    f"manifest of {ref}: the registry says {claimed} "
                    f"(Docker-Content-Digest) but the bytes received hash to {digest}",
                    expected=claimed,
                    actual=digest,
                )
        return parse_manifest(
            resp.body,
            content_type=resp.header("Content-Type"),
            digest=digest,
            where=f"manifest of {ref}",
        )

    async def head_manifest(self, ref: Reference, scope: str, *, what: str) -> Response:
        """``HEAD`` the manifest ``ref`` names (with the full ``Accept`` list)."""
        return await self.request(
            scope,
            "HEAD",
            self._manifest_url(ref),
            accept=ACCEPT_MANIFESTS,
            max_body=0,
            what=what,
            kind="manifest-head",
        )

    async def manifest_digest(self, ref: Reference, scope: str) -> tuple[str | None, str | None]:
        """A manifest's digest (None if the registry sent none) and media type, by ``HEAD``."""
        resp = await self.head_manifest(ref, scope, what=f"digest of {ref}")
        media_type = (resp.header("Content-Type") or "").partition(";")[0].strip() or None
        refuse_schema1(None, media_type, where=f"digest of {ref}")
        digest = _header_digest(resp)
        if digest is not None and ref.digest is not None and digest != ref.digest:
            raise DigestMismatch(
                f"HEAD {ref}: registry says {digest}, asked for {ref.digest}",
                expected=ref.digest,
                actual=digest,
            )
        return digest, media_type

    async def get_blob(
        self,
        repo: Repository,
        scope: str,
        digest: str,
        *,
        size: int | None,
        max_size: int,
        urgent: bool = False,
    ) -> bytes:
        """A blob's bytes, read whole (at most ``max_size``, exactly ``size`` when known) and
        verified against ``digest``. Redirects are followed; aiohttp drops ``Authorization``
        when one leaves the registry's origin."""
        if size is not None and size > max_size:
            raise InvalidContent(f"blob {digest} is {size} bytes, more than the limit {max_size}")
        resp = await self.request(
            scope,
            "GET",
            self.url(f"/v2/{repo.path}/blobs/{digest}"),
            max_body=size if size is not None else max_size,
            what=f"blob {digest} of {repo}",
            kind="blob",
            urgent=urgent,
        )
        if size is not None and len(resp.body) != size:
            raise InvalidContent(
                f"blob {digest} of {repo}: got {len(resp.body)} bytes, descriptor says {size}"
            )
        verify_digest(resp.body, digest, what=f"blob {digest} of {repo}")
        return resp.body

    def _manifest_url(self, ref: Reference) -> URL:
        return self.url(f"/v2/{ref.path}/manifests/{ref.identifier}")


def _header_digest(resp: Response) -> str | None:
    """The ``Docker-Content-Digest`` header; None when missing or malformed (the bytes tell)."""
    header = (resp.header("Docker-Content-Digest") or "").strip()
    try:
        return parse_digest(header) if header else None
    except UsageError:
        return None
