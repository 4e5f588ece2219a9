"""`RegistryClient`: the operations, over one session, with auth handled for the caller.

Each registry host is pinged once (``GET /v2/``, single-flight) to learn its scheme and its
auth challenge; after that every request carries the right ``Authorization`` from the start,
so a bearer registry costs one token request per scope, not a 401 per request. A 401 on a
request that carried a token drops that token and retries once with a new one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import aiohttp
import orjson
from yarl import URL

from ._auth import (
    CATALOG_SCOPE,
    Challenge,
    CredentialsLike,
    CredentialSource,
    Token,
    TokenCache,
    parse_token_response,
    parse_www_authenticate,
    repository_scope,
)
from ._bulk import Resolve, Scan, What, _Pipeline
from ._credentials import HELPER_TIMEOUT
from ._exceptions import (
    AuthenticationError,
    ConnectError,
    DigestMismatch,
    InsecureCredentials,
    InvalidContent,
    ResponseError,
    TLSError,
    TransportError,
    Unauthorized,
    UsageError,
)
from ._flight import SingleFlight
from ._models import (
    ACCEPT_MANIFESTS,
    DEFAULT_PLATFORM,
    ConfigBlob,
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    compute_digest,
    parse_manifest,
    verify_digest,
)
from ._pacing import AdaptiveLimiter
from ._ratelimit import LIMIT_HEADER as RATE_LIMIT_HEADER
from ._ratelimit import RateLimit, parse_rate_limit
from ._references import (
    DOCKER_HUB_REGISTRY,
    Reference,
    Repository,
    is_loopback_host,
    parse_digest,
    parse_reference,
    parse_registry,
    parse_repository,
)
from ._transport import (
    DEFAULT_LIMITS,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUTS,
    Limits,
    Response,
    Retries,
    Timeouts,
    Transport,
    error_for_response,
    redact_url,
)

__all__ = ["ClientStats", "RegistryClient", "RepoType"]

RepoType = Literal["image", "plugin"]

MANIFEST_LIMIT = 4 * 1024 * 1024
CONFIG_LIMIT = 64 * 1024 * 1024
LIST_LIMIT = 64 * 1024 * 1024  # tag lists are unpaginated on some registries (GCR)
TOKEN_LIMIT = 1024 * 1024
PING_LIMIT = 64 * 1024
MAX_PAGES = 100_000  # 10 million tags at 100 a page; beyond that a registry is stringing us along
# Registries that refuse a page size above their own limit, by host suffix: clamped, so a
# large page_size costs no refused request there.
_PAGE_SIZE_LIMITS = ((".amazonaws.com", 1000), (".amazonaws.com.cn", 1000))
_LOG_IN = "(log in with docker login, --username/--password-stdin, or DOCKER_USER/DOCKER_PASSWORD)"
OAUTH_CLIENT_ID = "aioregistry"  # docs/spec/auth/oauth.md: a client identifies itself
_LINK_NEXT = re.compile(r'<([^>]*)>\s*(?:;[^,]*?)?;\s*rel="?next"?', re.IGNORECASE)


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


@dataclass(slots=True)
class _RegistryInfo:
    host: str
    base: URL  # scheme://host
    challenge: Challenge | None  # what /v2/ asked for; None when it let us in

    @property
    def plain_http(self) -> bool:
        return self.base.scheme == "http"


@dataclass(frozen=True, slots=True)
class ClientStats:
    """What a client has done so far: HTTP requests by kind, tokens fetched, bytes read.

    Kinds: ``ping``, ``token``, ``tags``, ``repositories`` (catalog pages), ``manifest``
    (GET), ``manifest-head``, ``blob``.
    """

    requests: Mapping[str, int]
    tokens_fetched: int
    bytes_received: int
    retries: int

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class RegistryClient:
    """An async client for Docker Registry HTTP API V2 / OCI distribution registries.

    Use it as an async context manager; one client owns one aiohttp session (or borrows the
    one given as ``session``, which it then never closes), one token cache and one ping cache,
    all shared by every task that uses it::

        async with RegistryClient() as client:
            tags = await client.list_tags("ubuntu")
            manifest = await client.get_manifest("ubuntu:24.04", platform="linux/arm64")

    Credentials, first match wins: ``credentials`` (a mapping of registry hosts to
    `Credentials` or ``(username, password)``, or one `Credentials` for every registry);
    ``DOCKER_USER`` and ``DOCKER_PASSWORD`` for any registry, unless ``use_env_credentials``
    is false; docker's ``config.json`` (``credHelpers``, ``credsStore``, ``auths``) and then
    containers' ``auth.json``, unless ``use_config_files`` is false (a credential helper gets
    ``credential_helper_timeout`` seconds); else anonymous. An identity token is exchanged
    with the OAuth2 refresh-token grant (``POST`` to the realm, ``GET`` when that answers 404
    or 405). Credentials go only to the registry and to the token realm it names, and never
    in clear text to a host that is not loopback unless ``insecure`` is set.
    ``insecure`` turns TLS verification off; ``ca_file`` adds a trusted CA (``SSL_CERT_FILE``
    is honoured too); ``plain_http`` speaks HTTP to every registry. Loopback registries are
    tried over HTTPS first and over HTTP when HTTPS is refused.
    """

    def __init__(
        self,
        *,
        credentials: Mapping[str, CredentialsLike] | CredentialsLike | None = None,
        use_env_credentials: bool = True,
        use_config_files: bool = True,
        credential_helper_timeout: float = HELPER_TIMEOUT,
        insecure: bool = False,
        ca_file: str | None = None,
        plain_http: bool = False,
        session: aiohttp.ClientSession | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limits: Limits = DEFAULT_LIMITS,
        retries: Retries = DEFAULT_RETRIES,
        token_cache: TokenCache | None = None,
    ) -> None:
        self._credentials = CredentialSource(
            credentials,
            use_env=use_env_credentials,
            use_config_files=use_config_files,
            helper_timeout=credential_helper_timeout,
        )
        self._realms_without_oauth: set[str] = set()  # answered our POST with 404/405
        self._rate_limits: dict[str, RateLimit] = {}  # by registry host, the latest seen
        self._insecure = insecure
        self._plain_http = plain_http
        self._transport = Transport(
            session=session,
            insecure=insecure,
            ca_file=ca_file,
            timeouts=timeouts,
            limits=limits,
            retries=retries,
        )
        self._tokens = token_cache or TokenCache()
        self._registries: dict[str, _RegistryInfo] = {}
        self._pings: SingleFlight[str, _RegistryInfo] = SingleFlight()
        self._state = _State.UNOPENED

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> RegistryClient:
        if self._state is not _State.UNOPENED:
            raise RuntimeError(
                "a RegistryClient cannot be reopened"
                if self._state is _State.CLOSED
                else "this RegistryClient is already open"
            )
        self._state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this client created it. Idempotent."""
        self._state = _State.CLOSED
        await self._transport.aclose()

    def _check_open(self) -> None:
        if self._state is not _State.OPENED:
            raise RuntimeError(
                "RegistryClient is closed"
                if self._state is _State.CLOSED
                else "use RegistryClient as 'async with RegistryClient() as client:'"
            )

    @property
    def rate_limits(self) -> Mapping[str, RateLimit]:
        """The latest pull limit each registry host announced, on any response so far
        (Docker Hub sends one with every manifest request; most registries never do)."""
        return dict(self._rate_limits)

    @property
    def stats(self) -> ClientStats:
        return ClientStats(
            dict(self._transport.requests),
            self._tokens.fetches,
            self._transport.bytes_received,
            self._transport.retries,
        )

    # -- operations ------------------------------------------------------------------------

    async def get_token(
        self, repository: str | Repository, *, repo_type: RepoType = "image"
    ) -> Token:
        """A pull token for ``repository`` (cached), as the registry's token server issued it."""
        self._check_open()
        repo = _as_repository(repository)
        info = await self._registry(repo.registry)
        if info.challenge is None or info.challenge.scheme != "bearer":
            how = info.challenge.scheme if info.challenge else "no authentication"
            raise AuthenticationError(
                f"registry {repo.registry} does not use bearer tokens (it uses {how})"
            )
        return await self._token(
            info, info.challenge, repository_scope(repo.path, "pull", repo_type)
        )

    async def list_tags(
        self,
        repository: str | Repository,
        *,
        repo_type: RepoType = "image",
        page_size: int | None = None,
    ) -> list[str]:
        """Every tag of ``repository``, following ``Link`` pagination to the last page.

        ``page_size`` (``n``) is a hint: it is clamped to 1000 on ECR (``*.amazonaws.com``),
        and a registry that answers 400 or 413 to it is asked again without it.
        """
        self._check_open()
        repo = _as_repository(repository)
        scope = repository_scope(repo.path, "pull", repo_type)
        return await self._paginate(
            repo.registry,
            f"/v2/{repo.path}/tags/list",
            key="tags",
            scope=scope,
            page_size=page_size,
            what=f"tags of {repo}",
        )

    async def catalog(
        self, registry: str = DOCKER_HUB_REGISTRY, *, page_size: int | None = None
    ) -> list[str]:
        """Every repository name of ``registry`` (``GET /v2/_catalog``, paginated).

        ``page_size`` is a hint, as for `list_tags`.
        """
        self._check_open()
        host = parse_registry(registry)
        return await self._paginate(
            host,
            "/v2/_catalog",
            key="repositories",
            scope=CATALOG_SCOPE,
            page_size=page_size,
            what=f"catalog of {host}",
        )

    async def get_digest(
        self,
        reference: str | Reference,
        *,
        platform: str | Platform | None = None,
        repo_type: RepoType = "image",
    ) -> str:
        """The digest a reference points to.

        Without ``platform``: what the tag points to (an index's own digest for a multi-arch
        tag), from a ``HEAD`` with the full ``Accept`` list; a registry that sends no
        ``Docker-Content-Digest`` costs a ``GET``, hashed. With ``platform``: the digest of
        that platform's manifest in the index, or the manifest's own when the tag is not
        multi-arch.
        """
        self._check_open()
        ref = _as_reference(reference)
        if platform is not None:
            wanted = _as_platform(platform)
            fetched = await self.fetch_manifest(ref, repo_type=repo_type)
            if isinstance(fetched, ImageIndex):
                return fetched.select(wanted).digest
            return fetched.digest
        info, scope = await self._pull(ref.repository, repo_type)
        digest, _ = await self._head_manifest(info, ref, scope)
        if digest is not None:
            return digest
        return (await self._fetch_manifest(info, ref, scope)).digest

    async def fetch_manifest(
        self, reference: str | Reference, *, repo_type: RepoType = "image"
    ) -> ImageManifest | ImageIndex:
        """Whatever the reference points to, index or image manifest, exactly as sent."""
        self._check_open()
        ref = _as_reference(reference)
        info, scope = await self._pull(ref.repository, repo_type)
        return await self._fetch_manifest(info, ref, scope)

    async def get_manifest_list(
        self, reference: str | Reference, *, repo_type: RepoType = "image"
    ) -> ImageIndex | ImageManifest:
        """The manifest list / OCI index of a tag; the image manifest when it is not multi-arch."""
        return await self.fetch_manifest(reference, repo_type=repo_type)

    async def get_manifest(
        self,
        reference: str | Reference,
        *,
        platform: str | Platform | None = None,
        repo_type: RepoType = "image",
    ) -> ImageManifest:
        """The image manifest: a multi-arch tag resolves to ``platform`` (default linux/amd64).

        A tag that is not multi-arch is returned as it is, whatever ``platform`` says (the
        config's ``os``/``architecture`` tell what it is built for).
        """
        self._check_open()
        ref = _as_reference(reference)
        wanted = _as_platform(platform) if platform is not None else DEFAULT_PLATFORM
        info, scope = await self._pull(ref.repository, repo_type)
        fetched = await self._fetch_manifest(info, ref, scope)
        if isinstance(fetched, ImageManifest):
            return fetched
        child = fetched.select(wanted)
        resolved = await self._fetch_manifest(info, ref.with_digest(child.digest), scope)
        if not isinstance(resolved, ImageManifest):
            raise InvalidContent(
                f"index {fetched.digest} of {ref} points at another index for {wanted}"
            )
        return resolved

    async def get_config(
        self,
        reference: str | Reference,
        *,
        platform: str | Platform | None = None,
        repo_type: RepoType = "image",
    ) -> ConfigBlob:
        """The config blob (image or plugin config) of the platform's manifest, verified."""
        ref = _as_reference(reference)
        manifest = await self.get_manifest(ref, platform=platform, repo_type=repo_type)
        return await self.get_config_blob(ref.repository, manifest.config, repo_type=repo_type)

    async def get_config_blob(
        self,
        repository: str | Repository,
        descriptor: Descriptor,
        *,
        repo_type: RepoType = "image",
    ) -> ConfigBlob:
        """Fetch the config a manifest's ``config`` descriptor names, checked by digest and size."""
        raw = await self.get_blob(
            repository,
            descriptor.digest,
            size=descriptor.size,
            repo_type=repo_type,
            max_size=CONFIG_LIMIT,
        )
        return ConfigBlob.parse(raw, media_type=descriptor.media_type, digest=descriptor.digest)

    async def get_blob(
        self,
        repository: str | Repository,
        digest: str,
        *,
        size: int | None = None,
        max_size: int = CONFIG_LIMIT,
        repo_type: RepoType = "image",
    ) -> bytes:
        """A blob's bytes, read whole (at most ``max_size``) and verified against ``digest``.

        Redirects are followed (blob stores often answer with one); aiohttp drops the
        ``Authorization`` header when a redirect leaves the registry's origin.
        """
        self._check_open()
        repo = _as_repository(repository)
        digest = parse_digest(digest)
        info, scope = await self._pull(repo, repo_type)
        return await self._fetch_blob(info, repo, scope, digest, size=size, max_size=max_size)

    async def get_rate_limit(
        self, reference: str | Reference, *, repo_type: RepoType = "image"
    ) -> RateLimit:
        """The pull limit the registry announces for ``reference``, from one manifest ``HEAD``.

        Docker Hub does not count a ``HEAD`` against the pull limit, so looking is free. A
        registry that sends no rate-limit headers gives a `RateLimit` of Nones; an unknown
        tag raises `NotFound` as the other operations do.
        """
        self._check_open()
        ref = _as_reference(reference)
        info, scope = await self._pull(ref.repository, repo_type)
        resp = await self._head(info, ref, scope, what=f"rate limit of {ref}")
        return parse_rate_limit(resp.headers)

    def scan(
        self,
        *targets: str | Repository | Reference,
        catalog: str | None = None,
        what: What = "config",
        platform: str | Platform | None = None,
        concurrency: int | None = None,
        fail_fast: bool = False,
        repo_type: RepoType = "image",
        resolve: Resolve = "auto",
    ) -> Scan:
        """Scan many tags at once; iterate the result to get one `ScanResult` per tag.

        ``targets`` are repositories (every tag is scanned) or image references (a tag or
        digest given); ``catalog`` adds every repository of that registry. ``what`` is
        ``digest`` (HEAD only), ``manifest`` or ``config``; ``platform`` picks an index entry
        (default linux/amd64) or, with ``"all"``, yields one result per platform.
        ``concurrency`` bounds the requests in flight per registry; by default (None) the
        bound adapts: it starts at 64 per 25 ms of round trip to the registry (at least 64,
        at most 256), grows up to 256 while the registry answers as fast as ever (a distant
        registry: latency bounds the throughput), and halves whenever it throttles (429/503),
        growing back once it stops. A failing tag yields a
        result with ``error`` set; with ``fail_fast`` the first error is raised instead.
        ``resolve`` says how a tag becomes a manifest: ``get`` (one GET per tag, the fewest
        requests), ``head`` (HEAD per tag, then one GET per distinct digest: what Docker
        Hub's pull limit favours), or ``auto`` (``head`` on Docker Hub, ``get`` elsewhere).

        Results stream as they complete and nothing is collected: break out at any time, and
        prefer ``async with client.scan(...) as results:`` for deterministic cleanup.
        """
        self._check_open()
        return Scan(
            _Pipeline(
                self,
                targets,
                catalog=catalog,
                what=what,
                platform=platform,
                concurrency=concurrency,
                fail_fast=fail_fast,
                repo_type=repo_type,
                resolve=resolve,
            )
        )

    # -- machinery -------------------------------------------------------------------------

    async def _pull(self, repo: Repository, repo_type: RepoType) -> tuple[_RegistryInfo, str]:
        """The registry of ``repo`` (pinged once) and the pull scope for it."""
        return await self._registry(repo.registry), repository_scope(repo.path, "pull", repo_type)

    async def _fetch_manifest(
        self,
        info: _RegistryInfo,
        ref: Reference,
        scope: str,
        limiter: AdaptiveLimiter | None = None,
    ) -> ImageManifest | ImageIndex:
        url = info.base.with_path(f"/v2/{ref.path}/manifests/{ref.identifier}", encoded=True)
        resp = await self._request(
            info,
            scope,
            "GET",
            url,
            accept=ACCEPT_MANIFESTS,
            max_body=MANIFEST_LIMIT,
            what=f"manifest of {ref}",
            kind="manifest",
            limiter=limiter,
        )
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

    async def _head_manifest(
        self,
        info: _RegistryInfo,
        ref: Reference,
        scope: str,
        limiter: AdaptiveLimiter | None = None,
    ) -> tuple[str | None, str | None]:
        """``HEAD`` a manifest: its digest (None if the header is missing) and media type."""
        resp = await self._head(info, ref, scope, what=f"digest of {ref}", limiter=limiter)
        media_type = (resp.header("Content-Type") or "").partition(";")[0].strip() or None
        digest = _header_digest(resp)
        if digest is not None and ref.digest is not None and digest != ref.digest:
            raise DigestMismatch(
                f"HEAD {ref}: registry says {digest}, asked for {ref.digest}",
                expected=ref.digest,
                actual=digest,
            )
        return digest, media_type

    async def _head(
        self,
        info: _RegistryInfo,
        ref: Reference,
        scope: str,
        *,
        what: str,
        limiter: AdaptiveLimiter | None = None,
    ) -> Response:
        url = info.base.with_path(f"/v2/{ref.path}/manifests/{ref.identifier}", encoded=True)
        return await self._request(
            info,
            scope,
            "HEAD",
            url,
            accept=ACCEPT_MANIFESTS,
            max_body=0,
            what=what,
            kind="manifest-head",
            limiter=limiter,
        )

    async def _fetch_blob(
        self,
        info: _RegistryInfo,
        repo: Repository,
        scope: str,
        digest: str,
        *,
        size: int | None,
        max_size: int,
        limiter: AdaptiveLimiter | None = None,
    ) -> bytes:
        if size is not None and size > max_size:
            raise InvalidContent(f"blob {digest} is {size} bytes, more than the limit {max_size}")
        url = info.base.with_path(f"/v2/{repo.path}/blobs/{digest}", encoded=True)
        resp = await self._request(
            info,
            scope,
            "GET",
            url,
            max_body=size if size is not None else max_size,
            what=f"blob {digest} of {repo}",
            kind="blob",
            limiter=limiter,
        )
        if size is not None and len(resp.body) != size:
            raise InvalidContent(
                f"blob {digest} of {repo}: got {len(resp.body)} bytes, descriptor says {size}"
            )
        verify_digest(resp.body, digest, what=f"blob {digest} of {repo}")
        return resp.body

    async def _paginate(
        self, host: str, path: str, *, key: str, scope: str, page_size: int | None, what: str
    ) -> list[str]:
        if page_size is not None and page_size < 1:
            raise UsageError(f"page_size must be a positive number, not {page_size}")
        info = await self._registry(host)
        url = info.base.with_path(path, encoded=True)
        page_size = _page_size_for(info, page_size)
        if page_size is not None:
            url = url.with_query(n=str(page_size))
        asked_size = page_size is not None  # our own n is on the first request
        seen_urls: set[str] = set()
        items: dict[str, None] = {}  # ordered and de-duplicated across page boundaries
        while True:
            seen_urls.add(str(url))
            try:
                resp = await self._request(
                    info, scope, "GET", url, max_body=LIST_LIMIT, what=what, kind=key
                )
            except ResponseError as exc:
                if not asked_size or exc.status not in (400, 413):
                    raise
                # The registry refuses our page size (Quay: 413, ECR: 400): a page size is a
                # hint, so ask again without it and let the registry page as it likes.
                asked_size = False
                url = url.with_query(None)
                continue
            asked_size = False
            page = _list_page(resp, key)
            before = len(items)
            items.update(dict.fromkeys(page))
            next_url = _next_link(resp, url, info)
            if next_url is None:
                return list(items)
            if str(next_url) in seen_urls or len(items) == before:
                # A loop, or pages that add nothing under ever-new links: a registry that
                # would keep us busy forever.
                raise InvalidContent(
                    f"{redact_url(url)}: pagination does not advance "
                    f"(next link {redact_url(next_url)})"
                )
            if len(seen_urls) >= MAX_PAGES:
                raise InvalidContent(f"{what}: more than {MAX_PAGES} pages; giving up")
            url = next_url

    async def _registry(self, host: str) -> _RegistryInfo:
        info = self._registries.get(host)
        if info is not None:
            return info
        return await self._pings.do(host, lambda: self._ping(host))

    async def _ping(self, host: str) -> _RegistryInfo:
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
                resp = await self._transport.send(
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
            info = _RegistryInfo(host, base, None)
            if resp.status == 401:
                info.challenge = _pick_challenge(resp, host)
            elif resp.status >= 400:
                raise error_for_response(resp, what=f"{host} is not a usable registry")
            self._registries[host] = info
            return info
        assert first_error is not None  # noqa: S101  (the loop ran at least once)
        if len(schemes) > 1:
            raise type(first_error)(
                f"{first_error} (and over plain HTTP, tried because {host} is loopback)",
                url=first_error.url,
            ) from first_error
        raise first_error

    async def _request(
        self,
        info: _RegistryInfo,
        scope: str,
        method: str,
        url: URL,
        *,
        max_body: int,
        what: str,
        kind: str,
        accept: str | None = None,
        limiter: AdaptiveLimiter | None = None,
    ) -> Response:
        """Send with the right ``Authorization``; on a 401, renew once; raise error statuses.

        ``limiter`` bounds the requests in flight (a scan's per-registry limit); it is held
        for the HTTP exchange only, never while waiting for a token.
        """
        base_headers = {"Accept": accept} if accept else {}
        resp: Response | None = None
        for attempt in range(2):
            headers = dict(base_headers)
            token = await self._authorize(info, scope, headers)
            resp = await self._transport.send(
                method, url, headers=headers, max_body=max_body, kind=kind, limiter=limiter
            )
            if resp.status != 401 or attempt:
                break
            if URL(resp.url).origin() != info.base.origin():
                # A redirect target (a blob store) asked for credentials: what it names is
                # not the registry's realm, and the registry's credentials are not for it.
                break
            challenge = _pick_challenge(resp, info.host, required=False)
            if challenge is None:
                break
            if token is not None:
                # The registry no longer takes this token (expired, revoked): drop and renew.
                self._tokens.invalidate(_token_key(challenge, scope, info), token)
                self._tokens.invalidate(_token_key(info.challenge, scope, info), token)
            elif info.challenge is not None and info.challenge.scheme == challenge.scheme:
                break  # we already answered this kind of challenge; asking again cannot help
            info.challenge = challenge
        assert resp is not None  # noqa: S101
        if RATE_LIMIT_HEADER in resp.headers:
            self._rate_limits[info.host] = parse_rate_limit(resp.headers)
        if resp.status >= 400:
            raise self._error(resp, info, what)
        return resp

    def _error(self, resp: Response, info: _RegistryInfo, what: str) -> ResponseError:
        error = error_for_response(resp, what=what)
        if isinstance(error, Unauthorized):
            creds, source = self._credentials.last(info.host)
            who = f"as {creds.describe()} ({source})" if creds else f"anonymously {_LOG_IN}"
            error.args = (f"{error.args[0]} [authenticated {who}]",)
        return error

    async def _authorize(
        self, info: _RegistryInfo, scope: str, headers: dict[str, str]
    ) -> Token | None:
        challenge = info.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds, _ = await self._credentials.resolve(info.host, _scope_repository(scope))
            if creds is not None and creds.has_password:
                self._check_clear_text(info.base, info.host)
                headers["Authorization"] = creds.basic_header()
            return None
        if challenge.scheme == "bearer":
            token = await self._token(info, challenge, scope)
            headers["Authorization"] = f"Bearer {token.value}"
            return token
        return None

    async def _token(self, info: _RegistryInfo, challenge: Challenge, scope: str) -> Token:
        key = _token_key(challenge, scope, info)
        return await self._tokens.get(key, lambda: self._fetch_token(info, key))

    async def _fetch_token(self, info: _RegistryInfo, key: tuple[str, str, str]) -> Token:
        """A token from the realm: the OAuth2 refresh-token grant for an identity token
        (``GET`` when the realm answers that ``POST`` with 404 or 405), else ``GET`` with Basic
        credentials when there are any, anonymous otherwise."""
        realm, service, scope = key
        creds, source = await self._credentials.resolve(info.host, _scope_repository(scope))
        resp: Response | None = None
        refused: tuple[int, ...] = (401, 403)
        if creds is not None and creds.identity_token and realm not in self._realms_without_oauth:
            resp = await self._oauth_token(URL(realm), service, scope, creds.identity_token)
            refused = (400, 401, 403)  # OAuth2 answers a bad refresh token 400 invalid_grant
            if resp.status in (404, 405):
                # No OAuth2 here (Harbor answers 405): docker's GET flow, now and from now on.
                self._realms_without_oauth.add(realm)
                resp, refused = None, (401, 403)
        if resp is None:
            url = URL(realm)
            query = dict(url.query)
            if service:
                query["service"] = service
            query["scope"] = scope
            url = url.with_query(query)
            headers: dict[str, str] = {}
            if creds is not None and creds.has_password:
                self._check_clear_text(url, url.host or "")
                headers["Authorization"] = creds.basic_header()
            resp = await self._transport.send(
                "GET", url, headers=headers, max_body=TOKEN_LIMIT, kind="token"
            )
        if resp.status in refused:
            who = f"{creds.describe()} ({source})" if creds else f"anonymous requests {_LOG_IN}"
            error = error_for_response(resp, what=f"token server refused {who} for {scope}")
            if resp.status == 400:
                error = Unauthorized(
                    str(error), status=400, method=resp.method, url=redact_url(resp.url)
                )
            raise error
        if resp.status >= 400:
            raise error_for_response(resp, what=f"token request for {scope}")
        return parse_token_response(
            resp.body, scope=scope, now=self._tokens.clock(), realm=redact_url(realm)
        )

    async def _oauth_token(
        self, realm: URL, service: str, scope: str, refresh_token: str
    ) -> Response:
        """``POST`` the refresh-token grant (docs/spec/auth/oauth.md) to the realm."""
        self._check_clear_text(realm, realm.host or "")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "service": service,
            "client_id": OAUTH_CLIENT_ID,
            "scope": scope,  # several scopes would be joined by spaces
        }
        return await self._transport.send(
            "POST", realm, data=form, max_body=TOKEN_LIMIT, kind="token"
        )

    async def _describe_credentials(self, registry: str) -> str:
        """Which credentials ``registry`` would get and from where; never a secret."""
        self._check_open()
        creds, source = await self._credentials.resolve(parse_registry(registry))
        return f"{creds.describe()} ({source})" if creds else "anonymous (no credentials found)"

    async def _verify_credentials(self, registry: str) -> str:
        """Proof that ``registry`` accepts its credentials (or raise `Unauthorized`).

        A bearer registry: a token for the catalog scope is fetched and ``/v2/`` is asked
        with it; a token server grants an empty access list for a scope it will not give, so
        this checks the credentials without naming any repository. A Basic registry: ``/v2/``
        with the credentials.
        """
        self._check_open()
        host = parse_registry(registry)
        info = await self._registry(host)
        challenge = info.challenge
        if challenge is None:
            return f"accepted: {host} asks for no authentication"
        ping = info.base.with_path("/v2/")
        if challenge.scheme == "bearer":
            await self._request(
                info, CATALOG_SCOPE, "GET", ping, max_body=PING_LIMIT, what=host, kind="ping"
            )
            realm = redact_url(challenge.realm or "")
            return f"accepted: {realm} issued a token that {host} takes"
        creds, source = await self._credentials.resolve(host)
        if creds is None or not creds.has_password:
            who = f"{creds.describe()} ({source})" if creds else "anonymous"
            raise Unauthorized(
                f"{host} asks for Basic credentials and none usable were found [{who}]",
                status=401,
                method="GET",
                url=str(ping),
            )
        await self._request(info, "", "GET", ping, max_body=PING_LIMIT, what=host, kind="ping")
        return f"accepted: {host} takes the Basic credentials"

    def _check_clear_text(self, url: URL, host: str) -> None:
        if url.scheme == "http" and not self._insecure and not is_loopback_host(host):
            raise InsecureCredentials(
                f"refusing to send credentials over plain HTTP to {url.origin()} "
                "(use HTTPS, or -k/insecure=True to allow it)"
            )


def _scope_repository(scope: str) -> str | None:
    """The repository a ``repository[(class)]:name:actions`` scope names, else None."""
    kind, sep, rest = scope.partition(":")
    if not sep or not kind.startswith("repository"):
        return None
    name, sep, _ = rest.rpartition(":")
    return name if sep and name else None


def _token_key(
    challenge: Challenge | None, scope: str, info: _RegistryInfo
) -> tuple[str, str, str]:
    realm = challenge.realm if challenge and challenge.realm else ""
    return (realm, (challenge.service or "") if challenge else "", scope)


def _pick_challenge(resp: Response, host: str, *, required: bool = True) -> Challenge | None:
    challenges = parse_www_authenticate(resp.headers.getall("WWW-Authenticate", []))
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme != scheme:
                continue
            if scheme == "bearer":
                _check_realm(challenge, host)
            return challenge
    if required:
        offered = ", ".join(c.scheme for c in challenges) or "no challenge"
        raise AuthenticationError(
            f"registry {host} answered 401 with {offered}; only Bearer and Basic are supported"
        )
    return None


def _check_realm(challenge: Challenge, host: str) -> None:
    realm = challenge.realm
    try:
        url = URL(realm) if realm else None
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise AuthenticationError(f"registry {host} named an unusable token realm {realm!r}")


def _header_digest(resp: Response) -> str | None:
    """The ``Docker-Content-Digest`` header; None when missing or malformed (the bytes tell)."""
    header = (resp.header("Docker-Content-Digest") or "").strip()
    try:
        return parse_digest(header) if header else None
    except UsageError:
        return None


def _page_size_for(info: _RegistryInfo, page_size: int | None) -> int | None:
    """``page_size`` within the registry's known limit (ECR answers 400 to ``n`` > 1000)."""
    if page_size is None:
        return None
    hostname = (info.base.host or "").lower()
    for suffix, limit in _PAGE_SIZE_LIMITS:
        if hostname.endswith(suffix):
            return min(page_size, limit)
    return page_size


def _list_page(resp: Response, key: str) -> list[str]:
    try:
        data = orjson.loads(resp.body)
    except orjson.JSONDecodeError as exc:
        raise InvalidContent(f"{redact_url(resp.url)}: body is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidContent(f"{redact_url(resp.url)}: body is not a JSON object")
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise InvalidContent(f"{redact_url(resp.url)}: {key!r} is not a list of strings")
    return items


def _next_link(resp: Response, current: URL, info: _RegistryInfo) -> URL | None:
    # ``current`` is on the registry's origin: the first page by construction, every later
    # one because parse_next_link refused any other.
    return parse_next_link(resp.headers.getall("Link", []), current)


def parse_next_link(values: Sequence[str], current: URL) -> URL | None:
    """The ``rel="next"`` target of ``Link`` header ``values``, resolved against ``current``.

    None when there is no next link. A next link that leaves ``current``'s origin (another
    host, port or scheme) raises `InvalidContent`: a page must not lead the client, and its
    credentials, elsewhere.
    """
    for header in values:
        match = _LINK_NEXT.search(header)
        if match is None:
            continue
        try:
            target = current.join(URL(match.group(1)))
            origin = target.origin()  # a URL with no host (javascript:, file:) has none
        except ValueError as exc:  # yarl: a bad IPv6 literal, a port out of range...
            raise InvalidContent(
                f"{redact_url(current)}: next page link is not a usable URL ({exc})"
            ) from exc
        if origin != current.origin():
            raise InvalidContent(
                f"{redact_url(current)}: next page link points at another host ({origin})"
            )
        return target
    return None


def _as_reference(reference: str | Reference) -> Reference:
    return parse_reference(reference) if isinstance(reference, str) else reference


def _as_repository(repository: str | Repository) -> Repository:
    return parse_repository(repository) if isinstance(repository, str) else repository


def _as_platform(platform: str | Platform) -> Platform:
    return Platform.parse(platform) if isinstance(platform, str) else platform
