"""Manifests: what a tag points to, and the image a platform resolves to.

This is the one place that decides how a tag becomes a digest and a multi-arch index becomes
an image; the client's methods and the scan both use it:

- `resolve_tag`: by ``HEAD`` (the digest from ``Docker-Content-Digest``; a registry that sends
  none costs a ``GET``, hashed) or by ``GET`` (the bytes decide);
- `platform_entries`: the index entry a platform picks (`ImageIndex.select`: containerd's best
  match, not the first, see ``_platforms``; attestations never chosen), or every image platform;
- `image_for`: an entry's manifest, which must be an image, not another index.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ._exceptions import InvalidContent
from ._models import Descriptor, ImageIndex, ImageManifest, Platform
from ._ratelimit import RateLimit, parse_rate_limit
from ._references import Reference
from ._session import Session

__all__ = [
    "Fetch",
    "get_digest",
    "get_manifest",
    "get_rate_limit",
    "image_for",
    "platform_entries",
    "resolve_tag",
]

Fetch = Callable[[Reference], Awaitable[ImageManifest | ImageIndex]]


async def resolve_tag(
    session: Session, ref: Reference, scope: str, *, head: bool
) -> tuple[str, str | None, ImageManifest | ImageIndex | None]:
    """What ``ref`` points to: its digest, media type and, when it was fetched, the manifest.

    With ``head`` one ``HEAD`` (the manifest is then None), falling back to a ``GET`` when the
    registry sends no digest; without, one ``GET``.
    """
    if head:
        digest, media_type = await session.manifest_digest(ref, scope)
        if digest is not None:
            return digest, media_type, None
    fetched = await session.get_manifest(ref, scope)
    return fetched.digest, fetched.media_type, fetched


def platform_entries(
    index: ImageIndex, ref: Reference, platform: Platform | None
) -> list[Descriptor]:
    """The entry of ``index`` that ``platform`` picks, or with None every image platform's."""
    if platform is not None:
        return [index.select(platform)]
    entries = [d for d in index.manifests if d.platform is not None and not d.platform.is_unknown]
    if not entries:
        raise InvalidContent(f"index {index.digest} of {ref} lists no image platforms")
    return entries


async def image_for(ref: Reference, entry: Descriptor, fetch: Fetch) -> ImageManifest:
    """The image manifest that index entry ``entry`` of ``ref`` names, by ``fetch``."""
    child = await fetch(ref.with_digest(entry.digest))
    if not isinstance(child, ImageManifest):
        raise InvalidContent(f"index entry {entry.digest} of {ref} is another index")
    return child


async def get_manifest(
    session: Session,
    ref: Reference,
    scope: str,
    platform: Platform,
    *,
    by_digest: Fetch | None = None,
) -> ImageManifest:
    """The image manifest of ``ref``; a multi-arch tag resolves to ``platform``, whose
    manifest comes from ``by_digest`` (a content store) when given. ``ref`` itself is
    fetched: with a tag, what it points to is asked every time."""
    fetch: Fetch = by_digest or (lambda child: session.get_manifest(child, scope))
    fetched = await (fetch(ref) if ref.digest is not None else session.get_manifest(ref, scope))
    if isinstance(fetched, ImageManifest):
        return fetched
    (entry,) = platform_entries(fetched, ref, platform)
    return await image_for(ref, entry, fetch)


async def get_digest(
    session: Session, ref: Reference, scope: str, platform: Platform | None
) -> str:
    """What ``ref`` points to, or with ``platform`` that platform's manifest digest."""
    if platform is None:
        digest, _, _ = await resolve_tag(session, ref, scope, head=True)
        return digest
    fetched = await session.get_manifest(ref, scope)
    if isinstance(fetched, ImageIndex):
        return fetched.select(platform).digest
    return fetched.digest


async def get_rate_limit(session: Session, ref: Reference, scope: str) -> RateLimit:
    """The pull limit announced on one manifest ``HEAD`` of ``ref``."""
    resp = await session.head_manifest(ref, scope, what=f"rate limit of {ref}")
    return parse_rate_limit(resp.headers)
