"""What an audit is checked against: repository ``test/audit`` (`REPOSITORY`) of a fresh
registry, with images of known dates, sizes and platforms, and their referrers.

Like ``content.py`` this is an oracle: it never imports ``aioregistry``. `push_audit` fills it
(distribution 2.8: no referrers API, so the referrers are in fallback indexes and cosign 2's
legacy tags, as ``referrers.py`` pushes them):

* ``v1.0`` and ``stable``: one Docker image (linux/amd64), built 2020-01-01, two layers, one
  of them (``base``) shared with ``v2.0``'s amd64 image; cosign 2's ``.sig`` and ``.att`` tags;
* ``v2.0``: an OCI index of linux/amd64 and linux/arm64 and a buildkit attestation entry
  (unknown/unknown, not a platform), built 2024-05-01 at a nanosecond fraction; a notation
  signature and an SPDX SBOM in its fallback index;
* ``v3.0``: an OCI index of linux/amd64 only, built ten days before the push, the largest
  image; a sigstore bundle and a DSSE attestation in its fallback index;
* ``edge``: a Docker image of linux/arm64 only, built two hours before the push; nothing
  refers to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .content import (
    OCI_INDEX,
    PushedImage,
    PushedIndex,
    _image,
    _Plan,
    apush_plan,
    build_attestation,
    build_index,
    build_layer,
    run_in_thread,
)
from .referrers import (
    BUNDLE,
    DSSE,
    SPDX,
    Artifact,
    build_artifact,
    build_cosign,
    fallback_index,
)

if TYPE_CHECKING:
    from .registry import RegistryProcess

__all__ = [
    "NOTATION",
    "REPOSITORY",
    "AuditContent",
    "answers",
    "build_audit",
    "days_since",
    "push_audit",
]

REPOSITORY = "test/audit"
NOTATION = "application/vnd.cncf.notary.signature"
OLD_CREATED = "2020-01-01T00:00:00Z"
MULTI_CREATED = "2024-05-01T12:00:00.123456789Z"
MULTI_CREATED_PARSED = "2024-05-01T12:00:00.123456Z"  # to the microsecond, as Python keeps it


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class AuditContent:
    """What `push_audit` pushed: what each tag points at, each image's config date, the
    referrers of each subject (by digest) and the push's time."""

    tags: dict[str, PushedImage | PushedIndex]
    created: dict[str, str]  # image manifest digest -> its config's created
    referrers: dict[str, list[tuple[Artifact, str]]]  # subject digest -> (artifact, kind)
    pushed_at: datetime

    def image(self, tag: str, platform: str = "linux/amd64") -> PushedImage:
        """The image ``tag`` gives ``platform`` (a single image whatever its platform)."""
        item = self.tags[tag]
        return item.child(platform) if isinstance(item, PushedIndex) else item

    @staticmethod
    def size(image: PushedImage) -> int:
        """Compressed bytes of ``image``: its config and layers, as its manifest says."""
        return len(image.config_raw) + sum(layer.size for layer in image.layers)

    def expected(self, tag: str, platform: str, now: datetime) -> dict[str, Any]:
        """What an audit at ``now`` answers for ``tag`` on ``platform``, as `answers` has a
        row's JSON."""
        item = self.tags[tag]
        image = self.image(tag, platform)
        offered = (
            [c.platform for c in item.children if c.platform != "unknown/unknown"]
            if isinstance(item, PushedIndex)
            else [item.platform]
        )
        referrers = self.referrers.get(item.digest, [])
        kinds = {kind for _, kind in referrers}
        created = self.created[image.digest]
        return {
            "tag": tag,
            "digest": item.digest,
            "platform": platform,
            "platforms": offered,
            "created": created,
            "age_days": days_since(created, now),
            "size": self.size(image),
            "layers": len(image.layers),
            "same_digest": sorted(
                t for t, other in self.tags.items() if other is item and t != tag
            ),
            "signed": "signature" in kinds,
            "sbom": "sbom" in kinds,
            "attestation": "attestation" in kinds,
            "referrers": {artifact.digest: kind for artifact, kind in referrers},
            "error": None,
        }

    @staticmethod
    def blobs(image: PushedImage) -> dict[str, int]:
        return {
            image.config_digest: len(image.config_raw),
            **{layer.digest: layer.size for layer in image.layers},
        }


def days_since(created: str, now: datetime) -> int:
    """Whole days from ``created`` (RFC 3339, at most microseconds) to ``now``."""
    moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    return math.floor((now - moment) / timedelta(days=1))


def answers(row: dict[str, Any]) -> dict[str, Any]:
    """A row's JSON as `AuditContent.expected` has it: ``referrers`` as digest -> kind, and
    without the reference and repository (the registry's address)."""
    data = {k: v for k, v in row.items() if k not in ("reference", "repository")}
    data["referrers"] = {r["digest"]: r["kind"] for r in row["referrers"]}
    return data


def build_audit(now: datetime | None = None) -> tuple[AuditContent, _Plan]:
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    recent = _rfc3339(now - timedelta(days=10))
    fresh = _rfc3339(now - timedelta(hours=2))
    base = build_layer(f"{REPOSITORY}:base", 4096)
    old = _image(
        REPOSITORY,
        "old",
        "linux/amd64",
        layers=(base, build_layer(f"{REPOSITORY}:old", 2048)),
        created=OLD_CREATED,
    )
    multi_amd64 = _image(
        REPOSITORY,
        "multi-amd64",
        "linux/amd64",
        oci=True,
        layers=(base, build_layer(f"{REPOSITORY}:multi-amd64", 8192, oci=True)),
        created=MULTI_CREATED,
    )
    multi_arm64 = _image(
        REPOSITORY,
        "multi-arm64",
        "linux/arm64",
        oci=True,
        layer_sizes=(3000,),
        created=MULTI_CREATED,
    )
    attestation = build_attestation(REPOSITORY, multi_amd64)
    multi = build_index(REPOSITORY, OCI_INDEX, (multi_amd64, multi_arm64, attestation))
    only = _image(
        REPOSITORY,
        "amd64-only",
        "linux/amd64",
        oci=True,
        layer_sizes=(64 * 1024, 32 * 1024, 1000),
        created=recent,
    )
    only_index = build_index(REPOSITORY, OCI_INDEX, (only,))
    edge = _image(REPOSITORY, "edge", "linux/arm64", layer_sizes=(5000,), created=fresh)
    tags: dict[str, PushedImage | PushedIndex] = {
        "v1.0": old,
        "stable": old,
        "v2.0": multi,
        "v3.0": only_index,
        "edge": edge,
    }
    created = {
        old.digest: OLD_CREATED,
        multi_amd64.digest: MULTI_CREATED_PARSED,
        multi_arm64.digest: MULTI_CREATED_PARSED,
        only.digest: recent,
        edge.digest: fresh,
    }

    notation = build_artifact(
        multi,
        artifact_type=NOTATION,
        layer_media_type="application/jose+json",
        payload=b'{"payload":"notation"}',
    )
    sbom = build_artifact(
        multi, artifact_type=SPDX, layer_media_type=SPDX, payload=b'{"spdxVersion":"SPDX-2.3"}'
    )
    bundle = build_artifact(
        only_index, artifact_type=BUNDLE, layer_media_type=BUNDLE, payload=b'{"bundle":"v3"}'
    )
    dsse = build_artifact(
        only_index, artifact_type=DSSE, layer_media_type=DSSE, payload=b'{"payloadType":"x"}'
    )
    cosign = dict([build_cosign(old, "sig"), build_cosign(old, "att")])
    referrers: dict[str, list[tuple[Artifact, str]]] = {
        multi.digest: [(notation, "signature"), (sbom, "sbom")],
        only_index.digest: [(bundle, "signature"), (dsse, "attestation")],
        old.digest: [
            (cosign[f"{old.digest.replace(':', '-')}.sig"], "signature"),
            (cosign[f"{old.digest.replace(':', '-')}.att"], "attestation"),
        ],
    }

    plan = _Plan()
    for image in (old, multi_amd64, multi_arm64, attestation, only, edge):
        plan.add_image(image)
    for child in (multi_amd64, multi_arm64, attestation, only):
        plan.put_child(child)
    for tag, item in tags.items():
        plan.put_tag(item, tag)
    blobs = plan.blobs.setdefault(REPOSITORY, {})
    for artifact in (notation, sbom, bundle, dsse, *cosign.values()):
        blobs.update(artifact.blobs)
    for artifact in (notation, sbom, bundle, dsse):
        plan.stages[0].append((REPOSITORY, artifact.digest, artifact.media_type, artifact.raw))
    for subject, listed in ((multi, (notation, sbom)), (only_index, (bundle, dsse))):
        index = fallback_index([(a, a.artifact_type) for a in listed])
        plan.stages[1].append((REPOSITORY, subject.digest.replace(":", "-"), OCI_INDEX, index))
    for tag, artifact in cosign.items():
        plan.stages[1].append((REPOSITORY, tag, artifact.media_type, artifact.raw))
    return AuditContent(tags, created, referrers, now), plan


def push_audit(registry: RegistryProcess) -> AuditContent:
    """Build the audit content and push it to ``registry`` (from synchronous code)."""
    content, plan = build_audit()
    run_in_thread(lambda: apush_plan(registry, plan), "audit-pusher")
    return content
