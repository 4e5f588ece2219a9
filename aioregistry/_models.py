"""Typed, immutable views over what a registry serves: manifests, indexes, configs.

Every object keeps the exact bytes the registry sent (``raw``) and their digest beside the
parsed view, so a caller can re-serve, re-hash or diff them; parsing never reorders or
re-encodes the bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import orjson

from ._exceptions import (
    DigestMismatch,
    InvalidContent,
    InvalidPlatform,
    NoMatchingPlatform,
    RegistryError,
    UnsupportedMediaType,
)
from ._media import (
    DOCKER_PLUGIN_CONFIG,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1_MEDIA_TYPES,
)
from ._platforms import PlatformMatcher

__all__ = [
    "DEFAULT_PLATFORM",
    "ConfigBlob",
    "Descriptor",
    "ImageIndex",
    "ImageManifest",
    "Platform",
    "as_platform",
    "compute_digest",
    "load_object",
    "parse_manifest",
    "refuse_schema1",
    "verify_digest",
]

_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_SCHEMA1_HINT = re.compile(rb'"schemaVersion"\s*:\s*1(?![0-9.eE])')
_PLATFORM_PART = re.compile(r"[A-Za-z0-9_.+-]+")
# Aliases the Go toolchain never uses but people type (uname -m spellings).
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm"}


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """The ``algorithm:hex`` digest of ``data``."""
    try:
        hasher = _HASHES[algorithm]
    except KeyError:
        raise UnsupportedMediaType(
            f"unsupported digest algorithm {algorithm!r}", media_type=algorithm
        ) from None
    return f"{algorithm}:{hasher(data).hexdigest()}"


def verify_digest(data: bytes, expected: str, *, what: str) -> str:
    """Return ``expected`` if ``data`` hashes to it, else raise `DigestMismatch`."""
    algorithm = expected.partition(":")[0]
    actual = compute_digest(data, algorithm)
    if actual != expected:
        raise DigestMismatch(
            f"{what}: content hashes to {actual}, expected {expected}",
            expected=expected,
            actual=actual,
        )
    return expected


@dataclass(frozen=True, slots=True)
class Platform:
    """An ``os/architecture[/variant]`` pair as found in indexes and configs."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]``, e.g. ``linux/arm/v7``."""
        parts = text.split("/")
        if not 2 <= len(parts) <= 3 or not all(_PLATFORM_PART.fullmatch(p) for p in parts):
            raise InvalidPlatform(
                f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64"
            )
        os_, arch = parts[0].lower(), parts[1].lower()
        arch = _ARCH_ALIASES.get(arch, arch)
        return cls(os_, arch, parts[2].lower() if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, data: object) -> Platform | None:
        if not isinstance(data, dict):
            return None
        os_, arch = data.get("os"), data.get("architecture")
        if not isinstance(os_, str) or not isinstance(arch, str):
            return None
        variant = data.get("variant")
        os_version = data.get("os.version")
        features = data.get("os.features")
        return cls(
            os_,
            arch,
            variant if isinstance(variant, str) and variant else None,
            os_version if isinstance(os_version, str) else None,
            tuple(f for f in features if isinstance(f, str)) if isinstance(features, list) else (),
        )

    @property
    def is_unknown(self) -> bool:
        """Attestation manifests carry ``unknown/unknown``: they are not images."""
        return self.os == "unknown" or self.architecture == "unknown"

    def matches(self, wanted: Platform) -> bool:
        """Whether this (offered) platform can serve ``wanted``, by containerd's ``Only``.

        ``linux/arm/v7`` accepts v7, v6 and v5 and an arm entry without a variant (v7);
        ``linux/arm64`` accepts arm64 with or without ``v8`` (and 32-bit arm). The rule, and
        how the best of several matches is chosen, is in ``_platforms``.
        """
        return self._rank(wanted) is not None

    def _rank(self, wanted: Platform) -> tuple[int, int, int] | None:
        if self.is_unknown:
            return None
        matcher = PlatformMatcher(
            wanted.os, wanted.architecture, wanted.variant, wanted.os_version, wanted.os_features
        )
        return matcher.rank(
            self.os, self.architecture, self.variant, self.os_version, self.os_features
        )

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


DEFAULT_PLATFORM = Platform("linux", "amd64")  # what a multi-arch tag resolves to by default


def as_platform(platform: str | Platform) -> Platform:
    """``platform`` itself, or parsed from ``os/arch[/variant]``."""
    return Platform.parse(platform) if isinstance(platform, str) else platform


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A content descriptor: what a manifest or index says about another blob or manifest."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: object, *, where: str) -> Descriptor:
        if not isinstance(data, dict):
            raise InvalidContent(f"{where}: descriptor is not an object")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(digest, str) or ":" not in digest:
            raise InvalidContent(f"{where}: descriptor has no valid digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidContent(f"{where}: descriptor {digest} has no valid size")
        if not isinstance(media_type, str):
            media_type = ""
        annotations = data.get("annotations")
        urls = data.get("urls")
        artifact_type = data.get("artifactType")
        return cls(
            media_type,
            digest,
            size,
            Platform.from_json(data.get("platform")),
            {k: v for k, v in annotations.items() if isinstance(v, str)}
            if isinstance(annotations, dict)
            else {},
            artifact_type if isinstance(artifact_type, str) else None,
            tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
        )


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """A single-platform manifest (Docker v2 schema 2 or OCI image manifest)."""

    media_type: str
    digest: str
    raw: bytes = field(repr=False)
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_plugin(self) -> bool:
        return self.config.media_type == DOCKER_PLUGIN_CONFIG

    def json(self) -> dict[str, Any]:
        """The manifest as parsed JSON (a fresh dict each call)."""
        return load_object(self.raw, f"manifest {self.digest}")


@dataclass(frozen=True, slots=True)
class ImageIndex:
    """A multi-platform index (Docker manifest list or OCI image index)."""

    media_type: str
    digest: str
    raw: bytes = field(repr=False)
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def platforms(self) -> tuple[Platform, ...]:
        """The image platforms on offer, attestations left out."""
        return tuple(d.platform for d in self.manifests if d.platform and not d.platform.is_unknown)

    def select(self, platform: Platform | str) -> Descriptor:
        """The entry that serves ``platform`` best, as containerd chooses: not merely the first
        that matches (``linux/arm`` takes arm/v7 over v5 and v6 listed before it); attestation
        entries are never chosen."""
        wanted = as_platform(platform)
        ranked = [
            (rank, position, descriptor)
            for position, descriptor in enumerate(self.manifests)
            if descriptor.platform is not None
            and (rank := descriptor.platform._rank(wanted)) is not None
        ]
        if ranked:
            return min(ranked, key=lambda item: (item[0], item[1]))[2]
        available = tuple(str(p) for p in self.platforms)
        raise NoMatchingPlatform(
            f"no manifest for platform {wanted} in index {self.digest} "
            f"(available: {', '.join(available) or 'none'})",
            platform=str(wanted),
            available=available,
        )

    def json(self) -> dict[str, Any]:
        """The index as parsed JSON (a fresh dict each call)."""
        return load_object(self.raw, f"index {self.digest}")


@dataclass(frozen=True, slots=True)
class ConfigBlob:
    """An image config (or plugin config) blob, exactly as stored."""

    media_type: str
    digest: str
    raw: bytes = field(repr=False)
    data: Mapping[str, Any] = field(repr=False)

    @property
    def platform(self) -> Platform | None:
        """The config's own ``os/architecture[/variant]``; None for plugins."""
        return Platform.from_json(dict(self.data))

    @classmethod
    def parse(cls, raw: bytes, *, media_type: str, digest: str) -> ConfigBlob:
        data = load_object(raw, f"config {digest}")
        return cls(media_type, digest, raw, data)


def load_object(
    raw: bytes, where: str, *, error: type[RegistryError] = InvalidContent
) -> dict[str, Any]:
    """The JSON object ``raw`` holds; anything else raises ``error`` naming ``where``."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise error(f"{where} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise error(f"{where} does not hold a JSON object")
    return data


def refuse_schema1(raw: bytes | None, content_type: str | None, *, where: str) -> None:
    """Raise `UnsupportedMediaType` when a manifest is Docker schema 1, by its ``Content-Type``
    (``...manifest.v1+json``, ``v1+prettyjws``) or by ``"schemaVersion": 1`` in its body.

    Call it before checking a digest: a schema 1 manifest is signed and the registry signs it
    afresh on every ``GET``, so its bytes never hash the same twice, and a `DigestMismatch`
    would wrongly suggest tampering.
    """
    header_type = (content_type or "").partition(";")[0].strip().lower()
    if header_type in SCHEMA1_MEDIA_TYPES:
        _schema1(where, header_type)
    if raw and _SCHEMA1_HINT.search(raw):  # cheap, then sure: only the top level counts
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if isinstance(data, dict) and data.get("schemaVersion") == 1:
            _schema1(where, header_type or "schemaVersion 1")


def _schema1(where: str, what: str) -> NoReturn:
    raise UnsupportedMediaType(
        f"{where}: schema 1 is not supported ({what}: a signed Docker schema 1 manifest; "
        "push the image again with a current docker, buildah or skopeo)",
        media_type=what,
    )


def parse_manifest(
    raw: bytes, *, content_type: str | None, digest: str, where: str
) -> ImageManifest | ImageIndex:
    """Parse a manifest body. The type comes from ``mediaType`` in the body, else the header."""
    header_type = (content_type or "").partition(";")[0].strip().lower()
    refuse_schema1(None, header_type, where=where)
    data = load_object(raw, where)
    body_type = data.get("mediaType")
    media_type = body_type if isinstance(body_type, str) and body_type else header_type
    if not media_type:
        # An OCI manifest may omit mediaType; its shape says which one it is.
        if data.get("schemaVersion") == 1:
            media_type = next(iter(SCHEMA1_MEDIA_TYPES))
        elif "manifests" in data:
            media_type = OCI_INDEX
        elif "config" in data:
            media_type = OCI_MANIFEST
    if media_type in SCHEMA1_MEDIA_TYPES or data.get("schemaVersion") == 1:
        _schema1(where, media_type)
    annotations = data.get("annotations")
    notes = (
        {k: v for k, v in annotations.items() if isinstance(v, str)}
        if isinstance(annotations, dict)
        else {}
    )
    if media_type in INDEX_MEDIA_TYPES:
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise InvalidContent(f"{where}: index has no manifests list")
        manifests = tuple(Descriptor.from_json(e, where=where) for e in entries)
        return ImageIndex(media_type, digest, raw, manifests, notes)
    if media_type in MANIFEST_MEDIA_TYPES:
        config = Descriptor.from_json(data.get("config"), where=f"{where} config")
        layers_json = data.get("layers", [])
        if not isinstance(layers_json, list):
            raise InvalidContent(f"{where}: layers is not a list")
        layers = tuple(Descriptor.from_json(e, where=f"{where} layer") for e in layers_json)
        return ImageManifest(media_type, digest, raw, config, layers, notes)
    raise UnsupportedMediaType(
        f"{where}: unsupported manifest media type {media_type or '(none)'!r}",
        media_type=media_type,
    )
