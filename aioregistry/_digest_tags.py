"""Tags that are referrer bookkeeping, not images: `is_referrer_tag`.

Registries without the OCI referrers API keep an image's referrers (signatures, SBOMs,
attestations) under tags named after its digest. The distribution spec's fallback tag
("referrers tag schema") is ``<alg>-<ref>``: the digest's algorithm cut to 32 characters, the
encoded part cut to 64, every character a tag cannot hold replaced by ``-``; it tags an OCI
index of the referrers. cosign 2 writes its own legacy tags, ``sha256-<hex>.sig``, ``.att``
and ``.sbom``, each tagging one artifact manifest. In a signed repository these are most of
the tag list, and a scan that treats them as images wastes requests on them.

The match is exact, so that an ordinary tag that merely looks alike (``sha256-abc``,
``sha256-<64 hex>-extra``, ``v1.0-sha256``) stays an image: only the registered algorithms
with a fixed length of lower-case hex (sha256, sha512 cut to 64, blake3) make a fallback tag.
"""

from __future__ import annotations

import re

__all__ = ["is_referrer_tag"]

# The registered digest algorithms (image-spec descriptor.md) all encode lower-case hex of 64
# characters or more, which the fallback tag cuts to 64.
_FALLBACK = r"(?:sha256|sha512|blake3)-[0-9a-f]{64}"
# cosign 2's legacy tags are of sha256 digests (its `ociremote` writes `sha256-<hex>.<suffix>`).
_COSIGN = r"sha256-[0-9a-f]{64}\.(?:sig|att|sbom)"
_REFERRER_TAG = re.compile(rf"(?:{_FALLBACK}|{_COSIGN})")


def is_referrer_tag(tag: str) -> bool:
    """Whether ``tag`` is referrer bookkeeping: the spec's fallback tag of a digest
    (``sha256-<64 hex>``) or a cosign legacy tag (``sha256-<64 hex>.sig``, ``.att``,
    ``.sbom``), rather than an image's tag."""
    return _REFERRER_TAG.fullmatch(tag) is not None
