"""`RegistryClient`: the façade over one client's sessions, with auth handled for the caller.

It owns the lifecycle (a closed client refuses to reopen), the statistics, what it learns
about registries' referrers API, and one thin method per operation; the operations
themselves live one per module (`_tags`, `_manifests`, `_blobs`, `_check`, `_referrers`),
on the per-registry sessions of `_session`, and the scan in `_scan`.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import TYPE_CHECKING

import aiohttp

from . import _blobs, _check, _manifests, _referrers, _tags
from ._artifacts import Referrer
from ._auth import Token, TokenCache
from ._authflow import AuthFlow
from ._blobs import CONFIG_LIMIT
from ._config import DEFAULT_LIMITS, DEFAULT_RETRIES, DEFAULT_TIMEOUTS, Limits, Retries, Timeouts
from ._config_files import HELPER_TIMEOUT
from ._credential_source import CredentialSource
from ._credentials import CredentialsLike
from ._exceptions import UsageError
from ._models import (
    DEFAULT_PLATFORM,
    ConfigBlob,
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    as_platform,
)
from ._ratelimit import RateLimit
from ._references import (
    DOCKER_HUB_REGISTRY,
    Reference,
    Repository,
    parse_digest,
    parse_reference,
    parse_registry,
    parse_repository,
)
from ._scopes import RepoType
from ._session import Sessions
from ._stats import Meter
from ._store import ContentStore, open_store
from ._transport import Transport

if TYPE_CHECKING:  # the scan's machinery is imported by `RegistryClient.scan`, when used
    from ._audit import Audit
    from ._scan import Scan
    from ._scan_results import Resolve, What

__all__ = ["ClientStats", "RegistryClient"]


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


@dataclass(frozen=True, slots=True)
class ClientStats:
    """What a client has done so far: HTTP requests by kind, tokens fetched, bytes read,
    retries, hedges (duplicates of late requests) and refusals (429 and 503 answers).

    Kinds: ``ping``, ``token``, ``tags``, ``repositories`` (catalog pages), ``manifest``
    (GET), ``manifest-head``, ``blob``, ``referrers`` (pages of the referrers API).
    """

    requests: Mapping[str, int]
    tokens_fetched: int
    bytes_received: int
    retries: int
    hedges: int = 0
    refused: int = 0

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

    ``cache`` keeps manifests, indexes and configs by digest across scans and runs: a
    `ContentStore`, or a directory to open as one (made 0700 if missing; `CacheError` if
    others may read or write it). None, the default, keeps nothing beyond each scan's memory:
    a program decides where its files go. A scan with a cache resolves a repository's tags
    with ``HEAD`` once it finds their manifests there, and fetches only what it lacks; what
    a tag points to is never cached. `get_manifest`, `fetch_manifest` by digest and
    `get_config_blob` read and fill it too.
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
        cache: ContentStore | str | os.PathLike[str] | None = None,
    ) -> None:
        self._store = open_store(cache)  # first: a bad directory fails before anything opens
        self._meter = Meter()
        transport = Transport(
            session=session,
            insecure=insecure,
            ca_file=ca_file,
            timeouts=timeouts,
            limits=limits,
            retries=retries,
            meter=self._meter,
        )
        credential_source = CredentialSource(
            credentials,
            use_env=use_env_credentials,
            use_config_files=use_config_files,
            helper_timeout=credential_helper_timeout,
        )
        auth = AuthFlow(
            transport, credential_source, token_cache or TokenCache(), insecure=insecure
        )
        self._sessions = Sessions(transport, auth, plain_http=plain_http)
        self._referrers = _referrers.ReferrersState()
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
        await self._sessions.transport.aclose()

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
        return dict(self._sessions.rate_limits)

    @property
    def cache(self) -> ContentStore | None:
        """The content store given as ``cache`` (None without one)."""
        return self._store

    @property
    def stats(self) -> ClientStats:
        total = self._meter.total
        return ClientStats(
            dict(total.requests),
            total.tokens_fetched,
            total.bytes_received,
            total.retries,
            total.hedges,
            total.refused,
        )

    # -- operations ------------------------------------------------------------------------

    async def get_token(
        self, repository: str | Repository, *, repo_type: RepoType = "image"
    ) -> Token:
        """A pull token for ``repository`` (cached), as the registry's token server issued it."""
        self._check_open()
        return await _check.get_token(self._sessions, _as_repository(repository), repo_type)

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
        return await _tags.list_tags(self._sessions, repo, repo_type=repo_type, page_size=page_size)

    async def catalog(
        self, registry: str = DOCKER_HUB_REGISTRY, *, page_size: int | None = None
    ) -> list[str]:
        """Every repository name of ``registry`` (``GET /v2/_catalog``, paginated).

        ``page_size`` is a hint, as for `list_tags`.
        """
        self._check_open()
        return await _tags.catalog(self._sessions, parse_registry(registry), page_size=page_size)

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
        session, scope = await self._sessions.pull(ref.repository, repo_type)
        wanted = as_platform(platform) if platform is not None else None
        return await _manifests.get_digest(session, ref, scope, wanted)

    async def fetch_manifest(
        self, reference: str | Reference, *, repo_type: RepoType = "image"
    ) -> ImageManifest | ImageIndex:
        """Whatever the reference points to, index or image manifest, exactly as sent."""
        self._check_open()
        ref = _as_reference(reference)
        session, scope = await self._sessions.pull(ref.repository, repo_type)
        if ref.digest is None or self._store is None:
            return await session.get_manifest(ref, scope)
        return await self._store.manifest(
            session.host, ref.digest, lambda: session.get_manifest(ref, scope)
        )

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
        wanted = as_platform(platform) if platform is not None else DEFAULT_PLATFORM
        session, scope = await self._sessions.pull(ref.repository, repo_type)
        store = self._store
        if store is None:
            return await _manifests.get_manifest(session, ref, scope, wanted)

        async def by_digest(child: Reference) -> ImageManifest | ImageIndex:
            assert child.digest is not None  # noqa: S101
            return await store.manifest(
                session.host, child.digest, lambda: session.get_manifest(child, scope)
            )

        return await _manifests.get_manifest(session, ref, scope, wanted, by_digest=by_digest)

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
        self._check_open()
        repo = _as_repository(repository)
        session, scope = await self._sessions.pull(repo, repo_type)
        if self._store is None:
            return await _blobs.get_config(session, repo, scope, descriptor)
        return await self._store.config(
            session.host,
            descriptor.digest,
            descriptor.media_type,
            lambda: _blobs.get_config(session, repo, scope, descriptor),
        )

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
        session, scope = await self._sessions.pull(repo, repo_type)
        return await session.get_blob(repo, scope, digest, size=size, max_size=max_size)

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
        session, scope = await self._sessions.pull(ref.repository, repo_type)
        return await _manifests.get_rate_limit(session, ref, scope)

    async def list_referrers(
        self,
        reference: str | Reference,
        *,
        artifact_type: str | None = None,
        repo_type: RepoType = "image",
    ) -> list[Referrer]:
        """Every signature, SBOM, attestation or other artifact that names ``reference``'s
        digest as its subject, as typed descriptors with their `ReferrerKind`.

        A tag is first resolved to its digest (one ``HEAD``). Looked up in the referrers API
        (every page), or where the registry has none (it answers 404: learned once per
        registry and remembered for the client's life) in the spec's fallback index under
        the tag ``<alg>-<hex>``; and in cosign 2's legacy tags ``sha256-<hex>.sig``, ``.att``
        and ``.sbom``, found in the tag list. ``artifact_type`` keeps only referrers of that
        ``artifactType`` (for a cosign tag: the manifest's, else its config media type, read
        with a ``GET``). An entry with no artifact type, or the empty one, is classified by
        its manifest (one ``GET`` per digest, remembered). No referrers gives ``[]``.
        """
        self._check_open()
        ref = _as_reference(reference)
        session, scope = await self._sessions.pull(ref.repository, repo_type)
        if ref.digest is None:
            ref = ref.with_digest(await _manifests.get_digest(session, ref, scope, None))
        return await _referrers.list_referrers(
            session, ref, scope, state=self._referrers, artifact_type=artifact_type
        )

    async def describe_credentials(self, registry: str) -> str:
        """Which credentials ``registry`` would get and from where (never a secret), e.g.
        ``'alice' (docker config /home/a/.docker/config.json (auths))``."""
        self._check_open()
        return await _check.describe_credentials(self._sessions, parse_registry(registry))

    async def verify_credentials(self, registry: str) -> str:
        """A sentence saying that ``registry`` accepts its credentials, or `Unauthorized`.

        A bearer registry is asked for a token of the catalog scope, and ``/v2/`` with it
        (a token server grants an empty access list for a scope it will not give, so no
        repository needs naming); a Basic registry is asked ``/v2/`` with the credentials.
        """
        self._check_open()
        return await _check.verify_credentials(self._sessions, parse_registry(registry))

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
        include_digest_tags: bool = False,
        referrers: bool = False,
    ) -> Scan:
        """Scan many tags at once; iterate the result to get one `ScanResult` per tag.

        ``targets`` are repositories (every tag is scanned) or image references (a tag or
        digest given); ``catalog`` adds every repository of that registry. ``what`` is
        ``digest`` (HEAD only), ``manifest`` or ``config``; ``platform`` picks an index entry
        (default linux/amd64) or, with ``"all"``, yields one result per platform.
        ``concurrency`` bounds the requests in flight per registry; by default (None) the
        bound adapts: it starts at 64 per 25 ms of round trip to the registry (at least 64,
        at most 256), grows up to 256 while the registry answers as fast as ever (a distant
        registry: latency bounds the throughput), and settles just under the number in flight
        beyond which a registry refuses requests (503s that begin at some number in flight;
        refusals at a flat rate are random loss and retried alone, see README "How it paces
        a registry"). A failing tag yields a result with ``error`` set; with ``fail_fast``
        the first error is raised instead.
        ``resolve`` says how a tag becomes a manifest: ``get`` (one GET per tag, the fewest
        requests), ``head`` (HEAD per tag, then one GET per distinct digest: what Docker
        Hub's pull limit favours), or ``auto`` (``head`` on Docker Hub, ``get`` elsewhere).
        A repository's tags that are referrer bookkeeping (``sha256-<hex>`` fallback indexes
        and cosign's ``sha256-<hex>.sig``/``.att``/``.sbom``) are not images and are left out
        (counted in ``stats.hidden_tags``) unless ``include_digest_tags``; an image given as
        a target is scanned whatever its tag.
        With ``referrers`` each result's ``referrers`` lists what names the tag's digest as
        its subject (an index's own digest for a multi-arch tag), as `list_referrers` finds
        it, from the tag list the scan has: once per distinct digest, and on a registry
        without the referrers API no request at all for a digest that has neither a fallback
        tag nor cosign tags (the API's absence is learned once, as there).

        Results stream as they complete and nothing is collected: break out at any time, and
        prefer ``async with client.scan(...) as results:`` for deterministic cleanup.
        """
        self._check_open()
        # Imported here, not at the top: a program (or command) that never scans does not
        # pay for the pipeline, its streams and its result types at start-up.
        from ._scan import Pipeline, Scan  # noqa: PLC0415

        return Scan(
            Pipeline(
                self._sessions,
                self._meter,
                self._check_open,
                targets,
                catalog=catalog,
                what=what,
                platform=platform,
                concurrency=concurrency,
                fail_fast=fail_fast,
                repo_type=repo_type,
                resolve=resolve,
                include_digest_tags=include_digest_tags,
                referrers=self._referrers if referrers else None,
                store=self._store,
            )
        )

    def audit(
        self,
        *targets: str | Repository | Reference,
        catalog: str | None = None,
        platform: str | Platform | None = None,
        concurrency: int | None = None,
        repo_type: RepoType = "image",
        include: str | None = None,
        exclude: str | None = None,
        older_than: str | timedelta | None = None,
        newer_than: str | timedelta | None = None,
        missing_platform: str | Platform | None = None,
        unsigned: bool = False,
        now: datetime | None = None,
    ) -> Audit:
        """Audit many tags at once; iterate the result to get one `AuditRow` per tag (per
        platform with ``platform="all"``): its age, size, layers, platforms, the tags on the
        same digest, whether it is signed and has an SBOM or attestations.

        ``targets``, ``catalog``, ``platform``, ``concurrency`` and ``repo_type`` are
        `scan`'s; the scan fetches configs and referrers (``what="config"``,
        ``referrers=True``) and leaves out the referrer bookkeeping tags. The filters
        compose: ``include`` / ``exclude`` are regular expressions searched in the tag,
        ``older_than`` / ``newer_than`` durations (``"90d"``, ``"12h"``, ``"2w"``, or a
        timedelta) from ``now`` (default: the call's time, UTC; ages count from it too),
        ``missing_platform`` keeps tags that do not offer that platform, ``unsigned`` those
        no signature names. A failed tag's row passes every filter but the tag's.
        ``summary`` sums up the rows yielded (`AuditSummary`). Rows stream as each
        repository's tags are all scanned (``same_digest`` needs them); prefer
        ``async with client.audit(...) as rows:``.
        """
        self._check_open()
        from ._audit import Audit  # noqa: PLC0415
        from ._audit_filter import AuditFilter  # noqa: PLC0415

        if now is not None and now.tzinfo is None:
            raise UsageError("audit(now=...) must be an aware datetime (e.g. in UTC)")
        keep = AuditFilter.build(
            include=include,
            exclude=exclude,
            older_than=older_than,
            newer_than=newer_than,
            missing_platform=missing_platform,
            unsigned=unsigned,
        )
        scan = self.scan(
            *targets,
            catalog=catalog,
            what="config",
            platform=platform,
            concurrency=concurrency,
            repo_type=repo_type,
            referrers=True,
        )
        return Audit(scan, keep=keep, now=now or datetime.now(timezone.utc))


def _as_reference(reference: str | Reference) -> Reference:
    return parse_reference(reference) if isinstance(reference, str) else reference


def _as_repository(repository: str | Repository) -> Repository:
    return parse_repository(repository) if isinstance(repository, str) else repository
