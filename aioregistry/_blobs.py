"""Blobs: configs (parsed) and other blobs (bytes), verified by digest and size."""

from __future__ import annotations

from ._models import ConfigBlob, Descriptor
from ._references import Repository
from ._session import Session

__all__ = ["CONFIG_LIMIT", "get_config"]

CONFIG_LIMIT = 64 * 1024 * 1024


async def get_config(
    session: Session, repo: Repository, scope: str, descriptor: Descriptor, *, urgent: bool = False
) -> ConfigBlob:
    """The config a manifest's ``config`` descriptor names, checked by digest and size."""
    raw = await session.get_blob(
        repo, scope, descriptor.digest, size=descriptor.size, max_size=CONFIG_LIMIT, urgent=urgent
    )
    return ConfigBlob.parse(raw, media_type=descriptor.media_type, digest=descriptor.digest)
