"""One tag of a scan: from a reference to its `ScanResult` (or one per platform).

A tag is resolved by ``GET`` (the fewest requests) or by ``HEAD`` (digest scans, Docker Hub,
whose pull limit counts GETs and not HEADs, and a repository whose manifests the store
already holds: `_resolution`), then its index entries and image, and its config, come
through the scan's `ContentStore` (its memory tier keyed by host and digest, and the disk
tier when the client has one), so nothing is fetched twice in a scan, nor, with a store on
disk, in the next one.
Every request to a registry goes through that registry's session bound to the scan's
`AdaptiveLimiter` for it, made on first use: it starts at 64 requests in flight per 25 ms
of round trip to the registry (Little's law), at most ``ceiling``.

With ``referrers`` (a `ReferrersState`, the client's), each tag's result also gets the
referrers of its digest (`_referrers.list_referrers`), listed once per digest in a scan and
beside the image's own requests rather than after them; ``tags_of`` gives the repository's
bookkeeping tags from the tag list the scan has already (`is_referrer_tag`: all a lookup
reads of it), so finding a fallback index or cosign's tags costs no listing, and a fallback
tag that is not in the list costs no request.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace

import anyio

from ._artifacts import Referrer
from ._blobs import get_config
from ._exceptions import RegistryError
from ._flight import Memo
from ._limiter import AdaptiveLimiter
from ._manifests import image_for, platform_entries, resolve_tag
from ._media import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES
from ._models import ConfigBlob, Descriptor, ImageIndex, ImageManifest, Platform
from ._references import DOCKER_HUB_REGISTRY, Reference, Repository
from ._referrers import ReferrersState, list_referrers
from ._resolution import Resolution
from ._scan_results import Resolve, ScanError, ScanResult, What
from ._scopes import RepoType
from ._session import Session, Sessions
from ._store import MEMORY_ENTRIES, ContentStore

__all__ = ["MEMO_SIZE", "PREOPEN_ROUND_TRIP", "TagScanner"]

MEMO_SIZE = MEMORY_ENTRIES  # distinct manifests / configs kept for reuse; older ones fetched again
# The round trip (seconds) from which a scan opens connections while it waits for a tag list.
PREOPEN_ROUND_TRIP = 0.01


class TagScanner:
    """What a scan does for each tag (see the module doc); ``platform`` None is "all"."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        what: What,
        platform: Platform | None,
        repo_type: RepoType,
        resolve: Resolve,
        initial: int,
        ceiling: int,
        adaptive: bool,
        on_grow: Callable[[], None],
        referrers: ReferrersState | None = None,
        tags_of: Callable[[Repository], Awaitable[Sequence[str]]] | None = None,
        store: ContentStore | None = None,
    ) -> None:
        self._sessions = sessions
        self._what = what
        self._platform = platform
        self._repo_type: RepoType = repo_type
        self._resolve = resolve
        self._initial = initial
        self._ceiling = ceiling
        self._adaptive = adaptive
        self._on_grow = on_grow  # a limiter was made or grew
        self._limited: dict[str, Session] = {}  # by host: the registry's session, bounded
        # The client's store, or one of the scan's own in memory (what the memos were)
        self._store = store if store is not None else ContentStore(memory_entries=MEMO_SIZE)
        # Whether the store held anything when the scan began: a first scan GETs as always.
        self._store_useful = self._store.persistent and not self._store.is_empty
        # The store's disk counters when the scan began (a client's store outlives scans).
        self._store_counts = (self._store.disk_hits, self._store.dropped)
        self._resolutions: dict[Repository, Resolution] = {}
        self._referrers_state = referrers
        self._tags_of = tags_of
        # by (host, repository, digest): referrers are a repository's, not a registry's
        self._referrers: Memo[tuple[str, str, str], tuple[Referrer, ...]] = Memo(MEMO_SIZE)

    @property
    def limiters(self) -> Mapping[str, AdaptiveLimiter]:
        """Each registry host's limiter, for the hosts scanned so far."""
        return {
            host: session.limiter
            for host, session in self._limited.items()
            if session.limiter is not None
        }

    def initial(self, session: Session) -> int:
        """Where the limiter of ``session``'s registry starts."""
        round_trip = session.pacer.round_trip
        if not self._adaptive or round_trip is None:
            return self._initial
        # The requests needed in flight for a given throughput grow with the round trip
        # (Little's law): 64 suits up to 25 ms, so a registry 100 ms away starts at 256
        # rather than spend its first round trips growing there.
        return min(self._ceiling, max(self._initial, int(self._initial * round_trip / 0.025)))

    def store_counts(self) -> tuple[int, int]:
        """The documents this scan read from the disk cache, and the entries it found
        corrupt there (`ScanStats.from_cache`, ``cache_dropped``)."""
        hits, dropped = self._store_counts
        return self._store.disk_hits - hits, self._store.dropped - dropped

    def connections_to_preopen(self, session: Session) -> int:
        """How many connections to open to ``session``'s registry before its first tag list
        is answered: as many as its limiter will start with, or as a cap on the rate keeps
        in flight (twice the rate times the round trip: Docker Hub's 25 per second at
        100 ms: 5); none for a registry nearer than `PREOPEN_ROUND_TRIP`, where
        opening a connection costs little beside the registry's time."""
        round_trip = session.pacer.round_trip
        if round_trip is None or round_trip < PREOPEN_ROUND_TRIP:
            return 0
        count = self.initial(session)
        rate = session.pacer.requests_per_second
        if rate is not None:
            count = min(count, math.ceil(2 * rate * round_trip))
        return count

    async def _session(self, repo: Repository) -> tuple[Session, str]:
        """The session of ``repo``'s registry bounded by this scan's limiter for it, and the
        pull scope."""
        session, scope = await self._sessions.pull(repo, self._repo_type)
        limited = self._limited.get(session.host)
        if limited is None:
            limiter = AdaptiveLimiter(self.initial(session), self._ceiling, on_grow=self._on_grow)
            limited = self._limited[session.host] = session.limited(limiter)
            self._on_grow()
        return limited, scope

    async def _manifest(
        self, session: Session, ref: Reference, scope: str, media_type: str | None
    ) -> ImageManifest | ImageIndex:
        """A manifest by digest (of type ``media_type``, as the registry or the index says),
        from the store or fetched once per scan (verified against the digest). Urgent,
        as the config below: it finishes a tag already begun, so under a rate cap it goes
        before the next tag's first request and results stream from the start."""
        assert ref.digest is not None  # noqa: S101
        return await self._store.manifest(
            session.host,
            ref.digest,
            lambda: session.get_manifest(ref, scope, urgent=True),
            media_type=media_type,
        )

    async def _config(
        self, session: Session, repo: Repository, scope: str, descriptor: Descriptor
    ) -> ConfigBlob:
        return await self._store.config(
            session.host,
            descriptor.digest,
            descriptor.media_type,
            lambda: get_config(session, repo, scope, descriptor, urgent=True),
        )

    def _resolution(self, ref: Reference, host: str) -> Resolution:
        resolution = self._resolutions.get(ref.repository)
        if resolution is None:
            fixed: bool | None = None
            if self._what == "digest" or self._resolve == "head":
                fixed = True
            elif self._resolve == "get":
                fixed = False
            elif host == DOCKER_HUB_REGISTRY:
                # Docker Hub counts manifest GETs against the pull limit and HEADs not:
                # resolve each tag with a HEAD there and GET each distinct digest once.
                fixed = True
            elif not self._store_useful:
                fixed = False  # one GET per tag is the fewest requests
            resolution = self._resolutions[ref.repository] = Resolution(fixed)
        return resolution

    async def _resolve_tag(
        self, session: Session, ref: Reference, scope: str
    ) -> tuple[str, str | None, ImageManifest | ImageIndex | None]:
        """What ``ref`` points to, by HEAD or GET as its repository's `Resolution` says; a
        manifest fetched by tag is kept in the store."""
        resolution = self._resolution(ref, session.host)
        head, sampled = await resolution.head()
        hit = False
        try:
            digest, media_type, top = await resolve_tag(session, ref, scope, head=head)
            hit = top is None and self._store.holds(session.host, digest)
        finally:
            if sampled:
                resolution.found(hit)
        if top is not None and self._store.persistent:
            self._store.keep(session.host, top)
        return digest, media_type, top

    async def scan(self, ref: Reference) -> list[ScanResult]:
        """The result of one tag: one, or one per platform with ``platform`` None."""
        session, scope = await self._session(ref.repository)
        digest, media_type, top = await self._resolve_tag(session, ref, scope)
        base = ScanResult(str(ref), str(ref.repository), ref.tag, digest, media_type)
        if self._referrers_state is None:
            return await self._image(session, ref, scope, base, top)
        # The referrers need only the digest: listed while the image is fetched. Errors are
        # caught inside the group, which would wrap them in an ExceptionGroup.
        listed: tuple[Referrer, ...] | RegistryError = ()

        async def referrers() -> None:
            nonlocal listed
            try:
                listed = await self._referrers_of(session, ref.with_digest(digest), scope)
            except RegistryError as exc:
                listed = exc

        image: list[ScanResult] | RegistryError
        async with anyio.create_task_group() as group:
            group.start_soon(referrers)
            try:
                image = await self._image(session, ref, scope, base, top)
            except RegistryError as exc:
                group.cancel_scope.cancel()
                image = exc
        if isinstance(image, RegistryError):
            raise image
        if isinstance(listed, RegistryError):
            # What was fetched stays; the tag failed all the same.
            failed = ScanError.of(listed)
            return [replace(r, error=r.error or failed) for r in image]
        return [replace(r, referrers=listed) for r in image]

    async def _referrers_of(
        self, session: Session, ref: Reference, scope: str
    ) -> tuple[Referrer, ...]:
        assert ref.digest is not None  # noqa: S101
        assert self._referrers_state is not None  # noqa: S101
        state = self._referrers_state

        async def listed() -> tuple[Referrer, ...]:
            tags = None if self._tags_of is None else await self._tags_of(ref.repository)
            found = await list_referrers(session, ref, scope, state=state, tags=tags)
            return tuple(found)

        return await self._referrers.get((session.host, ref.repository.path, ref.digest), listed)

    async def _image(
        self,
        session: Session,
        ref: Reference,
        scope: str,
        base: ScanResult,
        top: ImageManifest | ImageIndex | None,
    ) -> list[ScanResult]:
        """What the tag is (``top``: its manifest when resolving fetched it): its result,
        or one per platform of an index."""
        digest, media_type = base.digest, base.media_type
        assert digest is not None  # noqa: S101
        if self._what == "digest":
            if media_type in MANIFEST_MEDIA_TYPES:
                return [replace(base, manifest_digest=digest)]
            if media_type not in INDEX_MEDIA_TYPES:
                return [base]
        if top is None:
            top = await self._manifest(session, ref.with_digest(digest), scope, media_type)
        if isinstance(top, ImageIndex):
            base = replace(base, platforms=top.platforms)
            try:
                entries = platform_entries(top, ref, self._platform)
            except RegistryError as exc:  # the platform is not offered: the tag still is
                return [replace(base, error=ScanError.of(exc))]
            return [await self._resolve_entry(session, ref, scope, base, e) for e in entries]
        return [await self._finish(session, ref, scope, base=base, manifest=top, entry=None)]

    async def _resolve_entry(
        self,
        session: Session,
        ref: Reference,
        scope: str,
        base: ScanResult,
        entry: Descriptor,
    ) -> ScanResult:
        try:
            if self._what == "digest":
                return replace(base, platform=str(entry.platform), manifest_digest=entry.digest)
            child = await image_for(
                ref, entry, lambda child: self._manifest(session, child, scope, entry.media_type)
            )
            return await self._finish(session, ref, scope, base=base, manifest=child, entry=entry)
        except RegistryError as exc:
            # With platform="all" one broken platform must not hide the others.
            return replace(base, platform=str(entry.platform), error=ScanError.of(exc))

    async def _finish(
        self,
        session: Session,
        ref: Reference,
        scope: str,
        *,
        base: ScanResult,
        manifest: ImageManifest,
        entry: Descriptor | None,
    ) -> ScanResult:
        platform = str(entry.platform) if entry is not None and entry.platform else None
        config = None
        if self._what == "config":
            config = await self._config(session, ref.repository, scope, manifest.config)
            if platform is None and config.platform is not None:
                platform = str(config.platform)
        platforms = base.platforms
        if platforms is None and config is not None and config.platform is not None:
            platforms = (config.platform,)
        return replace(
            base,
            platform=platform,
            platforms=platforms,
            manifest_digest=manifest.digest,
            config_digest=manifest.config.digest,
            manifest=manifest if self._what in ("manifest", "config") else None,
            config=config,
        )
