"""``client.audit()``: every answer of a row, and the summary, against what was pushed (issue 15).

The registry (``registry_audit``: distribution 2.8, no referrers API) holds ``support.audit``'s
images: known dates, layer sizes, platforms, two tags on one image, a shared layer, and
signatures, SBOMs and attestations in fallback indexes and cosign 2's legacy tags. Each
expectation is computed from the pushed bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest
from support.audit import REPOSITORY, answers, days_since
from support.content import PushedIndex

from aioregistry import AuditRow, AuditSummary, RegistryClient, UsageError
from aioregistry._audit_rows import format_created, parse_created

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[RegistryClient]:
    async with RegistryClient(plain_http=True, use_env_credentials=False) as c:
        yield c


async def _audit(client: RegistryClient, *targets: str, **options: object):
    async with client.audit(*targets, **options) as audit:  # type: ignore[arg-type]
        rows = [row async for row in audit]
    return rows, audit


def _by_key(rows: list[AuditRow]) -> dict[tuple[str | None, str | None], AuditRow]:
    keyed = {(row.tag, row.platform): row for row in rows}
    assert len(keyed) == len(rows)
    return keyed


async def test_every_answer_of_every_tag(client, registry_audit):
    registry, content = registry_audit
    now = content.pushed_at + timedelta(days=1, hours=1)
    rows, _ = await _audit(client, f"{registry.host}/{REPOSITORY}", now=now)
    by_tag = {row.tag: row for row in rows}
    assert len(by_tag) == len(rows)
    assert set(by_tag) == set(content.tags)  # the bookkeeping tags are no rows
    for tag, row in by_tag.items():
        platform = "linux/arm64" if tag == "edge" else "linux/amd64"  # edge is arm64 only
        assert answers(row.to_json()) == content.expected(tag, platform, now), tag
        assert row.reference == f"{registry.host}/{REPOSITORY}:{tag}"
        assert row.repository == f"{registry.host}/{REPOSITORY}"
        assert row.error is None
    # What the fixture promises, said outright: the expectations are not all alike.
    assert by_tag["v1.0"].same_digest == ("stable",)
    assert by_tag["stable"].same_digest == ("v1.0",)
    assert by_tag["v2.0"].platforms == ("linux/amd64", "linux/arm64")  # no unknown/unknown
    assert by_tag["edge"].age_days == 1
    assert by_tag["v3.0"].age_days == 11
    assert [t for t, r in by_tag.items() if r.signed] == [t for t in by_tag if t != "edge"]


async def test_the_json_of_a_row(client, registry_audit):
    registry, content = registry_audit
    now = content.pushed_at
    rows, _ = await _audit(client, f"{registry.host}/{REPOSITORY}:v2.0", now=now)
    (row,) = rows
    data = row.to_json()
    assert list(data) == [
        "reference", "repository", "tag", "digest", "platform", "platforms", "created",
        "age_days", "size", "layers", "same_digest", "signed", "sbom", "attestation",
        "referrers", "error",
    ]  # fmt: skip
    assert data["created"] == "2024-05-01T12:00:00.123456Z"
    assert data["platforms"] == ["linux/amd64", "linux/arm64"]
    assert data["same_digest"] == []
    assert {r["digest"]: r["kind"] for r in data["referrers"]} == {
        a.digest: k for a, k in content.referrers[content.tags["v2.0"].digest]
    }
    assert all(set(r) >= {"mediaType", "digest", "size", "artifactType"} for r in data["referrers"])


async def test_every_platform_with_all(client, registry_audit):
    registry, content = registry_audit
    now = content.pushed_at
    rows, _ = await _audit(client, f"{registry.host}/{REPOSITORY}", platform="all", now=now)
    keyed = _by_key(rows)
    assert set(keyed) == {
        ("v1.0", "linux/amd64"),
        ("stable", "linux/amd64"),
        ("v2.0", "linux/amd64"),
        ("v2.0", "linux/arm64"),  # the attestation entry is not a platform
        ("v3.0", "linux/amd64"),
        ("edge", "linux/arm64"),
    }
    for (tag, platform), row in keyed.items():
        assert answers(row.to_json()) == content.expected(tag, platform, now), (tag, platform)


async def test_a_tag_without_the_platform_is_a_row_with_its_platforms(client, registry_audit):
    registry, content = registry_audit
    rows, _ = await _audit(
        client, f"{registry.host}/{REPOSITORY}", platform="linux/arm64", now=content.pushed_at
    )
    by_tag = {row.tag: row for row in rows}
    failed = by_tag["v3.0"]
    assert failed.error is not None
    assert failed.error.type == "NoMatchingPlatform"
    assert failed.digest == content.tags["v3.0"].digest
    assert failed.platforms == ("linux/amd64",)
    assert failed.signed  # its referrers are the tag's, whatever the platform
    assert failed.to_json()["error"].startswith("NoMatchingPlatform: no manifest for platform")
    assert by_tag["v2.0"].size == content.size(content.image("v2.0", "linux/arm64"))
    # A single image is what it is, whatever the platform asked for (as scan has it).
    assert {t for t, r in by_tag.items() if r.ok} == {"v1.0", "stable", "v2.0", "edge"}
    assert by_tag["v1.0"].platform == "linux/amd64"


async def test_the_summary(client, registry_audit):
    registry, content = registry_audit
    now = content.pushed_at
    rows, audit = await _audit(client, f"{registry.host}/{REPOSITORY}", platform="all", now=now)
    summary = audit.summary
    assert summary == AuditSummary.of(rows)
    images = {
        image.digest: image
        for tag, item in content.tags.items()
        for image in (
            [c for c in item.children if c.platform != "unknown/unknown"]
            if isinstance(item, PushedIndex)
            else [item]
        )
    }
    blobs: dict[str, int] = {}
    for image in images.values():
        blobs.update(content.blobs(image))
    assert summary.repositories == 1
    assert summary.tags == len(content.tags)
    assert summary.images == len(images) == 5
    assert summary.total_size == sum(content.size(i) for i in images.values())
    # The layer v1.0 and v2.0's amd64 image share is counted once.
    assert summary.unique_size == sum(blobs.values())
    assert summary.unique_size < summary.total_size
    assert summary.unsigned == 1  # edge
    assert summary.without_sbom == len(content.tags) - 1  # all but v2.0
    assert summary.oldest is not None
    assert summary.oldest.tag in {"v1.0", "stable"}
    assert summary.largest is not None
    assert summary.largest.tag == "v3.0"
    data = summary.to_json()
    assert data["oldest"] == {
        "reference": summary.oldest.reference,
        "created": "2020-01-01T00:00:00Z",
        "age_days": days_since("2020-01-01T00:00:00Z", now),
    }
    assert data["largest"] == {
        "reference": f"{registry.host}/{REPOSITORY}:v3.0",
        "size": content.size(content.image("v3.0")),
    }
    assert list(data) == [
        "repositories", "tags", "images", "total_size", "unique_size", "unsigned",
        "without_sbom", "oldest", "largest",
    ]  # fmt: skip


def test_the_summary_of_nothing():
    assert AuditSummary.of([]).to_json() == {
        "repositories": 0,
        "tags": 0,
        "images": 0,
        "total_size": 0,
        "unique_size": 0,
        "unsigned": 0,
        "without_sbom": 0,
        "oldest": None,
        "largest": None,
    }


async def test_same_digest_among_images_given(client, registry_audit):
    registry, _ = registry_audit
    base = f"{registry.host}/{REPOSITORY}"
    rows, _ = await _audit(client, f"{base}:v1.0", f"{base}:stable", f"{base}:edge")
    assert {row.tag: row.same_digest for row in rows} == {
        "v1.0": ("stable",),
        "stable": ("v1.0",),
        "edge": (),
    }
    rows, _ = await _audit(client, f"{base}:v1.0")
    assert [row.same_digest for row in rows] == [()]  # only what was audited is compared


async def test_filters_in_the_library(client, registry_audit):
    registry, content = registry_audit
    repo = f"{registry.host}/{REPOSITORY}"
    now = content.pushed_at

    async def tags(**options: object) -> set[str | None]:
        rows, audit = await _audit(client, repo, now=now, **options)
        assert audit.summary.tags == len({row.tag for row in rows})  # the rows kept, summed
        return {row.tag for row in rows}

    assert await tags(unsigned=True) == {"edge"}
    assert await tags(missing_platform="linux/arm64") == {"v1.0", "stable", "v3.0"}
    assert await tags(older_than="90d") == {"v1.0", "stable", "v2.0"}
    assert await tags(older_than=timedelta(days=5), newer_than="2w") == {"v3.0"}
    assert await tags(include=r"^v", exclude=r"\.0$") == set()
    assert await tags(include=r"^v[12]") == {"v1.0", "v2.0"}


async def test_bad_filters_are_usage_errors(client):
    with pytest.raises(UsageError, match="invalid duration '90 days'"):
        client.audit("localhost:5000/x", older_than="90 days")
    with pytest.raises(UsageError, match="invalid --include regular expression"):
        client.audit("localhost:5000/x", include="(")
    with pytest.raises(UsageError, match="invalid --missing-platform"):
        client.audit("localhost:5000/x", missing_platform="arm64")
    with pytest.raises(UsageError, match="aware datetime"):
        client.audit("localhost:5000/x", now=datetime(2024, 1, 1))


async def test_the_audit_costs_what_its_scan_costs(client, registry_audit):
    registry, content = registry_audit
    repo = f"{registry.host}/{REPOSITORY}"
    _, audit = await _audit(client, repo)
    async with (
        RegistryClient(plain_http=True, use_env_credentials=False) as other,
        other.scan(repo, what="config", referrers=True) as scan,
    ):
        [r async for r in scan]
    requests = Counter(audit.stats.requests)
    assert requests == Counter(scan.stats.requests)
    # One GET per tag, per distinct platform manifest and per fallback index; one config
    # each; a HEAD per cosign tag; the tag list once; the referrers API probed once.
    items = set(map(id, content.tags.values()))
    children = {
        c.digest
        for item in content.tags.values()
        if isinstance(item, PushedIndex)
        for c in item.children
        if c.platform == "linux/amd64"
    }
    configs = {
        content.image(t, "linux/arm64" if t == "edge" else "linux/amd64").config_digest
        for t in content.tags
    }
    signed_by_index = sum(1 for item in content.tags.values() if isinstance(item, PushedIndex))
    assert requests["manifest"] == len(content.tags) + len(children) + signed_by_index
    assert requests["blob"] == len(configs)
    assert requests["manifest-head"] == 2  # v1.0's .sig and .att
    assert requests["tags"] == 1
    assert requests["referrers"] == 1
    assert len(items) == 4


def test_created_in_rfc3339():
    utc = timezone.utc
    assert parse_created("2024-05-01T12:00:00Z") == datetime(2024, 5, 1, 12, tzinfo=utc)
    assert parse_created("2024-05-01T12:00:00.123456789Z") == datetime(
        2024, 5, 1, 12, 0, 0, 123456, tzinfo=utc
    )
    assert parse_created("2024-05-01T14:00:00+02:00") == datetime(2024, 5, 1, 12, tzinfo=utc)
    assert parse_created("2024-05-01t12:00:00.5z") == datetime(2024, 5, 1, 12, 0, 0, 500000, utc)
    for bad in (None, 17, "", "yesterday", "2024-05-01", "2024-13-01T00:00:00Z"):
        assert parse_created(bad) is None, bad
    assert format_created(datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2)))) == (
        "2024-05-01T12:00:00Z"
    )
    assert format_created(None) is None
