"""Fan-out scans (issue #3) against real registries.

Most tests scan ``registry_many`` (token auth, 1,000 tags over 250 distinct images in
``test/many``) and check every answer against what was pushed, and what the registry
served against its own access log: one token, no manifest or config fetched twice, HEAD only
for a digest scan, a slow consumer holding the scan back, nothing left running when the
consumer stops early. ``broken`` is a registry of its own where some tags' manifests are gone.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

import anyio
import pytest
from support.content import PushedImage, PushedIndex
from support.registry import RegistryProcess

from aioregistry import (
    InvalidPlatform,
    InvalidReference,
    NotFound,
    RegistryClient,
    UsageError,
)
from aioregistry._transport import _HEDGES

pytestmark = pytest.mark.anyio

OUR_AGENT = "aioregistry/"
PLATFORMS = ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
_MANIFEST_PATH = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/?]+)$")
_BLOB_PATH = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>[^/?]+)$")


@pytest.fixture
async def client():
    async with RegistryClient(use_env_credentials=False) as c:
        yield c


# -- a registry where some tags' manifests are gone --------------------------------------


@dataclass(frozen=True)
class Broken:
    """``test/many`` with 50 tags over 10 images, two of the images no longer there."""

    registry: RegistryProcess
    deleted_tags: frozenset[str]  # manifest deleted through the API: distribution untags them
    missing_tags: frozenset[str]  # still listed, but their manifest revision is gone: 404


def _delete_manifest(registry: RegistryProcess, repository: str, digest: str) -> None:
    conn = http.client.HTTPConnection(registry.listen_host, registry.port, timeout=10)
    try:
        conn.request(
            "DELETE",
            f"/v2/{repository}/manifests/{digest}",
            headers={"User-Agent": "bulk-test-setup"},
        )
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 202, resp.status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    with RegistryProcess("http", tmp_path_factory.mktemp("broken")) as registry:
        content = registry.push_content(many_tags=50, distinct=10)
        many = content.many_repository

        def tags_of(digest: str) -> frozenset[str]:
            return frozenset(t for t, image in content.many_tags.items() if image.digest == digest)

        # DELETE by digest: distribution 2.8 also removes every tag pointing to it, so these
        # tags vanish from tags/list (asking for one by name is a 404).
        deleted = content.many_tags["t0003"].digest
        _delete_manifest(registry, many, deleted)
        # A tag still listed whose manifest is missing: remove the manifest's revision link in
        # the repository's storage; the tags' links still name the digest, so GET or HEAD of
        # the tag answers 404 MANIFEST_UNKNOWN.
        missing = content.many_tags["t0007"].digest
        algorithm, _, hexdigest = missing.partition(":")
        link = (
            registry.storage_path
            / "docker/registry/v2/repositories"
            / many
            / "_manifests/revisions"
            / algorithm
            / hexdigest
            / "link"
        )
        assert link.read_text() == missing
        link.unlink()
        yield Broken(registry, tags_of(deleted), tags_of(missing))


# -- helpers -----------------------------------------------------------------------------


def _served(registry: RegistryProcess, mark: int, at_least: int) -> list[dict]:
    """Our requests since ``mark``, read once at least ``at_least`` lines are in the log."""
    registry.wait_access_log(at_least, since=mark)
    time.sleep(0.05)  # a line may trail its response: let late ones in before counting
    return [e for e in registry.access_log(since=mark) if e["user_agent"].startswith(OUR_AGENT)]


def _each_once(counts: Counter, keys, hedges: int) -> None:
    """Each of ``keys`` asked for once, or more where a late answer was hedged (a duplicate
    of a request in flight, and one more if that is late too: `_transport._HEDGES`; never a
    second fetch of something already had)."""
    assert set(counts) == set(keys)
    assert all(1 <= n <= 1 + _HEDGES for n in counts.values()), counts.most_common(3)
    assert sum(counts.values()) - len(counts) <= hedges, (counts.most_common(3), hedges)


def _manifest_requests(entries, repository: str) -> list[tuple[str, str]]:
    """(method, tag or digest) of every manifest request for ``repository``."""
    found = []
    for entry in entries:
        match = _MANIFEST_PATH.match(entry["path"])
        if match and match["repo"] == repository:
            found.append((entry["method"], match["ref"]))
    return found


def _blob_gets(entries, repository: str) -> Counter[str]:
    return Counter(
        match["digest"]
        for entry in entries
        if entry["method"] == "GET"
        and (match := _BLOB_PATH.match(entry["path"]))
        and match["repo"] == repository
    )


def _is_digest(ref: str) -> bool:
    return ref.startswith("sha256:")


async def _collect(scan, into: list) -> None:
    async with scan:
        async for result in scan:
            into.append(result)


def _new_tasks(before: set[asyncio.Task]) -> set[asyncio.Task]:
    return {task for task in asyncio.all_tasks() if task not in before and not task.done()}


def _task_name(task: asyncio.Task) -> str:
    name = task.get_name()
    return getattr(task.get_coro(), "__qualname__", name) if name.startswith("Task-") else name


def _check_image_result(result, host: str, repository: str, tag: str, pushed: PushedImage) -> None:
    assert result.error is None, (tag, result.error)
    assert result.reference == f"{host}/{repository}:{tag}"
    assert result.repository == f"{host}/{repository}"
    assert result.tag == tag
    assert result.digest == pushed.digest
    assert result.media_type == pushed.media_type
    assert result.manifest_digest == pushed.digest
    assert result.config_digest == pushed.config_digest
    assert result.manifest is not None
    assert result.manifest.raw == pushed.raw
    assert result.config is not None
    assert result.config.raw == pushed.config_raw
    assert result.platform == pushed.platform


# -- 1-3: a config scan of 1,000 tags ----------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One config scan of ``test/many`` and what the registry and its issuer saw of it."""

    results: list
    stats: object  # ScanStats
    total: int
    listed: bool
    tokens: list  # TokenRecord, issued during the scan
    entries: list  # access-log entries of the scan's requests


@pytest.fixture(scope="module")
async def config_scan(registry_many):
    """The 1,000-tag config scan, run once for the tests that check it from every side."""
    host, content = registry_many.host, registry_many.content
    issuer = registry_many.issuer
    issuer.reset()
    mark = registry_many.log_mark()
    async with (
        RegistryClient(use_env_credentials=False) as client,  # fresh: no token cached
        client.scan(f"{host}/{content.many_repository}") as scan,
    ):
        results = [result async for result in scan]
    tokens = list(issuer.issued)
    issuer.reset()
    entries = _served(registry_many, mark, 1 + 1 + 1000 + 250)  # ping, list, tags, configs
    return Recorded(results, scan.stats, scan.total, scan.listed, tokens, entries)


async def test_config_scan_answers_every_tag(registry_many, config_scan):
    host, content = registry_many.host, registry_many.content
    many = content.many_repository
    results = config_scan.results
    assert len(results) == 1000
    assert [r for r in results if r.error is not None] == []
    by_tag = {r.tag: r for r in results}
    assert sorted(by_tag) == sorted(content.many_tags)  # one result per tag, none twice
    for tag, pushed in content.many_tags.items():
        result = by_tag[tag]
        _check_image_result(result, host, many, tag, pushed)
        assert result.platform == "linux/amd64"
        assert result.config.data == pushed.config
    assert config_scan.total == 1000
    assert config_scan.listed


async def test_config_scan_takes_one_token(registry_many, config_scan):
    assert len(config_scan.tokens) == 1
    assert config_scan.tokens[0].scopes == [
        f"repository:{registry_many.content.many_repository}:pull"
    ]
    assert config_scan.stats.tokens_fetched == 1
    assert config_scan.stats.requests["token"] == 1


async def test_config_scan_fetches_nothing_twice(registry_many, config_scan):
    content = registry_many.content
    many = content.many_repository
    configs = {image.config_digest for image in content.many_tags.values()}
    assert len(configs) == 250
    entries = config_scan.entries
    assert [e for e in entries if e["status"] >= 400 and e["path"] != "/v2/"] == []
    manifests = _manifest_requests(entries, many)
    hedges = config_scan.stats.hedges
    assert hedges <= 0.05 * config_scan.stats.total_requests + 20  # the hedging budget
    by_tag = Counter(ref for _, ref in manifests if not _is_digest(ref))
    _each_once(by_tag, content.many_tags, hedges)  # each tag resolved once
    by_digest = Counter(ref for method, ref in manifests if _is_digest(ref) and method == "GET")
    assert all(n <= 2 for n in by_digest.values()), by_digest.most_common(3)
    blobs = _blob_gets(entries, many)
    _each_once(blobs, configs, hedges)  # the configs, and no layer
    assert sum(1 for e in entries if e["path"].startswith(f"/v2/{many}/tags/list")) == 1


async def test_config_scan_stats_agree_with_the_access_log(registry_many, config_scan):
    many = registry_many.content.many_repository
    stats, entries = config_scan.stats, config_scan.entries
    assert stats.results == 1000
    assert stats.errors == 0
    assert stats.tokens_fetched == 1
    # A hedge that lost may have been cancelled before the registry logged it: the log holds
    # every request but those, and the hedges are the only requests beyond one per thing.
    hedges = stats.hedges
    assert 250 <= sum(_blob_gets(entries, many).values()) <= stats.requests["blob"]
    assert stats.requests["blob"] <= 250 + hedges
    assert stats.requests["tags"] == 1
    manifests = _manifest_requests(entries, many)
    for kind, method in (("manifest", "GET"), ("manifest-head", "HEAD")):
        logged = sum(1 for m, _ in manifests if m == method)
        assert logged <= stats.requests.get(kind, 0) <= logged + hedges
    pings = sum(1 for e in entries if e["path"] == "/v2/")
    assert stats.requests["ping"] >= pings == 1  # an HTTPS try first never reaches the log
    sent = stats.total_requests - stats.requests["token"] - stats.requests["ping"]
    assert len(entries) - pings <= sent <= len(entries) - pings + hedges
    assert stats.bytes_received > sum(e["size"] for e in entries if e["method"] == "GET") / 2
    assert stats.seconds > 0


# -- 4: a digest scan --------------------------------------------------------------------


async def test_digest_scan_uses_head_only(registry_many, many_issuer):
    host, content = registry_many.host, registry_many.content
    many = content.many_repository
    mark = registry_many.log_mark()
    async with (
        RegistryClient(use_env_credentials=False) as client,
        client.scan(f"{host}/{many}", what="digest") as scan,
    ):
        results = [result async for result in scan]
        stats = scan.stats

    assert len(results) == 1000
    by_tag = {r.tag: r for r in results}
    assert sorted(by_tag) == sorted(content.many_tags)
    for tag, pushed in content.many_tags.items():
        result = by_tag[tag]
        assert result.error is None, (tag, result.error)
        assert result.reference == f"{host}/{many}:{tag}"
        assert result.digest == pushed.digest
        assert result.manifest_digest == pushed.digest
        assert result.media_type == pushed.media_type
        assert result.config_digest is None  # not fetched: the HEAD does not tell
        assert result.manifest is None
        assert result.config is None

    entries = _served(registry_many, mark, 1 + 1 + 1000)
    manifests = _manifest_requests(entries, many)
    assert {method for method, _ in manifests} == {"HEAD"}
    _each_once(Counter(ref for _, ref in manifests), content.many_tags, stats.hedges)
    assert _blob_gets(entries, many) == {}
    assert stats.requests.get("manifest", 0) == 0
    assert len(manifests) <= stats.requests["manifest-head"] <= 1000 + stats.hedges
    assert "blob" not in stats.requests
    assert stats.tokens_fetched == 1
    assert many_issuer.count == 1


async def test_two_scans_at_once_on_one_client_each_count_their_own(registry_many, many_issuer):
    # A 1,000-tag digest scan and, started beside it, one of 200 given images (no listing):
    # each scan's statistics count its own requests, and together exactly the client's.
    host, content = registry_many.host, registry_many.content
    many = content.many_repository
    some = sorted(content.many_tags)[:200]
    async with RegistryClient(use_env_credentials=False) as client:
        listed = client.scan(f"{host}/{many}", what="digest")
        given = client.scan(*(f"{host}/{many}:{tag}" for tag in some), what="digest")
        counted: dict[str, int] = {}

        async def drain(name, scan):
            async with scan:
                counted[name] = sum([1 async for _ in scan])

        async with anyio.create_task_group() as tg:
            tg.start_soon(drain, "listed", listed)
            tg.start_soon(drain, "given", given)
        total = client.stats

    assert counted == {"listed": 1000, "given": 200}
    a, b = listed.stats, given.stats
    assert 1000 <= a.requests["manifest-head"] <= 1000 + a.hedges
    assert a.requests["tags"] == 1
    assert 200 <= b.requests["manifest-head"] <= 200 + b.hedges
    assert "tags" not in b.requests
    # What both waited for (the ping, the one token) is counted once, by whichever did it.
    for kind in ("ping", "token"):
        assert a.requests.get(kind, 0) + b.requests.get(kind, 0) == total.requests[kind]
    assert a.tokens_fetched + b.tokens_fetched == total.tokens_fetched == many_issuer.count == 1
    assert a.total_requests + b.total_requests == total.total_requests
    assert a.bytes_received + b.bytes_received == total.bytes_received
    assert a.retries + b.retries == total.retries
    assert a.hedges + b.hedges == total.hedges


# -- 5, 10: tags whose manifest is gone --------------------------------------------------


async def test_a_tag_whose_manifest_is_gone_is_an_error_and_the_rest_complete(broken, client):
    registry = broken.registry
    host, content = registry.host, registry.content
    many = content.many_repository
    deleted_tag = min(broken.deleted_tags)
    results = [
        result async for result in client.scan(f"{host}/{many}", f"{host}/{many}:{deleted_tag}")
    ]

    listed = set(content.many_tags) - broken.deleted_tags
    assert len(listed) == 45
    assert sorted(r.tag for r in results) == sorted([*listed, deleted_tag])
    failed = {r.tag: r for r in results if r.error is not None}
    assert set(failed) == {*broken.missing_tags, deleted_tag}
    assert len(broken.missing_tags) == 5
    for tag, result in failed.items():
        assert result.error.type == "NotFound", result.error
        assert isinstance(result.error.exception, NotFound)
        assert result.error.exception.status == 404
        assert result.error.exception.codes == ("MANIFEST_UNKNOWN",)
        assert result.reference == f"{host}/{many}:{tag}"
        assert result.repository == f"{host}/{many}"
        assert result.digest is None
        assert result.config is None
        assert not result.ok
    ok = [r for r in results if r.error is None]
    assert len(ok) == 40
    for result in ok:
        _check_image_result(result, host, many, result.tag, content.many_tags[result.tag])


async def test_digest_scan_reports_the_missing_manifests_too(broken, client):
    registry = broken.registry
    many = registry.content.many_repository
    results = [r async for r in client.scan(f"{registry.host}/{many}", what="digest")]
    assert len(results) == 45
    assert {r.tag for r in results if r.error is not None} == broken.missing_tags
    assert {r.error.type for r in results if r.error is not None} == {"NotFound"}


async def test_fail_fast_raises_the_first_error(broken, client):
    registry = broken.registry
    many = registry.content.many_repository
    before = asyncio.all_tasks()
    yielded = []
    scan = client.scan(f"{registry.host}/{many}", fail_fast=True, concurrency=2)
    with pytest.raises(NotFound) as caught:
        await _collect(scan, yielded)
    assert caught.value.status == 404
    assert caught.value.codes == ("MANIFEST_UNKNOWN",)
    assert all(r.ok for r in yielded)
    assert len(yielded) < 45
    await anyio.sleep(0.1)
    assert _new_tasks(before) == set()


# -- 6: every platform of a multi-arch tag -----------------------------------------------


async def test_platform_all_yields_one_result_per_platform(registry_many, many_issuer):
    host, content = registry_many.host, registry_many.content
    indexes = {tag: content.get(f"test/multi:{tag}") for tag in ("docker", "oci")}
    mark = registry_many.log_mark()
    async with RegistryClient(use_env_credentials=False) as client:
        results = [
            r
            async for r in client.scan(
                f"{host}/test/multi:oci", f"{host}/test/multi:docker", platform="all"
            )
        ]

    assert len(results) == 6
    for tag, index in indexes.items():
        assert isinstance(index, PushedIndex)
        mine = [r for r in results if r.tag == tag]
        assert sorted(r.platform for r in mine) == sorted(PLATFORMS), tag
        for result in mine:
            child = index.child(result.platform)
            assert result.error is None, result.error
            assert result.reference == f"{host}/test/multi:{tag}"
            assert result.repository == f"{host}/test/multi"
            assert result.digest == index.digest
            assert result.media_type == index.media_type
            assert result.manifest_digest == child.digest
            assert result.manifest.raw == child.raw
            assert result.config_digest == child.config_digest
            assert result.config.raw == child.config_raw

    # The attestation (unknown/unknown) is neither a result nor fetched; each child once.
    attestation = indexes["oci"].children[0]
    assert attestation.platform == "unknown/unknown"
    images = [c for index in indexes.values() for c in index.children if c is not attestation]
    assert len(images) == 6
    entries = _served(registry_many, mark, 1 + 2 + 6 + 6)
    manifests = _manifest_requests(entries, "test/multi")
    by_digest = Counter(ref for method, ref in manifests if method == "GET" and _is_digest(ref))
    assert by_digest == {image.digest: 1 for image in images}
    assert Counter(ref for _, ref in manifests if not _is_digest(ref)) == {"oci": 1, "docker": 1}
    assert _blob_gets(entries, "test/multi") == {image.config_digest: 1 for image in images}
    assert many_issuer.count == 1


async def test_platform_all_digest_scan_names_each_child(registry_http, client):
    host, content = registry_http.host, registry_http.content
    results = [r async for r in client.scan(f"{host}/test/multi", what="digest", platform="all")]
    assert len(results) == 6
    for result in results:
        index = content.get(f"test/multi:{result.tag}")
        assert result.error is None, result.error
        assert result.digest == index.digest
        assert result.platform in PLATFORMS
        assert result.manifest_digest == index.child(result.platform).digest
        assert result.config is None


async def test_a_chosen_platform_picks_that_child(registry_http, client):
    host, content = registry_http.host, registry_http.content
    results = [r async for r in client.scan(f"{host}/test/multi", platform="linux/arm/v7")]
    assert sorted(r.tag for r in results) == ["docker", "oci"]
    for result in results:
        child = content.get(f"test/multi:{result.tag}").child("linux/arm/v7")
        assert result.platform == "linux/arm/v7"
        assert result.manifest_digest == child.digest
        assert result.config.raw == child.config_raw


# -- 7: references, several repositories and registries, a catalog -----------------------


async def test_images_repositories_and_registries_in_one_scan(
    registry_many, registry_http, many_issuer
):
    host, content = registry_many.host, registry_many.content
    oci = content.get("test/oci:v1")
    targets = [
        f"{host}/test/single:v1",
        f"{host}/test/oci@{oci.digest}",
        f"{host}/test/multi",
        f"{host}/test/plugin",
        f"{registry_http.host}/org/team/app",
    ]
    async with RegistryClient(use_env_credentials=False) as client:
        scan = client.scan(*targets)
        results = [r async for r in scan]
    assert [r for r in results if r.error is not None] == []
    by_ref = {r.reference: r for r in results}
    assert sorted(by_ref) == sorted(
        [
            f"{host}/test/single:v1",
            f"{host}/test/oci@{oci.digest}",
            f"{host}/test/multi:docker",
            f"{host}/test/multi:oci",
            f"{host}/test/plugin:latest",
            f"{registry_http.host}/org/team/app:1.0",
        ]
    )
    assert scan.total == 6

    _check_image_result(
        by_ref[f"{host}/test/single:v1"], host, "test/single", "v1", content.get("test/single:v1")
    )
    by_digest = by_ref[f"{host}/test/oci@{oci.digest}"]
    assert by_digest.tag is None
    assert by_digest.repository == f"{host}/test/oci"
    assert by_digest.digest == by_digest.manifest_digest == oci.digest
    assert by_digest.config.raw == oci.config_raw
    assert by_digest.platform == "linux/arm64"
    for tag in ("docker", "oci"):
        index = content.get(f"test/multi:{tag}")
        result = by_ref[f"{host}/test/multi:{tag}"]
        assert result.digest == index.digest
        assert result.platform == "linux/amd64"  # the default
        assert result.manifest_digest == index.child("linux/amd64").digest
        assert result.config.raw == index.child("linux/amd64").config_raw
    plugin = by_ref[f"{host}/test/plugin:latest"]
    assert plugin.config.raw == content.get("test/plugin:latest").config_raw
    assert plugin.platform is None  # a plugin config names no platform
    app = by_ref[f"{registry_http.host}/org/team/app:1.0"]
    _check_image_result(
        app,
        registry_http.host,
        "org/team/app",
        "1.0",
        registry_http.content.get("org/team/app:1.0"),
    )
    # One token per repository of the token registry, none for the anonymous one.
    assert sorted(s for record in many_issuer.issued for s in record.scopes) == sorted(
        f"repository:{name}:pull"
        for name in ("test/single", "test/oci", "test/multi", "test/plugin")
    )


def _expected_results(content, *, all_platforms: bool) -> dict[tuple[str, str], int]:
    expected = {}
    for repository in content.repositories:
        for tag in content.tags_of(repository):
            item = content.get(f"{repository}:{tag}")
            if all_platforms and isinstance(item, PushedIndex):
                count = sum(1 for child in item.children if child.platform != "unknown/unknown")
            else:
                count = 1
            expected[repository, tag] = count
    return expected


async def test_catalog_scans_every_repository(registry_http, client):
    host, content = registry_http.host, registry_http.content
    expected = _expected_results(content, all_platforms=True)
    async with client.scan(catalog=host, platform="all", what="digest") as scan:
        results = [r async for r in scan]
    assert [r for r in results if r.error is not None] == []
    assert len(results) == sum(expected.values())
    assert len(results) == sum(len(content.tags_of(r)) for r in content.repositories) + 2 * 2
    got = Counter((r.repository.removeprefix(f"{host}/"), r.tag) for r in results)
    assert got == expected
    for result in results:
        path = result.repository.removeprefix(f"{host}/")
        item = content.get(f"{path}:{result.tag}")
        assert result.digest == item.digest, result.reference
        if isinstance(item, PushedIndex):
            assert result.manifest_digest == item.child(result.platform).digest
        else:
            assert result.manifest_digest == item.digest
    assert scan.listed
    assert scan.total == sum(len(content.tags_of(r)) for r in content.repositories)


async def test_catalog_with_the_default_platform_gives_one_result_per_tag(registry_http, client):
    host, content = registry_http.host, registry_http.content
    results = [r async for r in client.scan(catalog=host, what="digest")]
    assert len(results) == sum(_expected_results(content, all_platforms=False).values())


# -- 8: stopping early leaves nothing running --------------------------------------------


# Each consumes a 1,000-tag scan and stops early; each returns how many results it took.


async def _break(client, target) -> int:
    seen = 0
    async for _ in client.scan(target, concurrency=2):
        seen += 1
        if seen == 5:
            break
    return seen


async def _async_with_break(client, target) -> int:
    seen = 0
    async with client.scan(target, concurrency=2) as results:
        async for _ in results:
            seen += 1
            if seen == 5:
                break
    return seen


async def _async_with_break_then_pause(client, target) -> int:
    # The consumer stops reading, does something else, then leaves: by then every worker
    # waits to hand over a result.
    seen = 0
    async with client.scan(target, concurrency=2) as results:
        async for _ in results:
            seen += 1
            if seen == 5:
                break
        await anyio.sleep(0.2)
    return seen


async def _cancel_while_waiting(client, target) -> int:
    # A consumer that keeps up is cancelled while it waits for the next result: the
    # cancellation lands inside the scan's iterator.
    seen = 0
    with anyio.move_on_after(30) as scope:
        async for _ in client.scan(target, concurrency=2):
            seen += 1
            if seen == 1:
                scope.deadline = anyio.current_time() + 0.05
    assert scope.cancelled_caught
    return seen


async def _cancel_while_busy(client, target) -> int:
    # The consumer is cancelled in its own code, after the scan filled its buffers.
    seen = 0
    with anyio.move_on_after(30) as scope:
        async for _ in client.scan(target, concurrency=2):
            seen += 1
            if seen == 5:
                scope.deadline = anyio.current_time() + 0.2
                await anyio.sleep(5)
    assert scope.cancelled_caught
    return seen


async def _async_with_cancel_while_busy(client, target) -> int:
    seen = 0
    with anyio.move_on_after(30) as scope:
        async with client.scan(target, concurrency=2) as results:
            async for _ in results:
                seen += 1
                if seen == 5:
                    scope.deadline = anyio.current_time() + 0.2
                    await anyio.sleep(5)
    assert scope.cancelled_caught
    return seen


STOPS = {
    "break": _break,
    "async-with-break": _async_with_break,
    "async-with-break-then-pause": _async_with_break_then_pause,
    "cancel-while-waiting": _cancel_while_waiting,
    "cancel-while-busy": _cancel_while_busy,
    "async-with-cancel-while-busy": _async_with_cancel_while_busy,
}


@pytest.mark.parametrize("style", list(STOPS))
async def test_stopping_early_leaves_no_task_running(registry_many, style):
    many = f"{registry_many.host}/{registry_many.content.many_repository}"
    before = asyncio.all_tasks()
    assert asyncio.current_task() in before
    async with RegistryClient(use_env_credentials=False) as client:
        seen = await STOPS[style](client, many)
        assert 0 < seen < 1000
        await anyio.sleep(0.2)
        leftover = _new_tasks(before)
        made = client.stats.total_requests
        await anyio.sleep(0.1)
        try:
            assert sorted(_task_name(task) for task in leftover) == []
        finally:  # do not let a leaked scan run on into the next tests
            for task in leftover:
                task.cancel()
            if leftover:
                await asyncio.wait(leftover, timeout=5)
                gc.collect()  # and finalise the abandoned iterator here, not in a later test
                await anyio.sleep(0.05)
        assert client.stats.total_requests == made  # no request after the consumer left
    assert made < 100  # the scan stopped: it did not run on through 1,000 tags


# -- 9: backpressure ---------------------------------------------------------------------


async def test_slow_consumer_holds_the_scan_back(registry_many):
    many = f"{registry_many.host}/{registry_many.content.many_repository}"
    mark = registry_many.log_mark()
    async with (
        RegistryClient(use_env_credentials=False) as client,
        client.scan(many, concurrency=4) as scan,
    ):
        taken = 0
        async for _ in scan:
            taken += 1
            await anyio.sleep(0.01)
            if taken == 20:
                break
        await anyio.sleep(0.3)  # all the time it wants to race ahead: it must not
        made = client.stats.total_requests
        served = _served(registry_many, mark, 40)
        # 20 results took 20 manifests and 20 configs; a few more fill the small buffers.
        assert 40 <= made < 100, made
        assert 40 <= len(served) < 100, len(served)
        assert scan.stats.results == 20


# -- 11: usage errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        (["{host}/test/many"], {"what": "bogus"}, UsageError, "what"),
        (["{host}/test/many"], {"concurrency": 0}, UsageError, "concurrency"),
        (["{host}/test/many"], {"concurrency": -3}, UsageError, "concurrency"),
        ([], {}, UsageError, "nothing to scan"),
        (["{host}/test/many"], {"platform": "linux"}, InvalidPlatform, "linux"),
        (["{host}/test/many"], {"platform": "linux/arm/v7/x"}, InvalidPlatform, "platform"),
        (["{host}/test/many"], {"platform": ""}, InvalidPlatform, "platform"),
        (["{host}/Test/Many"], {}, InvalidReference, "lower case"),
        (["{host}/test/many:bad tag"], {}, InvalidReference, "bad tag"),
        (["{host}/test/many@sha256:abc"], {}, InvalidReference, "sha256"),
    ],
    ids=[
        "bogus-what",
        "zero-concurrency",
        "negative-concurrency",
        "no-targets",
        "platform-without-arch",
        "platform-too-long",
        "empty-platform",
        "upper-case-repository",
        "bad-tag",
        "short-digest",
    ],
)
async def test_usage_errors_raise_when_the_scan_is_made(registry_http, client, case):
    targets, kwargs, error, match = case
    targets = [t.format(host=registry_http.host) for t in targets]
    with pytest.raises(error, match=match):
        client.scan(*targets, **kwargs)  # no iteration needed: the call itself raises
    assert client.stats.total_requests == 0


# -- 12: the CLI -------------------------------------------------------------------------

RECORD_KEYS = {
    "reference",
    "repository",
    "tag",
    "digest",
    "platform",
    "manifest_digest",
    "config_digest",
    "config",
    "error",
}


def _cli_scan(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_USER", "DOCKER_PASSWORD")}
    return subprocess.run(
        [sys.executable, "-m", "aioregistry", "scan", *args],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def _summary(result: subprocess.CompletedProcess[bytes]) -> str:
    err = result.stderr.decode()
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # a one-line summary
    return lines[0]


def test_cli_scan_writes_one_json_line_per_tag(registry_many):
    host, content = registry_many.host, registry_many.content
    many = content.many_repository
    result = _cli_scan(f"{host}/{many}", "--format", "jsonl", "--what", "config")
    assert result.returncode == 0, result.stderr.decode()
    _summary(result)
    assert result.stdout.endswith(b"\n")
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(records) == 1000
    by_tag = {record["tag"]: record for record in records}
    assert sorted(by_tag) == sorted(content.many_tags)
    for tag, pushed in content.many_tags.items():
        record = by_tag[tag]
        assert set(record) >= RECORD_KEYS
        assert record["error"] is None
        assert record["reference"] == f"{host}/{many}:{tag}"
        assert record["repository"] == f"{host}/{many}"
        assert record["digest"] == pushed.digest
        assert record["manifest_digest"] == pushed.digest
        assert record["config_digest"] == pushed.config_digest
        assert record["platform"] == "linux/amd64"
        assert record["config"] == pushed.config


def test_cli_scan_json_is_one_array(registry_http):
    host, content = registry_http.host, registry_http.content
    many = content.many_repository
    result = _cli_scan(f"{host}/{many}", "--format", "json", "--what", "digest")
    assert result.returncode == 0, result.stderr.decode()
    _summary(result)
    records = json.loads(result.stdout)
    assert isinstance(records, list)
    assert len(records) == len(content.many_tags) == 300
    assert {r["tag"]: r["digest"] for r in records} == {
        tag: image.digest for tag, image in content.many_tags.items()
    }
    for record in records:
        assert set(record) >= RECORD_KEYS - {"config"}, record
        assert record["error"] is None
        assert record.get("config") is None  # a digest scan fetches no config


def test_cli_scan_exits_1_when_some_tags_fail(broken):
    registry = broken.registry
    many = registry.content.many_repository
    result = _cli_scan(f"{registry.host}/{many}")  # not a terminal: JSON lines by default
    assert result.returncode == 1, result.stderr.decode()
    _summary(result)
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(records) == 45
    failed = {r["tag"] for r in records if r["error"] is not None}
    assert failed == broken.missing_tags
    for record in records:
        if record["error"] is not None:
            assert record["error"]["type"] == "NotFound"
        else:
            assert record["digest"] == registry.content.many_tags[record["tag"]].digest


def test_cli_scan_exits_2_when_the_registry_does_not_answer():
    result = _cli_scan("127.0.0.1:1/x")
    assert result.returncode == 2, (result.returncode, result.stderr.decode())
    assert "Traceback" not in result.stderr.decode()
    assert result.stderr.strip()


async def test_a_scan_outliving_its_client_fails_instead_of_leaking_a_session(registry_http):
    async with RegistryClient(use_env_credentials=False) as client:
        scan = client.scan(f"{registry_http.host}/test/single")
    with pytest.raises(RuntimeError, match="closed"):
        async for _ in scan:
            pass


def test_cli_scan_max_rps_caps_the_request_rate(registry_http):
    host, content = registry_http.host, registry_http.content
    many = content.many_repository
    tags = sorted(content.many_tags)[:20]
    images = [f"{host}/{many}:{tag}" for tag in tags]
    result = _cli_scan(*images, "--what", "digest", "--format", "jsonl", "--max-rps", "20")
    assert result.returncode == 0, result.stderr.decode()
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert {r["tag"]: r["digest"] for r in records} == {
        tag: content.many_tags[tag].digest for tag in tags
    }
    summary = _summary(result)
    seconds = float(summary.rsplit(", ", 1)[1].removesuffix(" s"))
    # 20 HEADs at 20 per second cannot start within less than 19 intervals of 50 ms.
    assert seconds >= 19 / 20 - 0.02, summary


@pytest.mark.parametrize("value", ["0", "-3", "fast", "inf"])
def test_cli_scan_rejects_a_bad_max_rps(registry_http, value):
    result = _cli_scan(f"{registry_http.host}/x", "--max-rps", value)
    assert result.returncode == 2
    assert b"invalid rate" in result.stderr
    assert b"Traceback" not in result.stderr
