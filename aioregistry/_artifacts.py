"""Referrers as values: what names an image as its ``subject``, and what kind of thing it is.

A `Referrer` is one descriptor of the referrers list (OCI distribution-spec 1.1): the
manifest's media type, digest and size, its ``artifactType`` and annotations, with the
`ReferrerKind` that `referrer_kind` reads from its media types (signature, SBOM,
attestation, other) and where it was found (`ReferrerSource`). `referrers_tag` is the
spec's fallback tag of a subject digest, and `cosign_tag_kind` tells cosign 2's legacy
``sha256-<hex>.sig`` / ``.att`` / ``.sbom`` tags of a digest from other tags;
`is_referrer_tag` tells any such bookkeeping tag (of whatever digest) from an image's tag,
which a scan skips. No I/O here: `_referrers` does the requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "COSIGN_SUFFIXES",
    "EMPTY_MEDIA_TYPE",
    "Referrer",
    "ReferrerKind",
    "ReferrerSource",
    "cosign_tag_kind",
    "is_referrer_tag",
    "referrer_kind",
    "referrers_tag",
]

ReferrerKind = Literal["signature", "sbom", "attestation", "other"]
# "api": the registry's referrers API; "tag-schema": the fallback index under `referrers_tag`;
# "cosign-tag": a cosign 2 legacy tag (sha256-<hex>.sig, .att, .sbom).
ReferrerSource = Literal["api", "tag-schema", "cosign-tag"]

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
COSIGN_SUFFIXES: Mapping[str, ReferrerKind] = {
    ".sig": "signature",
    ".att": "attestation",
    ".sbom": "sbom",
}

_SIGNATURE_TYPES = frozenset(
    {
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "application/vnd.cncf.notary.signature",
    }
)
_SIGSTORE_BUNDLE = re.compile(r"application/vnd\.dev\.sigstore\.bundle(\.v0\.[0-9]+)?\+json")
_SBOM_TYPES = frozenset({"application/spdx+json", "application/vnd.cyclonedx+json"})
_SBOM_PREFIXES = ("text/spdx", "application/vnd.cyclonedx+", "application/vnd.cyclonedx.")
_ATTESTATION_TYPES = frozenset(
    {"application/vnd.in-toto+json", "application/vnd.dsse.envelope.v1+json"}
)
# Characters a tag may hold; the rest become "-" (distribution-spec, referrers tag schema).
_NOT_TAG = re.compile(r"[^a-zA-Z0-9._-]")


@dataclass(frozen=True, slots=True)
class Referrer:
    """One manifest that names a subject: its descriptor, its kind and where it was found.

    ``artifact_type`` is None where nothing said it (a cosign legacy tag that was only
    ``HEAD``-ed). ``tag`` is the cosign legacy tag it was found under, else None.
    """

    media_type: str
    digest: str
    size: int
    artifact_type: str | None
    kind: ReferrerKind
    source: ReferrerSource
    annotations: Mapping[str, str] = field(default_factory=dict)
    tag: str | None = None

    def descriptor(self) -> dict[str, Any]:
        """The referrer as the referrers API lists it (``mediaType``, ``digest``, ``size``,
        ``artifactType``, ``annotations``), with aioregistry's ``kind`` beside them."""
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
            "artifactType": self.artifact_type,
            "annotations": dict(self.annotations),
            "kind": self.kind,
        }


def referrer_kind(*media_types: str | None) -> ReferrerKind:
    """The kind the first telling media type says (an artifact type, then a config's, then
    layers'): cosign simplesigning, sigstore bundles (any v0.x) and notation signatures are
    signatures; SPDX and CycloneDX are SBOMs; in-toto statements and DSSE envelopes are
    attestations. Parameters (``; charset=...``) and case do not matter; None and the empty
    media type say nothing; nothing telling at all is ``other``."""
    for media_type in media_types:
        if not media_type:
            continue
        kind = _kind_of(media_type.partition(";")[0].strip().lower())
        if kind is not None:
            return kind
    return "other"


def _kind_of(media_type: str) -> ReferrerKind | None:
    if media_type in _SIGNATURE_TYPES or _SIGSTORE_BUNDLE.fullmatch(media_type):
        return "signature"
    if media_type in _SBOM_TYPES or media_type.startswith(_SBOM_PREFIXES):
        return "sbom"
    if media_type in _ATTESTATION_TYPES:
        return "attestation"
    return None


def referrers_tag(digest: str) -> str:
    """The tag under which a registry without the referrers API keeps ``digest``'s referrers:
    ``<alg>-<encoded>``, the algorithm cut to 32 characters and the encoded part to 64, every
    character a tag cannot hold replaced by ``-`` (distribution-spec 1.1, referrers tag
    schema). ``sha256:abc...`` gives ``sha256-abc...``."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep or not algorithm or not encoded:
        raise ValueError(f"not a digest: {digest!r}")
    return f"{_NOT_TAG.sub('-', algorithm[:32])}-{_NOT_TAG.sub('-', encoded[:64])}"


def cosign_tag_kind(tag: str, digest: str) -> ReferrerKind | None:
    """What cosign 2's legacy tag ``tag`` holds for ``digest`` (``sha256-<hex>.sig`` a
    signature, ``.att`` an attestation, ``.sbom`` an SBOM); None for any other tag."""
    algorithm, _, encoded = digest.partition(":")
    stem, dot, suffix = tag.rpartition(".")
    if not dot or stem != f"{algorithm}-{encoded}":
        return None
    return COSIGN_SUFFIXES.get(f".{suffix}")


# A fallback tag made by `referrers_tag` of a registered digest algorithm (image-spec
# descriptor.md: each encodes lower-case hex of 64 characters or more, cut to 64 there), and
# cosign 2's legacy tags, which are of sha256 digests. Exact, so that an ordinary tag that
# merely looks alike (``sha256-abc``, ``sha256-<64 hex>-extra``, ``v1.0-sha256``) stays an image.
_REFERRER_TAG = re.compile(
    r"(?:sha256|sha512|blake3)-[0-9a-f]{64}"
    rf"|sha256-[0-9a-f]{{64}}(?:{'|'.join(re.escape(s) for s in COSIGN_SUFFIXES)})"
)


def is_referrer_tag(tag: str) -> bool:
    """Whether ``tag`` is referrer bookkeeping rather than an image's tag: the fallback tag
    of a digest (``sha256-<64 hex>``, `referrers_tag`) or a cosign legacy tag
    (``sha256-<64 hex>.sig``, ``.att``, ``.sbom``). In a signed repository these are most of
    the tag list; a scan leaves them out unless asked."""
    return _REFERRER_TAG.fullmatch(tag) is not None
