"""Referrers as the tools that write them leave them, built as exact bytes and pushed.

Like ``content.py`` this is an oracle: it never imports ``aioregistry``. Distribution 2.8 has
no referrers API (``GET /v2/<name>/referrers/<digest>`` answers 404 ``404 page not found``)
but stores OCI manifests with ``subject`` and ``artifactType`` as sent (seen: it answers
201 and serves the same bytes). So, as oras and cosign 3 do on such a registry, each artifact
is pushed by digest and listed in the fallback index under the tag ``sha256-<hex>`` of its
subject; cosign 2's legacy tags (``sha256-<hex>.sig``, ``.att``, ``.sbom``) are pushed as
cosign 2 writes them (an OCI manifest with an image config and one payload layer).

`push_referrers` fills repository ``test/referrers`` (`REPOSITORY`) of a fresh registry:

* ``signed``: an SPDX SBOM (artifact type set), a sigstore bundle listed with the empty
  artifact type (as GHCR lists cosign bundles), a DSSE attestation listed with no artifact
  type at all, all in the fallback index; and cosign 2's ``.sig`` and ``.att`` tags;
* ``legacy``: only cosign 2's ``.sig`` and ``.sbom`` tags;
* ``plain``: nothing refers to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .content import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    PushedImage,
    PushedIndex,
    _Plan,
    apush_plan,
    run_in_thread,
    sha,
)
from .content import build_image as _build_image

if TYPE_CHECKING:
    from .registry import RegistryProcess

__all__ = [
    "BUNDLE",
    "COSIGN_SIMPLESIGNING",
    "DSSE",
    "EMPTY",
    "REPOSITORY",
    "SPDX",
    "Artifact",
    "ReferrersContent",
    "build_artifact",
    "build_cosign",
    "build_referrers",
    "fallback_index",
    "push_referrers",
]

REPOSITORY = "test/referrers"
EMPTY = "application/vnd.oci.empty.v1+json"
SPDX = "application/spdx+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
EMPTY_BLOB = b"{}"


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Artifact:
    """One referrer manifest: exact bytes, and the blobs it needs."""

    repository: str
    raw: bytes
    artifact_type: str | None  # what the manifest itself declares
    annotations: dict[str, str]
    blobs: dict[str, bytes] = field(default_factory=dict)
    media_type: str = OCI_MANIFEST

    @property
    def digest(self) -> str:
        return sha(self.raw)

    @property
    def size(self) -> int:
        return len(self.raw)


def build_artifact(
    subject: PushedImage | PushedIndex,
    *,
    artifact_type: str | None,
    layer_media_type: str,
    payload: bytes,
    config_media_type: str = EMPTY,
    annotations: dict[str, str] | None = None,
) -> Artifact:
    """An OCI 1.1 artifact manifest (oras attach, cosign 3) whose ``subject`` is ``subject``."""
    config = EMPTY_BLOB if config_media_type == EMPTY else _compact({"payload": payload.hex()})
    notes = annotations or {"org.opencontainers.image.created": "2024-05-01T12:00:00Z"}
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if artifact_type is not None:
        manifest["artifactType"] = artifact_type
    manifest["config"] = {
        "mediaType": config_media_type,
        "digest": sha(config),
        "size": len(config),
    }
    manifest["layers"] = [
        {"mediaType": layer_media_type, "digest": sha(payload), "size": len(payload)}
    ]
    manifest["subject"] = {
        "mediaType": subject.media_type,
        "digest": subject.digest,
        "size": subject.size,
    }
    manifest["annotations"] = notes
    return Artifact(
        subject.repository,
        _compact(manifest),
        artifact_type,
        notes,
        {sha(config): config, sha(payload): payload},
    )


def build_cosign(subject: PushedImage | PushedIndex, suffix: str) -> tuple[str, Artifact]:
    """cosign 2's legacy tag ``sha256-<hex>.<suffix>`` of ``subject`` and what it tags: an OCI
    manifest with a small image config and one layer of the payload (``sig``: simplesigning;
    ``att``: a DSSE envelope; ``sbom``: SPDX)."""
    layer_type = {"sig": COSIGN_SIMPLESIGNING, "att": DSSE, "sbom": SPDX}[suffix]
    payload = _compact(
        {"critical": {"image": {"docker-manifest-digest": subject.digest}}, "s": suffix}
    )
    config = _compact(
        {"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": [sha(payload)]}}
    )
    layer: dict[str, Any] = {"mediaType": layer_type, "digest": sha(payload), "size": len(payload)}
    if suffix == "sig":
        layer["annotations"] = {"dev.cosignproject.cosign/signature": "MEUCIQD-fake"}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [layer],
    }
    tag = f"{subject.digest.replace(':', '-')}.{suffix}"
    artifact = Artifact(
        subject.repository,
        _compact(manifest),
        None,
        {},
        {sha(config): config, sha(payload): payload},
    )
    return tag, artifact


def fallback_index(entries: list[tuple[Artifact, str | None]]) -> bytes:
    """The index oras writes under the subject's ``sha256-<hex>`` tag: one descriptor per
    artifact, with the artifact type given (None: the field left out)."""
    manifests = []
    for artifact, listed_type in entries:
        entry: dict[str, Any] = {
            "mediaType": artifact.media_type,
            "digest": artifact.digest,
            "size": artifact.size,
        }
        if listed_type is not None:
            entry["artifactType"] = listed_type
        entry["annotations"] = artifact.annotations
        manifests.append(entry)
    return _compact({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})


@dataclass(frozen=True)
class ReferrersContent:
    """What `push_referrers` pushed: subjects by tag, and their referrers by kind."""

    images: dict[str, PushedImage]  # "signed", "legacy", "plain"
    sbom: Artifact
    bundle: Artifact
    attestation: Artifact
    cosign: dict[str, Artifact]  # legacy tag -> what it tags
    index_raw: bytes  # the fallback index of "signed"

    @property
    def tags(self) -> list[str]:
        return sorted([*self.images, *self.cosign, self.images["signed"].digest.replace(":", "-")])


def build_referrers() -> tuple[ReferrersContent, _Plan]:
    images = {
        name: _build_image(REPOSITORY, name, "linux/amd64", oci=True)
        for name in ("signed", "legacy", "plain")
    }
    signed = images["signed"]
    sbom = build_artifact(
        signed, artifact_type=SPDX, layer_media_type=SPDX, payload=b'{"spdxVersion":"SPDX-2.3"}'
    )
    bundle = build_artifact(
        signed, artifact_type=BUNDLE, layer_media_type=BUNDLE, payload=b'{"mediaType":"bundle"}'
    )
    attestation = build_artifact(
        signed,
        artifact_type=None,
        layer_media_type=DSSE,
        payload=b'{"payloadType":"application/vnd.in-toto+json"}',
    )
    index_raw = fallback_index([(sbom, SPDX), (bundle, EMPTY), (attestation, None)])
    cosign = dict(
        [
            build_cosign(signed, "sig"),
            build_cosign(signed, "att"),
            build_cosign(images["legacy"], "sig"),
            build_cosign(images["legacy"], "sbom"),
        ]
    )
    plan = _Plan()
    for image in images.values():
        plan.add_image(image)
        plan.put_tag(image, next(n for n, i in images.items() if i is image))
    blobs = plan.blobs.setdefault(REPOSITORY, {})
    for artifact in (sbom, bundle, attestation, *cosign.values()):
        blobs.update(artifact.blobs)
    # Stage 0 by digest (the index lists them), stage 1 the tags.
    for artifact in (sbom, bundle, attestation):
        plan.stages[0].append((REPOSITORY, artifact.digest, artifact.media_type, artifact.raw))
    plan.stages[1].append((REPOSITORY, signed.digest.replace(":", "-"), OCI_INDEX, index_raw))
    for tag, artifact in cosign.items():
        plan.stages[1].append((REPOSITORY, tag, artifact.media_type, artifact.raw))
    content = ReferrersContent(images, sbom, bundle, attestation, cosign, index_raw)
    return content, plan


def push_referrers(registry: RegistryProcess) -> ReferrersContent:
    """Build the referrers content and push it to ``registry`` (from synchronous code)."""
    content, plan = build_referrers()
    run_in_thread(lambda: apush_plan(registry, plan), "referrers-pusher")
    return content
