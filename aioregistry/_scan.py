"""Fan-out: scan every tag of many repositories at once, yielding results as they complete.

A scan is a pipeline of three stages joined by bounded memory streams, so a slow consumer
slows the fetching instead of filling memory:

    listing tasks ──jobs──▶ workers ──results──▶ the caller's ``async for``

Each HTTP request takes a slot of a per-registry `AdaptiveLimiter` for the exchange only:
by default it starts at 64 requests in flight per 25 ms of round trip to the registry (at
least 64, at most 256), grows (up to 256) while the registry's latency, not its capacity,
bounds the throughput, and comes down to what a registry takes that refuses requests beyond a
number in flight (`_limiter`); an explicit ``concurrency`` fixes the most it may reach. What a
worker does for one tag is `_scan_tag.TagScanner`'s: nothing is fetched twice (index
children, image manifests and configs are memoised by digest), tokens come from the client's
cache, and a digest scan uses ``HEAD``. Everything the scan's tasks send is counted in its
own `ScanStats`. Each tag is scanned once however often the targets name it: a target given
twice, a tag given as an image and listed by its repository (``R/x:latest`` and ``R/x``), a
repository given and listed by the catalog. Listed tags that are referrer bookkeeping
(``sha256-<hex>`` fallback indexes, cosign's ``.sig``/``.att``/``.sbom``: `is_referrer_tag`)
are not images and are left out, counted in ``ScanStats.hidden_tags``, unless
``include_digest_tags``; an image target is scanned whatever its tag. With ``referrers``
each result carries the referrers of its digest; the tag lists the scan read are kept for
that, so a repository is listed once (an image target's repository when first needed).

The work runs in a task of its own, so the scan can be cancelled from wherever the iterator
is closed: breaking out of ``async for`` (the generator is finalised at once), ``aclose()``,
leaving ``async with``, or cancelling the consuming task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._artifacts import is_referrer_tag
from ._exceptions import RegistryError, UsageError
from ._flight import Memo
from ._models import (
    DEFAULT_PLATFORM,
    Platform,
    as_platform,
)
from ._once import IterateOnce
from ._references import (
    Reference,
    Repository,
    parse_reference,
    parse_registry,
    parse_repository,
)
from ._referrers import ReferrersState
from ._scan_results import Resolve, ScanError, ScanResult, ScanStats, What, is_image_reference
from ._scan_tag import TagScanner
from ._scopes import RepoType
from ._session import Session, Sessions
from ._stats import Counters, Meter
from ._store import ContentStore
from ._tags import catalog, list_tags

__all__ = ["DEFAULT_SCAN_CONCURRENCY", "MAX_SCAN_CONCURRENCY", "Pipeline", "Scan"]

# Requests in flight per registry, chosen by measurement (benchmarks/concurrency.py; README,
# "Choosing the concurrency"): 64 is within 10% of the best fixed value at RTT 0 and 20 ms,
# where the registry's CPU is the bound; at 100 ms more is better (128: 1.3x faster), so the
# adaptive limiter grows from 64 while answers do not slow down, up to 256 (the default pool).
DEFAULT_SCAN_CONCURRENCY = 64
MAX_SCAN_CONCURRENCY = 256
_WHAT = ("digest", "manifest", "config")
_TAG_LISTS = 1 << 16  # repositories whose tag lists a scan with referrers keeps


@dataclass(frozen=True, slots=True)
class _Job:
    ref: Reference


class Pipeline:
    """The scan's state and tasks. Nothing here refers to the `Scan` handle or to the
    generator, so dropping those (breaking out of ``async for``) lets the generator be
    finalised even while pipeline tasks still run."""

    def __init__(
        self,
        sessions: Sessions,
        meter: Meter,
        check_open: Callable[[], None],
        targets: Sequence[str | Repository | Reference],
        *,
        catalog: str | None,
        what: What,
        platform: str | Platform | None,
        concurrency: int | None,
        fail_fast: bool,
        repo_type: RepoType,
        resolve: Resolve,
        include_digest_tags: bool,
        referrers: ReferrersState | None = None,
        store: ContentStore | None = None,
    ) -> None:
        if what not in _WHAT:
            raise UsageError(f"invalid what {what!r}: expected one of {', '.join(_WHAT)}")
        if concurrency is not None and (
            not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1
        ):
            raise UsageError(f"invalid concurrency {concurrency!r}: expected an integer >= 1")
        if resolve not in ("auto", "get", "head"):
            raise UsageError(f"invalid resolve {resolve!r}: expected auto, get or head")
        self._repos, self._images = _split_targets(targets)
        self._given = frozenset(self._images)
        self._catalog = None
        if catalog is not None:
            self._catalog = parse_registry(catalog)
        if not (self._repos or self._images or self._catalog):
            raise UsageError("nothing to scan: give repositories, images or a catalog")
        self._sessions = sessions
        self._meter = meter
        self._check_open = check_open
        self._fail_fast = fail_fast
        self._repo_type: RepoType = repo_type
        self._include_digest_tags = include_digest_tags
        # (where each host's limiter starts, the most it may reach)
        if concurrency is None:
            initial, self._ceiling = DEFAULT_SCAN_CONCURRENCY, MAX_SCAN_CONCURRENCY
        else:
            initial = self._ceiling = concurrency
        self._initial = initial
        wanted: Platform | None = None  # "all" (or "ALL"): every image platform of an index
        if not (isinstance(platform, str) and platform.lower() == "all"):
            wanted = DEFAULT_PLATFORM if platform is None else as_platform(platform)
        self._tags = TagScanner(
            sessions,
            what=what,
            platform=wanted,
            repo_type=repo_type,
            resolve=resolve,
            initial=initial,
            ceiling=self._ceiling,
            adaptive=concurrency is None,
            on_grow=self._grew,
            referrers=referrers,
            tags_of=None if referrers is None else self._referrer_tags,
            store=store,
        )
        # Each repository's whole tag list, when referrers are wanted, and its bookkeeping
        # tags: all a lookup needs of it (a fallback tag, cosign's tags), and few, so a
        # lookup per digest does not go through a thousand tags each.
        self._tag_lists: Memo[Repository, list[str]] | None = None
        self._bookkeeping: dict[Repository, list[str]] = {}
        if referrers is not None:
            self._tag_lists = Memo(_TAG_LISTS)
        # Each repository's tags to be scanned (`tags_of_repository`); final once listed.
        self._planned: dict[str, list[str]] = {}
        self._planned_final: set[str] = set()
        for image in self._images:
            if image.tag is not None:
                self._planned.setdefault(str(image.repository), []).append(image.tag)
        self.total = len(self._images)
        self.listed = False
        self._results = 0
        self._errors = 0
        self._hidden = 0  # listed tags left out as referrer bookkeeping
        self._started: float | None = None
        self._ended: float | None = None
        self._counters = Counters()  # this scan's own requests, tokens and retries
        self._receive: MemoryObjectReceiveStream[ScanResult] | None = None
        self._workers = 0
        self._hire: Callable[[int], None] | None = None
        self._spawn: Callable[..., object] | None = None  # starts a task of the scan
        self._preopened: set[str] = set()  # hosts whose connections were opened ahead

    @property
    def ready(self) -> int:
        """Results finished and waiting to be taken."""
        return self._receive.statistics().current_buffer_used if self._receive else 0

    def tags_of_repository(self, repository: str) -> Sequence[str] | None:
        """Every tag of ``repository`` (as `ScanResult.repository` names it) that the scan
        yields results for, once that is known (the repository listed, or every target and
        the catalog), else None."""
        if repository in self._planned_final or self.listed:
            return self._planned.get(repository, [])
        return None

    @property
    def stats(self) -> ScanStats:
        counters = self._counters
        start = self._started or time.monotonic()
        limiters = self._tags.limiters
        from_cache, cache_dropped = self._tags.store_counts()
        return ScanStats(
            results=self._results,
            errors=self._errors,
            requests={kind: n for kind, n in counters.requests.items() if n},
            tokens_fetched=counters.tokens_fetched,
            bytes_received=counters.bytes_received,
            retries=counters.retries,
            hedges=counters.hedges,
            refused=counters.refused,
            seconds=(self._ended or time.monotonic()) - start,
            concurrency={host: limiter.peak for host, limiter in limiters.items()},
            rate_limits={
                host: limit
                for host, limit in self._sessions.rate_limits.items()
                if host in limiters
            },
            hidden_tags=self._hidden,
            from_cache=from_cache,
            cache_dropped=cache_dropped,
        )

    async def iterate(self) -> AsyncGenerator[ScanResult, None]:
        self._check_open()
        self._started = time.monotonic()
        send, receive = anyio.create_memory_object_stream[ScanResult](self._ceiling)
        self._receive = receive
        # A task of its own, not a task group around the yields: the generator may be closed
        # from another task (the event loop's async-generator finaliser), which a cancel
        # scope would not survive.
        work = asyncio.get_running_loop().create_task(self._run(send))
        try:
            async for result in receive:
                self._results += 1
                if result.error is not None:
                    self._errors += 1
                    if self._fail_fast:
                        raise result.error.exception
                yield result
            await work  # surfaces a bug in the pipeline itself; tag errors are results
        finally:
            self._ended = time.monotonic()
            # Stop the work before closing the stream it writes to, so no worker sees a
            # broken stream, and wait (shielded: we may be here because of a cancellation).
            if not work.done():
                work.cancel()
                with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                    await asyncio.wait({work})
            receive.close()
            if work.done() and not work.cancelled():
                work.exception()  # retrieved: the caller left early, so it no longer matters

    # -- the pipeline ----------------------------------------------------------------------

    async def _run(self, results: MemoryObjectSendStream[ScanResult]) -> None:
        jobs_send, jobs_receive = anyio.create_memory_object_stream[_Job](self._ceiling)
        # Every task of the scan starts from here, so all of them count into its counters.
        with self._meter.counting() as self._counters:
            async with results, jobs_receive, anyio.create_task_group() as tg:
                tg.start_soon(self._produce, jobs_send, results.clone())

                def hire(workers: int) -> None:
                    while self._workers < workers:
                        self._workers += 1
                        tg.start_soon(self._work, jobs_receive.clone(), results.clone())

                # Twice the requests in flight: a worker waiting for a token or a memoised
                # fetch leaves its slot to another. More are hired as a limiter grows, not up
                # front: idle workers queueing on a limiter cost time on every request.
                self._hire = hire
                self._spawn = tg.start_soon
                hire(2 * self._initial)

    async def _produce(
        self, jobs: MemoryObjectSendStream[_Job], results: MemoryObjectSendStream[ScanResult]
    ) -> None:
        async with jobs, results:
            for ref in self._images:
                await jobs.send(_Job(ref))
            # Repositories are listed a few at a time: one listing is a round trip or more,
            # and a catalog may hold thousands of repositories.
            listing = anyio.CapacityLimiter(min(8, self._ceiling))
            async with anyio.create_task_group() as tg:
                for repo in self._repos:
                    tg.start_soon(self._list, repo, listing, jobs.clone(), results.clone())
                if self._catalog is not None:
                    where = f"{self._catalog}/_catalog"
                    try:
                        names = await catalog(self._sessions, self._catalog, page_size=None)
                    except RegistryError as exc:
                        await results.send(ScanResult(where, where, None, error=ScanError.of(exc)))
                        names = []
                    named = set(self._repos)
                    for name in names:
                        try:
                            repo = Repository(self._catalog, name)
                        except UsageError as exc:  # the registry listed a name we cannot use
                            await results.send(
                                ScanResult(where, where, None, error=ScanError.of(exc))
                            )
                            continue
                        if repo in named:
                            continue  # given as a target too (or listed twice): listed once
                        named.add(repo)
                        tg.start_soon(self._list, repo, listing, jobs.clone(), results.clone())
            self.listed = True

    async def _list(
        self,
        repo: Repository,
        listing: anyio.CapacityLimiter,
        jobs: MemoryObjectSendStream[_Job],
        results: MemoryObjectSendStream[ScanResult],
    ) -> None:
        async with jobs, results:
            try:
                async with listing:
                    self._preopen(await self._sessions.get(repo.registry))
                    tags = await self._tags_of(repo)
            except RegistryError as exc:
                self._planned_final.add(str(repo))
                await results.send(_listing_error(repo, exc))
                return
            # A tag also given as an image (`R/x` and `R/x:latest`) is scanned once, as the
            # image given: never hidden.
            unique = [
                tag for tag in dict.fromkeys(tags) if Reference(repo, tag, None) not in self._given
            ]
            if not self._include_digest_tags:
                kept = [tag for tag in unique if not is_referrer_tag(tag)]
                self._hidden += len(unique) - len(kept)
                unique = kept
            refs = [Reference(repo, tag, None) for tag in unique]
            self._planned.setdefault(str(repo), []).extend(unique)
            self._planned_final.add(str(repo))
            self.total += len(refs)
            for ref in refs:
                await jobs.send(_Job(ref))

    async def _tags_of(self, repo: Repository) -> Sequence[str]:
        """``repo``'s tags, listed once in the scan when referrers are wanted."""

        def listed() -> Awaitable[list[str]]:
            return list_tags(self._sessions, repo, repo_type=self._repo_type, page_size=None)

        if self._tag_lists is None:
            return await listed()
        return await self._tag_lists.get(repo, listed)

    async def _referrer_tags(self, repo: Repository) -> Sequence[str]:
        """The tags of ``repo`` that are referrer bookkeeping (`is_referrer_tag`)."""
        kept = self._bookkeeping.get(repo)
        if kept is None:
            tags = await self._tags_of(repo)
            kept = self._bookkeeping[repo] = [tag for tag in tags if is_referrer_tag(tag)]
        return kept

    async def _work(
        self, jobs: MemoryObjectReceiveStream[_Job], results: MemoryObjectSendStream[ScanResult]
    ) -> None:
        async with jobs, results:
            async for job in jobs:
                try:
                    produced = await self._tags.scan(job.ref)
                except RegistryError as exc:
                    produced = [_error_result(job.ref, exc)]
                try:
                    for result in produced:
                        await results.send(result)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return  # the consumer is gone

    def _preopen(self, session: Session) -> None:
        """Open connections to a distant registry while its first token and tag list are on
        their way (each is a round trip or two), so that the tags' requests do not each
        spend two more opening one (`TagScanner.connections_to_preopen`); once per host."""
        if session.host in self._preopened or self._spawn is None:
            return
        self._preopened.add(session.host)
        count = self._tags.connections_to_preopen(session)
        round_trip = session.pacer.round_trip
        if count and round_trip is not None:
            # Opening takes two round trips; what takes far longer is not worth waiting for
            # (the scan waits for its tasks when it ends).
            self._spawn(session.preopen, count, max(1.0, 10 * round_trip))

    def _grew(self) -> None:
        """A limiter was made or grew: twice the requests all of them allow, in workers."""
        if self._hire is not None:
            self._hire(2 * sum(limiter.limit for limiter in self._tags.limiters.values()))


class Scan(IterateOnce[ScanResult]):
    """The result stream of `RegistryClient.scan`: iterate it once.

    ``async with client.scan(...) as results: async for r in results: ...`` stops the scan
    deterministically when the block is left; a plain ``async for`` works too (breaking out
    finalises the iterator, which cancels the work). ``stats`` is final once the iteration
    ends; ``total`` counts the tags enumerated so far (for progress bars) and ``listed`` turns
    true when every repository has been listed.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def _iterate(self) -> AsyncGenerator[ScanResult, None]:
        return self._pipeline.iterate()

    @property
    def total(self) -> int:
        return self._pipeline.total

    @property
    def listed(self) -> bool:
        return self._pipeline.listed

    def tags_of_repository(self, repository: str) -> Sequence[str] | None:
        """The tags of ``repository`` this scan yields results for, None until it knows
        them all (until the repository is listed)."""
        return self._pipeline.tags_of_repository(repository)

    @property
    def ready(self) -> int:
        """How many results are finished and waiting: a writer can flush when it is 0."""
        return self._pipeline.ready

    @property
    def stats(self) -> ScanStats:
        return self._pipeline.stats


def _split_targets(
    targets: Sequence[str | Repository | Reference],
) -> tuple[list[Repository], list[Reference]]:
    """The repositories and images ``targets`` name, each once, in the order given."""
    repos: dict[Repository, None] = {}
    images: dict[Reference, None] = {}
    for target in targets:
        if isinstance(target, Reference):
            images[target] = None
        elif isinstance(target, Repository):
            repos[target] = None
        elif is_image_reference(target):
            images[parse_reference(target)] = None
        else:
            repos[parse_repository(target)] = None
    return list(repos), list(images)


def _error_result(ref: Reference, exc: RegistryError) -> ScanResult:
    return ScanResult(str(ref), str(ref.repository), ref.tag, error=ScanError.of(exc))


def _listing_error(repo: Repository, exc: RegistryError) -> ScanResult:
    return ScanResult(str(repo), str(repo), None, error=ScanError.of(exc))
