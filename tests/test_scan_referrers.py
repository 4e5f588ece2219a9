"""``scan(referrers=True)`` / ``scan --referrers``: every result with its referrers (issue 13).

On the real registry (``registry_referrers``: distribution 2.8, no referrers API, a fallback
index and cosign 2's tags) the results carry what was pushed, and the scan's own tag list
serves the lookups: the repository is listed once. An in-process registry of N tags over K
distinct digests, S of them signed, pins the requests with the API (one per distinct digest)
and without it (one probe, then a GET only for the S fallback indexes the tag list names).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from support.content import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, sha
from support.fakes import FakeServer
from support.referrers import COSIGN_SIMPLESIGNING, REPOSITORY

from aioregistry import RegistryClient, ScanResult
from aioregistry._artifacts import referrers_tag

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[RegistryClient]:
    async with RegistryClient(plain_http=True, use_env_credentials=False) as c:
        yield c


async def _scan(client: RegistryClient, *targets: str, **options: object) -> list[ScanResult]:
    async with client.scan(*targets, **options) as scan:  # type: ignore[arg-type]
        return [r async for r in scan]


# -- the real registry: no API; the fallback index and cosign's tags -------------------------


async def test_each_result_carries_its_referrers(client, registry_referrers):
    registry, content = registry_referrers
    results = await _scan(client, f"{registry.host}/{REPOSITORY}", referrers=True)
    by_tag = {r.tag: r for r in results}
    assert set(by_tag) == {"signed", "legacy", "plain"}  # the bookkeeping tags stay hidden
    assert all(r.ok for r in results)
    signed = content.images["signed"]
    stem = signed.digest.replace(":", "-")
    kinds = {r.digest: r.kind for r in by_tag["signed"].referrers or ()}
    assert kinds == {
        content.sbom.digest: "sbom",
        content.bundle.digest: "signature",
        content.attestation.digest: "attestation",
        content.cosign[f"{stem}.sig"].digest: "signature",
        content.cosign[f"{stem}.att"].digest: "attestation",
    }
    legacy_stem = content.images["legacy"].digest.replace(":", "-")
    assert {r.digest: r.kind for r in by_tag["legacy"].referrers or ()} == {
        content.cosign[f"{legacy_stem}.sig"].digest: "signature",
        content.cosign[f"{legacy_stem}.sbom"].digest: "sbom",
    }
    assert by_tag["plain"].referrers == ()


async def test_the_scans_tag_list_serves_the_lookups(client, registry_referrers):
    registry, _ = registry_referrers
    repo = f"{registry.host}/{REPOSITORY}"
    async with client.scan(repo) as scan:
        assert all(r.referrers is None for r in [r async for r in scan])  # None, not ()
    plain = scan.stats.requests
    async with client.scan(repo, referrers=True) as scan:
        [r async for r in scan]
    added = Counter(scan.stats.requests)
    added.subtract(plain)
    del added["ping"]  # the first scan's: the client is known to the registry after it
    # One tag list as before (not one more per tag); one referrers probe (404: no API);
    # the fallback index of `signed` and the two manifests that classify its entries; a
    # HEAD per cosign tag (2 of `signed`, 2 of `legacy`); nothing for `plain`.
    assert scan.stats.requests["tags"] == plain["tags"] == 1
    assert {k: n for k, n in added.items() if n} == {
        "referrers": 1,
        "manifest": 3,
        "manifest-head": 4,
    }


async def test_image_targets_list_their_repository_once(client, registry_referrers):
    registry, _ = registry_referrers
    repo = f"{registry.host}/{REPOSITORY}"
    async with client.scan(
        f"{repo}:signed", f"{repo}:plain", f"{repo}:legacy", referrers=True
    ) as scan:
        results = {r.tag: r async for r in scan}
    assert len(results["signed"].referrers or ()) == 5
    assert results["plain"].referrers == ()
    assert scan.stats.requests["tags"] == 1


# -- N tags over K digests, with the referrers API and without -------------------------------

TAGS = 40
DIGESTS = 8
SIGNED = {1, 4, 6}  # the digests (by number) that have a signature


def _manifest(number: int) -> bytes:
    config = f'{{"n":{number}}}'.encode()
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [],
    }
    return json.dumps(document).encode()


MANIFESTS = {n: _manifest(n) for n in range(DIGESTS)}
DIGEST_OF = {n: sha(raw) for n, raw in MANIFESTS.items()}


def _signature(number: int) -> dict[str, object]:
    return {
        "mediaType": OCI_MANIFEST,
        "digest": sha(f"signature of {number}".encode()),
        "size": 500 + number,
        "artifactType": COSIGN_SIMPLESIGNING,
    }


def _fake(*, api: bool) -> FakeServer:
    """Repository ``app``: tag ``t<i>`` on digest ``i % DIGESTS``; referrers of the
    `SIGNED` digests in the API, or else in fallback indexes the tag list names."""
    fake = FakeServer()
    by_name = {f"t{i}": MANIFESTS[i % DIGESTS] for i in range(TAGS)}
    by_name.update({DIGEST_OF[n]: raw for n, raw in MANIFESTS.items()})
    tags = [f"t{i}" for i in range(TAGS)]
    indexes = {}
    for n in SIGNED:
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [_signature(n)]}
        indexes[DIGEST_OF[n]] = json.dumps(body).encode()
    if not api:
        for digest, raw in indexes.items():
            by_name[referrers_tag(digest)] = raw
            tags.append(referrers_tag(digest))

    @fake.route("GET", "/v2/app/tags/list")
    async def tag_list(request: web.Request) -> web.StreamResponse:
        return web.json_response({"name": "app", "tags": tags})

    @fake.route("GET", "/v2/app/manifests/*")
    async def manifest(request: web.Request) -> web.StreamResponse:
        raw = by_name.get(request.path.rsplit("/", 1)[1])
        if raw is None:
            raise web.HTTPNotFound(text="no such manifest")
        media_type = json.loads(raw)["mediaType"]
        headers = {"Content-Type": media_type, "Docker-Content-Digest": sha(raw)}
        return web.Response(body=raw, headers=headers)

    if api:

        @fake.route("GET", "/v2/app/referrers/*")
        async def referrers(request: web.Request) -> web.StreamResponse:
            digest = request.path.rsplit("/", 1)[1]
            empty = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
            body = indexes.get(digest, empty.encode())
            return web.Response(body=body, headers={"Content-Type": OCI_INDEX})

    return fake


def _requests(fake: FakeServer) -> Counter[str]:
    def kind(request: web.Request) -> str:
        for what in ("tags", "manifests", "referrers"):
            if f"/{what}/" in request.path:
                return f"{request.method} {what}"
        return f"{request.method} {request.path}"

    return Counter(kind(r) for r in fake.seen)


async def _scan_fake(client: RegistryClient, *, api: bool) -> Counter[str]:
    """Scan the fake's N tags (``what="digest"``: a HEAD each) with their referrers, check
    every result, and give the requests the registry saw beside the listing and the HEADs."""
    async with _fake(api=api) as fake:
        results = await _scan(client, f"{fake.host}/app", what="digest", referrers=True)
    assert len(results) == TAGS
    for result in results:
        number = int(result.tag.removeprefix("t")) % DIGESTS  # type: ignore[union-attr]
        assert result.digest == DIGEST_OF[number]
        expected = [_signature(number)["digest"]] if number in SIGNED else []
        assert [r.digest for r in result.referrers or ()] == expected
        assert all(r.kind == "signature" for r in result.referrers or ())
    seen = _requests(fake)
    assert (seen.pop("GET /v2/"), seen.pop("GET tags"), seen.pop("HEAD manifests")) == (1, 1, TAGS)
    return seen


async def test_with_the_api_one_request_per_distinct_digest(client):
    assert await _scan_fake(client, api=True) == {"GET referrers": DIGESTS}


async def test_without_the_api_a_probe_then_only_the_fallback_indexes_listed(client):
    assert await _scan_fake(client, api=False) == {
        "GET referrers": 1,  # the probe: 404, so none of this host again
        "GET manifests": len(SIGNED),  # the fallback index of each signed digest
    }


async def test_a_failed_lookup_fails_the_tag_and_keeps_what_was_fetched(client):
    async with _fake(api=True) as fake:

        @fake.route("GET", "/v2/app/referrers/*")
        async def denied(request: web.Request) -> web.StreamResponse:
            body = {"errors": [{"code": "DENIED", "message": "no referrers for you"}]}
            return web.json_response(body, status=403)

        results = await _scan(client, f"{fake.host}/app:t1", what="digest", referrers=True)
    (result,) = results
    assert result.digest == DIGEST_OF[1]
    assert result.referrers is None
    assert result.error is not None
    assert "no referrers for you" in result.error.message


# -- the command line -----------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aioregistry", "scan", *args],
        capture_output=True,
        env=dict(os.environ),
        timeout=60,
        check=False,
    )


def test_cli_json_has_each_results_referrers(registry_referrers):
    registry, content = registry_referrers
    repo = f"{registry.host}/{REPOSITORY}"
    done = _cli(repo, "--referrers", "--format", "json")
    assert done.returncode == 0, done.stderr.decode()
    rows = {row["tag"]: row for row in json.loads(done.stdout)}
    entry = next(e for e in rows["signed"]["referrers"] if e["digest"] == content.sbom.digest)
    assert entry == {
        "mediaType": OCI_MANIFEST,
        "digest": content.sbom.digest,
        "size": content.sbom.size,
        "artifactType": "application/spdx+json",
        "annotations": content.sbom.annotations,
        "kind": "sbom",
    }
    assert rows["plain"]["referrers"] == []
    assert "referrers 1" in done.stderr.decode()  # the summary counts the probe
    without = _cli(repo, "--format", "json")
    assert all("referrers" not in row for row in json.loads(without.stdout))


def test_cli_table_has_a_referrers_column(registry_referrers):
    registry, _ = registry_referrers
    done = _cli(f"{registry.host}/{REPOSITORY}", "--referrers", "--format", "table")
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert "REFERRERS" in lines[1]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert rows[f"{REPOSITORY}:signed"].rstrip().endswith("2 signature, sbom, 2 attestation")
    assert rows[f"{REPOSITORY}:legacy"].rstrip().endswith("signature, sbom")
    assert rows[f"{REPOSITORY}:plain"].rstrip().endswith("none")
    plain = _cli(f"{registry.host}/{REPOSITORY}", "--format", "table")
    assert "REFERRERS" not in plain.stdout.decode()


UNSIGNED = 'select(all(.referrers[]; .kind != "signature")) | .tag'


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_readme_recipe_which_tags_are_unsigned(registry_referrers):
    registry, _ = registry_referrers
    done = _cli(f"{registry.host}/{REPOSITORY}", "--referrers", "--what", "digest")
    assert done.returncode == 0, done.stderr.decode()
    jq = subprocess.run(["jq", "-r", UNSIGNED], input=done.stdout, capture_output=True, check=True)
    assert jq.stdout.decode().split() == ["plain"]
    assert UNSIGNED in (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


async def test_the_lookup_runs_beside_the_images_requests(client):
    # The config blob is served only once the referrers request has arrived: a scan that
    # looked up referrers after the image would wait here in vain.
    looked_up = asyncio.Event()
    async with _fake(api=True) as fake:
        served = fake.routes[("GET", "/v2/app/referrers/*")]

        async def referrers(request: web.Request) -> web.StreamResponse:
            looked_up.set()
            return await served(request)

        fake.route("GET", "/v2/app/referrers/*")(referrers)

        @fake.route("GET", "/v2/app/blobs/*")
        async def blob(request: web.Request) -> web.StreamResponse:
            try:
                await asyncio.wait_for(looked_up.wait(), 5)
            except TimeoutError:
                raise web.HTTPNotFound(text="the referrers were not asked for first") from None
            return web.Response(body=b'{"n":1}')

        (result,) = await _scan(client, f"{fake.host}/app:t1", referrers=True)
    assert result.ok, result.error
    assert result.config is not None
    assert [r.digest for r in result.referrers or ()] == [_signature(1)["digest"]]
