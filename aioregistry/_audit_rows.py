"""What an audit answers for one tag and platform: an `AuditRow`, built from a `ScanResult`.

A row is a scan result (``scan(what="config", referrers=True)``) read for the questions bulk
audits ask: when the image was built (its config's ``created``) and how many days ago, how
big it is (the compressed bytes of its config and layers, from the manifest: what a pull
downloads), its layers, every platform the tag offers, the repository's other tags on the
same digest, and whether anything signs it, describes it (an SBOM) or attests to it (its
referrers, cosign 2's legacy tags among them). The config and layer descriptors are kept
(``blobs``) so that a summary can count the bytes of blobs shared between images once;
they are not part of the row's JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ._artifacts import Referrer
from ._scan_results import ScanError, ScanResult

__all__ = ["AuditRow", "build_row", "format_created", "parse_created"]

# RFC 3339 as image configs write it: a fraction of any length (Go writes nanoseconds),
# "Z" or an offset. Python 3.10's fromisoformat takes neither "Z" nor nine digits.
_RFC3339 = re.compile(
    r"(?P<base>\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d\d:\d\d)"
)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One tag (one platform of it), with the answers of an audit; ``error`` why not.

    ``created`` is the config's (aware, UTC), ``age_days`` the whole days from it to the
    audit's start; ``size`` is the config's and the layers' compressed bytes; ``platforms``
    every platform the tag offers (``os/arch[/variant]``, attestations left out);
    ``same_digest`` the other tags of the repository, among those audited, that point at
    the same digest. ``signed``, ``sbom`` and ``attestation`` say whether a referrer of
    that kind names the digest. Unknown values are None (a failed tag, a config without a
    date). ``blobs`` holds the (digest, size) of the config and of each layer.
    """

    reference: str
    repository: str
    tag: str | None
    digest: str | None = None
    platform: str | None = None
    platforms: tuple[str, ...] = ()
    created: datetime | None = None
    age_days: int | None = None
    size: int | None = None
    layers: int | None = None
    same_digest: tuple[str, ...] = ()
    signed: bool = False
    sbom: bool = False
    attestation: bool = False
    referrers: tuple[Referrer, ...] = ()
    error: ScanError | None = None
    manifest_digest: str | None = None
    blobs: tuple[tuple[str, int], ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The row as JSON: its answers, ``created`` in RFC 3339, ``referrers`` as
        `ScanResult.to_json` lists them and ``error`` as ``"Type: message"``."""
        return {
            "reference": self.reference,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "platform": self.platform,
            "platforms": list(self.platforms),
            "created": format_created(self.created),
            "age_days": self.age_days,
            "size": self.size,
            "layers": self.layers,
            "same_digest": list(self.same_digest),
            "signed": self.signed,
            "sbom": self.sbom,
            "attestation": self.attestation,
            "referrers": [referrer.descriptor() for referrer in self.referrers],
            "error": None if self.error is None else f"{self.error.type}: {self.error.message}",
        }


def parse_created(value: object) -> datetime | None:
    """A config's ``created`` as an aware datetime in UTC; None when absent or not RFC 3339."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        return None
    zone = match["zone"].upper()
    text = match["base"].replace(" ", "T").replace("t", "T")
    if match["fraction"]:
        text += "." + match["fraction"][:6].ljust(6, "0")
    try:
        parsed = datetime.fromisoformat(text + ("+00:00" if zone == "Z" else zone))
    except ValueError:  # a month 13, a day 32
        return None
    return parsed.astimezone(timezone.utc)


def format_created(created: datetime | None) -> str | None:
    """``created`` in RFC 3339 (UTC, ``Z``); None stays None."""
    if created is None:
        return None
    return created.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _age_days(created: datetime | None, now: datetime) -> int | None:
    if created is None:
        return None
    return math.floor((now - created) / timedelta(days=1))


def build_row(result: ScanResult, *, now: datetime, same_digest: Sequence[str] = ()) -> AuditRow:
    """The audit row of ``result`` at time ``now`` (aware), with the repository's other tags
    on its digest (``same_digest``)."""
    manifest, config = result.manifest, result.config
    created = parse_created(config.data.get("created")) if config is not None else None
    size = layers = None
    blobs: tuple[tuple[str, int], ...] = ()
    if manifest is not None:
        descriptors = (manifest.config, *manifest.layers)
        blobs = tuple((d.digest, d.size) for d in descriptors)
        size = sum(d.size for d in descriptors)
        layers = len(manifest.layers)
    referrers = result.referrers or ()
    kinds = {referrer.kind for referrer in referrers}
    return AuditRow(
        reference=result.reference,
        repository=result.repository,
        tag=result.tag,
        digest=result.digest,
        platform=result.platform,
        platforms=tuple(str(p) for p in result.platforms or ()),
        created=created,
        age_days=_age_days(created, now),
        size=size,
        layers=layers,
        same_digest=tuple(same_digest),
        signed="signature" in kinds,
        sbom="sbom" in kinds,
        attestation="attestation" in kinds,
        referrers=referrers,
        error=result.error,
        manifest_digest=result.manifest_digest,
        blobs=blobs,
    )
