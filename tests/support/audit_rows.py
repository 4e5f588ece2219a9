"""Synthetic audit rows and their summary, in the shapes of ``aioregistry audit --format json``.

For the HTML report's tests (10,000 rows without pushing 10,000 images) and for the demo's
screenshot. Deterministic for a seed; no ``aioregistry`` import (an oracle of its own).
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["NOW", "PLATFORM_SETS", "summarise", "synthetic_rows"]

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
PLATFORM_SETS: tuple[tuple[str, ...], ...] = (
    ("linux/amd64",),
    ("linux/amd64", "linux/arm64"),
    ("linux/amd64", "linux/arm64", "linux/arm/v7"),
    ("linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x"),
    ("linux/arm64",),
    ("windows/amd64",),
)
_REPOSITORIES = (
    "platform/api", "platform/web", "platform/worker", "data/etl", "data/warehouse-loader",
    "ml/trainer", "ml/serving", "infra/proxy", "infra/dns", "tools/ci-runner", "tools/lint",
    "legacy/monolith", "sec/scanner", "edge/agent", "edge/gateway", "ops/backup", "ops/metrics",
    "mobile/backend", "billing/invoicer", "search/indexer", "auth/idp", "cache/warmer",
)  # fmt: skip


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _referrer(kind: str, subject: str) -> dict[str, Any]:
    artifact = {
        "signature": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "sbom": "application/spdx+json",
        "attestation": "application/vnd.in-toto+json",
    }[kind]
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact,
        "digest": _digest(f"{kind}:{subject}"),
        "size": 700,
        "annotations": {"org.opencontainers.image.created": "2026-11-01T00:00:00Z"},
        "kind": kind,
    }


def synthetic_rows(
    count: int, *, seed: int = 15, host: str = "registry.example.com"
) -> list[dict[str, Any]]:
    """``count`` rows over up to 22 repositories: ages from days to years (a few unknown),
    1 to 4 platforms, some tags sharing a digest, some signed / with an SBOM, a few errors."""
    rng = random.Random(seed)  # noqa: S311 (made-up data, reproducible by seed)
    rows: list[dict[str, Any]] = []
    for index in range(count):
        repository = _REPOSITORIES[min(int(rng.expovariate(0.25)), len(_REPOSITORIES) - 1)]
        tag = f"v{index // 100}.{index % 100}.{rng.randrange(10)}"
        reference = f"{host}/{repository}:{tag}"
        if rng.random() < 0.01:
            rows.append(_error_row(reference, repository, tag))
            continue
        image = rng.randrange(max(count * 3 // 4, 1))  # about a quarter share a digest
        digest = _digest(f"{repository}@{image}")
        platforms = list(rng.choice(PLATFORM_SETS))
        age: int | None = int(rng.expovariate(1 / 200)) if rng.random() > 0.02 else None
        created = None if age is None else (NOW - timedelta(days=age)).isoformat()
        kinds = [
            kind
            for kind, chance in (("signature", 0.6), ("sbom", 0.45), ("attestation", 0.3))
            if rng.random() < chance
        ]
        rows.append(
            {
                "reference": reference,
                "repository": repository,
                "tag": tag,
                "digest": digest,
                "platform": platforms[0],
                "platforms": platforms,
                "created": created,
                "age_days": age,
                "size": int(rng.lognormvariate(18, 1.2)) if rng.random() > 0.01 else None,
                "layers": rng.randrange(1, 30),
                "same_digest": [],
                "signed": "signature" in kinds,
                "sbom": "sbom" in kinds,
                "attestation": "attestation" in kinds,
                "referrers": [_referrer(kind, digest) for kind in kinds],
                "error": None,
            }
        )
    by_digest: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row["digest"]:
            by_digest.setdefault((row["repository"], row["digest"]), []).append(row)
    for group in by_digest.values():
        for row in group:  # the same image: the same size, platforms, age and referrers
            first = group[0]
            for key in ("size", "platforms", "platform", "created", "age_days", "layers"):
                row[key] = first[key]
            for key in ("signed", "sbom", "attestation", "referrers"):
                row[key] = first[key]
            row["same_digest"] = sorted(other["tag"] for other in group if other is not row)
    return rows


def _error_row(reference: str, repository: str, tag: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "repository": repository,
        "tag": tag,
        "digest": None,
        "platform": None,
        "platforms": [],
        "created": None,
        "age_days": None,
        "size": None,
        "layers": None,
        "same_digest": [],
        "signed": False,
        "sbom": False,
        "attestation": False,
        "referrers": [],
        "error": f"NotFound: manifest unknown: {tag}",
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``summary`` object beside the rows (the audit computes its own; this one is for
    synthetic rows)."""
    images = [row for row in rows if not row["error"]]
    unique: dict[str, int] = {}
    for row in images:
        if row["size"] is not None:
            unique[row["digest"]] = row["size"]
    dated = [row for row in images if row["age_days"] is not None]
    sized = [row for row in images if row["size"] is not None]
    oldest = max(dated, key=lambda row: row["age_days"], default=None)
    largest = max(sized, key=lambda row: row["size"], default=None)
    return {
        "repositories": len({row["repository"] for row in rows}),
        "tags": len(rows),
        "images": len({row["digest"] for row in images}),
        "total_size": sum(row["size"] for row in sized),
        "unique_size": sum(unique.values()),
        "unsigned": sum(1 for row in images if not row["signed"]),
        "without_sbom": sum(1 for row in images if not row["sbom"]),
        "oldest": oldest and {k: oldest[k] for k in ("reference", "created", "age_days")},
        "largest": largest and {k: largest[k] for k in ("reference", "size")},
    }
