"""The audit: a scan's results as `AuditRow`s, filtered, streamed, and summarised.

`RegistryClient.audit` runs ``scan(what="config", referrers=True)`` (the requests an audit's
answers need and no more: a tag's manifest, each distinct manifest and config once, and its
referrers from the tag list the scan has, so a registry without the referrers API costs a
request only per subject with a fallback index or cosign tag) and turns each result into a
row (`_audit_rows`).

A row's ``same_digest`` needs the digest of every other tag of its repository, so a
repository's rows are held back until each of its tags has a result (the scan says which tags
it will yield, `Scan.tags_of_repository`); from then on its rows go out as they come. Rows of
different repositories do not wait for each other, and a failure that names no tag (a
repository that could not be listed) goes out at once. The filters (`AuditFilter`) apply to
the finished rows, so ``same_digest`` still sees the tags they leave out; the summary
(`AuditSummary`) counts the rows yielded.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

from ._audit_filter import AuditFilter
from ._audit_rows import AuditRow, build_row
from ._audit_summary import AuditSummary, Summariser
from ._once import IterateOnce
from ._scan import Scan
from ._scan_results import ScanResult, ScanStats

__all__ = ["Audit"]


class _Repository:
    """One repository's results so far: each tag's digest, and the results held back."""

    def __init__(self) -> None:
        self.digests: dict[str, str | None] = {}  # tag -> digest (None: the tag failed)
        self.tags_on: dict[str, list[str]] = {}  # digest -> its tags
        self.held: list[ScanResult] = []
        self.complete = False

    def record(self, result: ScanResult) -> None:
        assert result.tag is not None  # noqa: S101
        if result.tag in self.digests:
            return  # another platform of a tag already seen
        self.digests[result.tag] = result.digest
        if result.digest is not None:
            self.tags_on.setdefault(result.digest, []).append(result.tag)

    def same_digest(self, result: ScanResult) -> list[str]:
        if result.digest is None:
            return []
        return sorted(tag for tag in self.tags_on.get(result.digest, ()) if tag != result.tag)


class Audit(IterateOnce[AuditRow]):
    """The row stream of `RegistryClient.audit`: iterate it once, as a `Scan`.

    ``summary`` is the `AuditSummary` of the rows yielded so far (final once the iteration
    ends), ``stats`` the scan's `ScanStats`, ``now`` the audit's start (ages count from it).
    """

    def __init__(self, scan: Scan, *, keep: AuditFilter, now: datetime) -> None:
        self._scan = scan
        self._keep = keep
        self.now = now
        self._summariser = Summariser()
        self._releasing = 0  # rows of a repository just completed, still to be yielded

    def _iterate(self) -> AsyncGenerator[AuditRow, None]:
        return self._rows()

    async def aclose(self) -> None:
        """Stop the audit (and its scan)."""
        await super().aclose()
        await self._scan.aclose()

    @property
    def summary(self) -> AuditSummary:
        return self._summariser.summary()

    @property
    def stats(self) -> ScanStats:
        return self._scan.stats

    @property
    def total(self) -> int:
        """The tags enumerated so far (for progress bars), as `Scan.total`."""
        return self._scan.total

    @property
    def listed(self) -> bool:
        return self._scan.listed

    @property
    def ready(self) -> int:
        """Rows and scan results waiting: a writer can flush when it is 0."""
        return self._scan.ready + self._releasing

    def _row(self, result: ScanResult, repository: _Repository | None) -> AuditRow | None:
        same = repository.same_digest(result) if repository is not None else []
        row = build_row(result, now=self.now, same_digest=same)
        if not self._keep.keeps(row, self.now):
            return None
        self._summariser.add(row)
        return row

    def _completed(self, waiting: dict[str, _Repository]) -> list[_Repository]:
        """The repositories of ``waiting`` whose every tag has now got a result: marked
        complete and taken out of it."""
        done = []
        for name, repository in list(waiting.items()):
            tags = self._scan.tags_of_repository(name)
            if tags is not None and len(repository.digests) >= len(tags):
                repository.complete = True
                done.append(waiting.pop(name))
        return done

    async def _rows(self) -> AsyncGenerator[AuditRow, None]:
        repositories: dict[str, _Repository] = {}
        waiting: dict[str, _Repository] = {}  # those holding rows back
        async with self._scan:
            async for result in self._scan:
                if result.tag is None:  # a repository (or the catalog) that failed
                    if (row := self._row(result, None)) is not None:
                        yield row
                    continue
                repository = repositories.setdefault(result.repository, _Repository())
                repository.record(result)
                if repository.complete:
                    if (row := self._row(result, repository)) is not None:
                        yield row
                    continue
                repository.held.append(result)
                waiting[result.repository] = repository
                released = self._release(self._completed(waiting))
                for row in released:
                    self._releasing -= 1
                    yield row
            # Every tag is in: nothing waits more.
            for row in self._release(list(waiting.values())):
                self._releasing -= 1
                yield row

    def _release(self, repositories: list[_Repository]) -> list[AuditRow]:
        """The rows held back by ``repositories``, counted in `ready` until yielded."""
        rows = []
        for repository in repositories:
            held, repository.held = repository.held, []
            rows += [row for result in held if (row := self._row(result, repository)) is not None]
        self._releasing = len(rows)
        return rows
