"""Which audit rows to keep, and in what order: `AuditFilter`, `sort_rows`, `parse_duration`.

The filters compose (a row must pass every one given): ``include`` / ``exclude`` are
regular expressions searched in the tag; ``older_than`` / ``newer_than`` compare the
image's ``created`` with the audit's start (``90d``, ``12h``, ``2w``: `parse_duration`);
``missing_platform`` keeps the tags whose platforms lack one (``linux/arm64``; spelt
``arm64/v8`` or ``aarch64`` it is the same platform, by containerd's normalisation, and a
32-bit ``arm`` image does not stand in for it); ``unsigned`` keeps the tags that no
signature names. A row whose tag failed has no answers to compare: the tag filters still
apply to it, the others let it through, so an audit never hides a failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ._audit_rows import AuditRow
from ._exceptions import InvalidPlatform, UsageError
from ._models import Platform, as_platform
from ._platforms import normalize

__all__ = ["SORT_KEYS", "AuditFilter", "SortKey", "parse_duration", "sort_rows"]

SortKey = Literal["created", "size", "tag"]
SORT_KEYS: tuple[SortKey, ...] = ("created", "size", "tag")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_DURATION = re.compile(r"([0-9]+)([hdw])")


def parse_duration(text: str | timedelta) -> timedelta:
    """``90d``, ``12h`` or ``2w`` as a timedelta (a timedelta is taken as it is)."""
    if isinstance(text, timedelta):
        return text
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise UsageError(
            f"invalid duration {text!r}: expected a whole number and a unit "
            "(h hours, d days, w weeks), e.g. 90d, 12h, 2w"
        )
    return int(match[1]) * _UNITS[match[2]]


def _pattern(text: str | None, what: str) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise UsageError(f"invalid {what} regular expression {text!r}: {exc}") from None


def _platform(platform: str | Platform | None) -> Platform | None:
    if platform is None:
        return None
    try:
        return as_platform(platform)
    except InvalidPlatform as exc:
        raise InvalidPlatform(f"invalid --missing-platform {platform!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """The rows an audit keeps (see the module doc); `build` checks and parses each part."""

    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None
    older_than: timedelta | None = None
    newer_than: timedelta | None = None
    missing_platform: Platform | None = None
    unsigned: bool = False

    @classmethod
    def build(
        cls,
        *,
        include: str | None = None,
        exclude: str | None = None,
        older_than: str | timedelta | None = None,
        newer_than: str | timedelta | None = None,
        missing_platform: str | Platform | None = None,
        unsigned: bool = False,
    ) -> AuditFilter:
        """A filter from what a caller gives (strings as the command line takes them);
        a bad part raises `UsageError` naming it."""
        return cls(
            include=_pattern(include, "--include"),
            exclude=_pattern(exclude, "--exclude"),
            older_than=None if older_than is None else parse_duration(older_than),
            newer_than=None if newer_than is None else parse_duration(newer_than),
            missing_platform=_platform(missing_platform),
            unsigned=unsigned,
        )

    def keeps(self, row: AuditRow, now: datetime) -> bool:
        """Whether ``row`` passes every filter, at the audit's start ``now``."""
        return self._keeps_tag(row.tag) and (not row.ok or self._keeps_answers(row, now))

    def _keeps_tag(self, tag: str | None) -> bool:
        if tag is None:
            return True
        if self.include is not None and self.include.search(tag) is None:
            return False
        return self.exclude is None or self.exclude.search(tag) is None

    def _keeps_answers(self, row: AuditRow, now: datetime) -> bool:
        created = row.created
        if self.older_than is not None and (created is None or created > now - self.older_than):
            return False
        if self.newer_than is not None and (created is None or created < now - self.newer_than):
            return False
        if self.missing_platform is not None and _offers(row.platforms, self.missing_platform):
            return False
        return not (self.unsigned and row.signed)


def _offers(platforms: Sequence[str], wanted: Platform) -> bool:
    key = normalize(wanted.os, wanted.architecture, wanted.variant)
    for text in platforms:
        os, _, rest = text.partition("/")
        architecture, _, variant = rest.partition("/")
        if normalize(os, architecture, variant or None) == key:
            return True
    return False


def sort_rows(rows: Iterable[AuditRow], key: SortKey, *, reverse: bool = False) -> list[AuditRow]:
    """``rows`` by ``created`` (oldest first), ``size`` (smallest first) or ``tag``
    (repository, tag, platform); ``reverse`` turns the order round. Rows without the value
    (a failed tag) come last either way."""
    if key not in SORT_KEYS:
        raise UsageError(f"invalid sort key {key!r}: expected one of {', '.join(SORT_KEYS)}")
    rows = list(rows)
    if key == "tag":
        return sorted(
            rows, key=lambda r: (r.repository, r.tag or "", r.platform or ""), reverse=reverse
        )
    known = [r for r in rows if getattr(r, key) is not None]
    unknown = [r for r in rows if getattr(r, key) is None]
    return [*sorted(known, key=lambda r: getattr(r, key), reverse=reverse), *unknown]
