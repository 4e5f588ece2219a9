"""The summary of an audit's rows: `AuditSummary`, counted as the rows go by (`Summariser`).

Images are distinct platform manifests (a digest, and for an index the manifest it gives
that platform), so two tags on one image count once in ``images`` and ``total_size``;
``unique_size`` goes further and counts each distinct blob (a config or a layer) once, however
many images share it: what the registry stores for them. ``unsigned`` and ``without_sbom``
count tags (a tag audited on several platforms once) whose answers are known, so a failed
tag is neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._audit_rows import AuditRow, format_created

__all__ = ["AuditSummary", "Summariser"]


@dataclass(frozen=True, slots=True)
class AuditSummary:
    """What the rows of an audit add up to (see the module doc); ``oldest`` and ``largest``
    are rows (None when no row had a date, or a size)."""

    repositories: int
    tags: int
    images: int
    total_size: int
    unique_size: int
    unsigned: int
    without_sbom: int
    oldest: AuditRow | None
    largest: AuditRow | None

    @classmethod
    def of(cls, rows: Iterable[AuditRow]) -> AuditSummary:
        """The summary of ``rows``."""
        summariser = Summariser()
        for row in rows:
            summariser.add(row)
        return summariser.summary()

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON: ``oldest`` as its reference, ``created`` and ``age_days``,
        ``largest`` as its reference and ``size`` (or null)."""
        oldest = largest = None
        if self.oldest is not None:
            oldest = {
                "reference": self.oldest.reference,
                "created": format_created(self.oldest.created),
                "age_days": self.oldest.age_days,
            }
        if self.largest is not None:
            largest = {"reference": self.largest.reference, "size": self.largest.size}
        return {
            "repositories": self.repositories,
            "tags": self.tags,
            "images": self.images,
            "total_size": self.total_size,
            "unique_size": self.unique_size,
            "unsigned": self.unsigned,
            "without_sbom": self.without_sbom,
            "oldest": oldest,
            "largest": largest,
        }


class Summariser:
    """An `AuditSummary` of the rows added so far: ``add`` each, ``summary()`` at any time."""

    def __init__(self) -> None:
        self._repositories: set[str] = set()
        self._tags: set[tuple[str, str]] = set()
        self._images: dict[str, int] = {}  # manifest digest -> size
        self._blobs: dict[str, int] = {}  # blob digest -> size
        self._unsigned: set[tuple[str, str]] = set()
        self._without_sbom: set[tuple[str, str]] = set()
        self._oldest: AuditRow | None = None
        self._largest: AuditRow | None = None

    def add(self, row: AuditRow) -> None:
        self._repositories.add(row.repository)
        if row.tag is not None:
            tag = (row.repository, row.tag)
            self._tags.add(tag)
            if row.ok and not row.signed:
                self._unsigned.add(tag)
            if row.ok and not row.sbom:
                self._without_sbom.add(tag)
        image = row.manifest_digest or row.digest
        if image is not None and row.size is not None:
            self._images.setdefault(image, row.size)
        for digest, size in row.blobs:
            self._blobs.setdefault(digest, size)
        if row.created is not None and (
            self._oldest is None
            or self._oldest.created is None
            or row.created < self._oldest.created
        ):
            self._oldest = row
        if row.size is not None and (
            self._largest is None or self._largest.size is None or row.size > self._largest.size
        ):
            self._largest = row

    def summary(self) -> AuditSummary:
        return AuditSummary(
            repositories=len(self._repositories),
            tags=len(self._tags),
            images=len(self._images),
            total_size=sum(self._images.values()),
            unique_size=sum(self._blobs.values()),
            unsigned=len(self._unsigned),
            without_sbom=len(self._without_sbom),
            oldest=self._oldest,
            largest=self._largest,
        )
