"""Type-checked (by `nox -s typecheck`), never run: the public API as a user writes it."""

from __future__ import annotations

from typing_extensions import assert_type

import aioregistry
from aioregistry import (
    AuditRow,
    AuditSummary,
    ConfigBlob,
    Credentials,
    ImageIndex,
    ImageManifest,
    Limits,
    Platform,
    RateLimit,
    Referrer,
    ReferrerKind,
    RegistryClient,
    Retries,
    ScanResult,
    Token,
)


async def use() -> None:
    async with RegistryClient(credentials={"ghcr.io": ("me", "pw")}, insecure=False) as client:
        assert_type(await client.list_tags("ubuntu"), list[str])
        assert_type(await client.catalog("127.0.0.1:5000"), list[str])
        assert_type(await client.get_digest("ubuntu", platform="linux/arm64"), str)
        assert_type(
            await client.get_manifest("ubuntu", platform=Platform.parse("linux/arm/v7")),
            ImageManifest,
        )
        assert_type(await client.get_manifest_list("ubuntu"), ImageIndex | ImageManifest)
        assert_type(await client.get_config("vieux/sshfs", repo_type="plugin"), ConfigBlob)
        assert_type(await client.get_token("ubuntu"), Token)
        assert_type(client.stats.total_requests, int)
        assert_type(await client.get_rate_limit("ubuntu"), RateLimit)
        referrers = await client.list_referrers("ubuntu", artifact_type="application/spdx+json")
        assert_type(referrers, list[Referrer])
        assert_type(referrers[0].kind, ReferrerKind)
        assert_type(aioregistry.referrer_kind("application/spdx+json"), ReferrerKind)
        async with client.scan("ubuntu", what="digest", concurrency=None) as scan:
            async for result in scan:
                assert_type(result, ScanResult)
            assert_type(scan.stats.concurrency["registry-1.docker.io"], int)
        async with client.scan("ubuntu", include_digest_tags=True) as scan:
            assert_type(scan.stats.hidden_tags, int)
        async with client.audit("ubuntu", older_than="90d", unsigned=True) as audit:
            async for row in audit:
                assert_type(row, AuditRow)
                assert_type(row.age_days, int | None)
                assert_type(row.same_digest, tuple[str, ...])
            assert_type(audit.summary, AuditSummary)
            assert_type(audit.summary.unique_size, int)
            assert_type(AuditSummary.of([]).oldest, AuditRow | None)
    async with RegistryClient(
        credentials=Credentials("me", identity_token="refresh"),
        limits=Limits(requests_per_second=50.0),
        retries=Retries(attempts=6, total=120.0),
    ) as client:
        assert_type(await client.get_digest("ubuntu"), str)
    try:
        aioregistry.parse_reference("ubuntu")
    except aioregistry.InvalidReference as exc:
        assert_type(str(exc), str)
    except aioregistry.ResponseError as exc:
        assert_type(exc.status, int)
