"""What a scan yields: one `ScanResult` per tag (or per platform), and its `ScanStats`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._artifacts import Referrer
from ._models import ConfigBlob, ImageManifest, Platform
from ._ratelimit import RateLimit

__all__ = ["Resolve", "ScanError", "ScanResult", "ScanStats", "What", "is_image_reference"]

What = Literal["digest", "manifest", "config"]
Resolve = Literal["auto", "get", "head"]


@dataclass(frozen=True, slots=True)
class ScanError:
    """Why one tag (or one repository's listing) failed: the error's type name and message."""

    type: str
    message: str
    exception: BaseException = field(repr=False, compare=False)

    @classmethod
    def of(cls, exc: BaseException) -> ScanError:
        return cls(type(exc).__name__, str(exc), exc)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """One tag (one platform of it with ``platform="all"``), or the error that stopped it.

    ``digest`` is what the tag points to (an index's own digest for a multi-arch tag);
    ``manifest_digest`` the platform's image manifest. A result with ``tag`` None and an
    error means the repository itself could not be listed. ``platforms`` is every image
    platform the tag offers (an index's entries, attestations left out; a single image's
    from its config), None where the scan did not read it (a digest scan of an image).
    """

    reference: str
    repository: str
    tag: str | None
    digest: str | None = None
    media_type: str | None = None
    platform: str | None = None
    manifest_digest: str | None = None
    config_digest: str | None = None
    manifest: ImageManifest | None = field(default=None, repr=False)
    config: ConfigBlob | None = field(default=None, repr=False)
    error: ScanError | None = None
    referrers: tuple[Referrer, ...] | None = None
    platforms: tuple[Platform, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self, *, include_manifest: bool = True) -> dict[str, Any]:
        """A JSON-ready dict; ``manifest``, ``config`` and ``referrers`` (each as the
        referrers API lists it, with its ``kind``) only when they were fetched."""
        data: dict[str, Any] = {
            "reference": self.reference,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "media_type": self.media_type,
            "platform": self.platform,
            "manifest_digest": self.manifest_digest,
            "config_digest": self.config_digest,
        }
        if self.manifest is not None and include_manifest:
            data["manifest"] = self.manifest.json()
        if self.config is not None:
            data["config"] = dict(self.config.data)
        if self.referrers is not None:
            data["referrers"] = [referrer.descriptor() for referrer in self.referrers]
        data["error"] = (
            {"type": self.error.type, "message": self.error.message} if self.error else None
        )
        return data


@dataclass(frozen=True, slots=True)
class ScanStats:
    """What a scan did: results and errors yielded, HTTP requests by kind, tokens, bytes,
    retries, hedges (duplicates of late requests) and refusals (429 and 503 answers).

    ``concurrency`` maps each registry host to the most requests the scan had in flight to it
    (the adaptive limiter's peak); ``rate_limits`` the latest pull limit each host announced
    (Docker Hub), for the hosts that announced one. ``hidden_tags`` counts the listed tags
    left out as referrer bookkeeping (`is_referrer_tag`; ``include_digest_tags`` scans them).
    ``from_cache`` counts the manifests and configs read from the client's cache on disk
    instead of fetched, ``cache_dropped`` the entries there that no longer hashed to their
    digest (removed, and fetched anew).
    """

    results: int
    errors: int
    requests: Mapping[str, int]
    tokens_fetched: int
    bytes_received: int
    retries: int
    seconds: float
    hedges: int = 0
    refused: int = 0
    concurrency: Mapping[str, int] = field(default_factory=dict)
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    hidden_tags: int = 0
    from_cache: int = 0
    cache_dropped: int = 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def is_image_reference(text: str) -> bool:
    """Whether ``text`` names one image (a tag or digest given) rather than a repository."""
    return "@" in text or ":" in text.rsplit("/", 1)[-1]
