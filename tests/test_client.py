"""Every operation against a real registry (distribution 2.8) over anonymous plain HTTP.

The registry is on loopback and the client is given no ``plain_http``: it tries HTTPS, is
refused, and falls back to HTTP as it should for a loopback host. Every answer is compared
byte for byte with what the fixture pushed, and digests are recomputed from the bytes.
"""

from __future__ import annotations

import aiohttp
import anyio
import pytest
from support.content import PushedImage, PushedIndex, sha

from aioregistry import (
    ImageIndex,
    ImageManifest,
    InvalidPlatform,
    InvalidReference,
    NoMatchingPlatform,
    NotFound,
    Platform,
    RegistryClient,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client():
    async with RegistryClient(use_env_credentials=False) as c:
        yield c


@pytest.fixture
def reg(registry_http):
    return registry_http


def _all_tags(reg):
    return sorted(reg.content.tags.items())


async def test_list_tags_of_every_repository(client, reg):
    for repository in reg.content.repositories:
        tags = await client.list_tags(f"{reg.host}/{repository}")
        assert sorted(tags) == reg.content.tags_of(repository), repository
    assert len(reg.content.tags_of(reg.content.many_repository)) >= 300


async def test_digest_of_every_tag_is_what_was_pushed(client, reg):
    for ref, pushed in _all_tags(reg):
        assert await client.get_digest(f"{reg.host}/{ref}") == pushed.digest, ref
        assert pushed.digest == sha(pushed.raw)


async def test_digest_for_a_platform(client, reg):
    for tag in ("docker", "oci"):
        index = reg.content.get(f"test/multi:{tag}")
        assert isinstance(index, PushedIndex)
        for platform in ("linux/amd64", "linux/arm64/v8", "linux/arm/v7"):
            got = await client.get_digest(f"{reg.host}/test/multi:{tag}", platform=platform)
            assert got == index.child(platform).digest, (tag, platform)
        # No variant asked: any arm64 matches; default variant v8 is implied for arm64.
        got = await client.get_digest(f"{reg.host}/test/multi:{tag}", platform="linux/arm64")
        assert got == index.child("linux/arm64/v8").digest
    single = reg.content.get("test/single:v1")
    got = await client.get_digest(f"{reg.host}/test/single:v1", platform="linux/arm64")
    assert got == single.digest  # not multi-arch: the manifest itself


async def test_manifest_of_single_arch_images(client, reg):
    for ref in ("test/single:v1", "test/single:latest", "test/oci:v1", "org/team/app:1.0"):
        pushed = reg.content.get(ref)
        assert isinstance(pushed, PushedImage)
        manifest = await client.get_manifest(f"{reg.host}/{ref}")
        assert manifest.raw == pushed.raw
        assert manifest.digest == sha(manifest.raw) == pushed.digest
        assert manifest.media_type == pushed.media_type
        assert manifest.config.digest == pushed.config_digest
        assert [layer.digest for layer in manifest.layers] == [b.digest for b in pushed.layers]


async def test_manifest_of_multi_arch_tags_resolves_the_platform(client, reg):
    for tag in ("docker", "oci"):
        index = reg.content.get(f"test/multi:{tag}")
        assert isinstance(index, PushedIndex)
        default = await client.get_manifest(f"{reg.host}/test/multi:{tag}")
        assert default.raw == index.child("linux/amd64").raw
        for platform in ("linux/arm64/v8", "linux/arm/v7"):
            manifest = await client.get_manifest(f"{reg.host}/test/multi:{tag}", platform=platform)
            assert manifest.raw == index.child(platform).raw
            assert manifest.digest == index.child(platform).digest


async def test_attestations_are_never_chosen(client, reg):
    index = reg.content.get("test/multi:oci")
    assert isinstance(index, PushedIndex)
    assert index.children[0].platform == "unknown/unknown"  # first in the index
    listed = await client.get_manifest_list(f"{reg.host}/test/multi:oci")
    assert isinstance(listed, ImageIndex)
    assert [str(p) for p in listed.platforms] == ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
    with pytest.raises(NoMatchingPlatform, match="unknown/unknown"):
        await client.get_manifest(f"{reg.host}/test/multi:oci", platform="unknown/unknown")
    with pytest.raises(NoMatchingPlatform, match=r"windows/amd64.*available: linux/amd64"):
        await client.get_manifest(f"{reg.host}/test/multi:oci", platform="windows/amd64")


async def test_manifest_list_as_sent_or_the_manifest_when_single_arch(client, reg):
    for tag in ("docker", "oci"):
        index = reg.content.get(f"test/multi:{tag}")
        got = await client.get_manifest_list(f"{reg.host}/test/multi:{tag}")
        assert isinstance(got, ImageIndex)
        assert got.raw == index.raw
        assert got.digest == index.digest
        assert got.media_type == index.media_type
        assert [d.digest for d in got.manifests] == [c.digest for c in index.children]
    single = await client.get_manifest_list(f"{reg.host}/test/single:v1")
    assert isinstance(single, ImageManifest)
    assert single.raw == reg.content.get("test/single:v1").raw


async def test_config_blobs(client, reg):
    for ref in ("test/single:v1", "test/oci:v1", "org/team/app:1.0"):
        pushed = reg.content.get(ref)
        assert isinstance(pushed, PushedImage)
        config = await client.get_config(f"{reg.host}/{ref}")
        assert config.raw == pushed.config_raw
        assert config.digest == sha(config.raw) == pushed.config_digest
        assert str(config.platform) == pushed.platform
    index = reg.content.get("test/multi:oci")
    assert isinstance(index, PushedIndex)
    config = await client.get_config(f"{reg.host}/test/multi:oci", platform="linux/arm/v7")
    assert config.raw == index.child("linux/arm/v7").config_raw
    assert config.platform == Platform("linux", "arm", "v7")


async def test_plugin_repository(client, reg):
    pushed = reg.content.get("test/plugin:latest")
    assert isinstance(pushed, PushedImage)
    ref = f"{reg.host}/test/plugin:latest"
    manifest = await client.get_manifest(ref, repo_type="plugin")
    assert manifest.raw == pushed.raw
    assert manifest.is_plugin
    config = await client.get_config(ref, repo_type="plugin")
    assert config.raw == pushed.config_raw
    assert config.media_type == "application/vnd.docker.plugin.v1+json"
    assert config.platform is None
    assert "interface" in config.data
    assert await client.list_tags(f"{reg.host}/test/plugin", repo_type="plugin") == ["latest"]
    assert await client.get_digest(ref, repo_type="plugin") == pushed.digest


async def test_by_digest(client, reg):
    index = reg.content.get("test/multi:oci")
    assert isinstance(index, PushedIndex)
    child = index.child("linux/arm64/v8")
    manifest = await client.get_manifest(f"{reg.host}/test/multi@{child.digest}")
    assert manifest.raw == child.raw
    assert await client.get_digest(f"{reg.host}/test/multi@{child.digest}") == child.digest
    # tag and digest: the digest wins.
    manifest = await client.get_manifest(f"{reg.host}/test/multi:docker@{child.digest}")
    assert manifest.raw == child.raw


async def test_catalog_paginates_against_the_real_registry(client, reg):
    repos = await client.catalog(reg.host, page_size=3)
    assert repos == reg.content.repositories
    pages = [
        e for e in reg.access_log() if e["path"].startswith("/v2/_catalog") and e["status"] == 200
    ]
    assert len(pages) >= -(-len(repos) // 3)


async def test_unknown_repository_and_tag_are_not_found(client, reg):
    with pytest.raises(NotFound, match="NAME_UNKNOWN"):
        await client.list_tags(f"{reg.host}/test/nonexistent")
    with pytest.raises(NotFound, match="MANIFEST_UNKNOWN") as info:
        await client.get_manifest(f"{reg.host}/test/single:nope")
    assert info.value.status == 404
    with pytest.raises(NotFound):
        await client.get_digest(f"{reg.host}/test/single:nope")
    with pytest.raises(NotFound):
        await client.get_config(f"{reg.host}/nothing/here:v1")


async def test_bad_platform_is_a_usage_error(client, reg):
    with pytest.raises(InvalidPlatform, match="'linux'"):
        await client.get_manifest(f"{reg.host}/test/multi:oci", platform="linux")


async def test_many_concurrent_calls_share_the_client(client, reg):
    many = reg.content.many_tags
    results: dict[str, str] = {}

    async def one(tag: str) -> None:
        results[tag] = await client.get_digest(f"{reg.host}/{reg.content.many_repository}:{tag}")

    async with anyio.create_task_group() as tg:
        for tag in many:
            tg.start_soon(one, tag)
    assert results == {tag: image.digest for tag, image in many.items()}
    # The host is pinged (over HTTPS, refused, then HTTP), then a digest costs one HEAD, and
    # one more where its answer was late and hedged (a loaded machine makes some late).
    hedges = client.stats.hedges
    assert hedges <= 0.05 * len(many) + 20  # the hedging budget
    assert client.stats.requests == {"ping": 2, "manifest-head": len(many) + hedges}


async def test_client_cannot_be_reopened_or_used_closed():
    client = RegistryClient()
    with pytest.raises(RuntimeError, match="async with"):
        await client.list_tags("127.0.0.1:1/x")
    async with client:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        await client.list_tags("127.0.0.1:1/x")
    with pytest.raises(RuntimeError, match="reopened"):
        await client.__aenter__()


async def test_catalog_needs_a_registry_host():
    async with RegistryClient() as client:
        with pytest.raises(InvalidReference, match='invalid registry "myregistry"'):
            await client.catalog("myregistry")
        with pytest.raises(InvalidReference, match='invalid registry "myregistry"'):
            client.scan(catalog="myregistry")
        assert client.stats.total_requests == 0


async def test_an_injected_session_is_used_and_left_open(reg):
    async with aiohttp.ClientSession() as session:
        async with RegistryClient(session=session) as client:
            digest = await client.get_digest(f"{reg.host}/test/single:v1")
        assert digest == reg.content.get("test/single:v1").digest
        assert not session.closed
        async with session.get(f"http://{reg.host}/v2/") as resp:
            assert resp.status == 200
