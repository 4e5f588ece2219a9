"""Behaviour a real registry will not show on demand, against an in-process server
(`support.fakes.FakeServer`).

Pagination with Link headers (distribution 2.8 does not page tags), schema 1 answers, content
that does not match its digest, malformed bodies, error bodies in text and HTML, registries
that omit Docker-Content-Digest, and Link headers that try to lead elsewhere.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import AsyncIterator

import anyio
import orjson
import pytest
from aiohttp import web
from support.content import sha
from support.fakes import DOCKER_V2, FakeServer, docker_manifest

from aioregistry import (
    DigestMismatch,
    InvalidContent,
    NotFound,
    RegistryClient,
    ResponseError,
    Retries,
    TooManyRequests,
    UnsupportedMediaType,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def fake() -> AsyncIterator[FakeServer]:
    async with FakeServer() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[RegistryClient]:
    async with RegistryClient(plain_http=True, use_env_credentials=False) as c:
        yield c


def _tags_pager(all_tags: list[str], size: int, absolute_host: str | None):
    async def handler(request: web.Request) -> web.Response:
        last = request.query.get("last")
        start = all_tags.index(last) + 1 if last else 0
        page = all_tags[start : start + size]
        headers = {}
        if start + size < len(all_tags):
            target = f"/v2/test/paged/tags/list?n={size}&last={page[-1]}"
            if absolute_host:
                target = f"http://{absolute_host}{target}"
            headers["Link"] = f'<{target}>; rel="next"'
        return web.json_response({"name": "test/paged", "tags": page}, headers=headers)

    return handler


@pytest.mark.parametrize("absolute", [False, True], ids=["relative-link", "absolute-link"])
async def test_tags_follow_link_pagination(fake, client, absolute):
    all_tags = [f"v{i:03d}" for i in range(23)]
    fake.route("GET", "/v2/test/paged/tags/list")(
        _tags_pager(all_tags, 5, fake.host if absolute else None)
    )
    tags = await client.list_tags(f"{fake.host}/test/paged")
    assert tags == all_tags
    pages = [r for r in fake.seen if r.path.endswith("/tags/list")]
    assert len(pages) == 5


async def test_pagination_that_does_not_advance_is_an_error(fake, client):
    async def loop(_: web.Request) -> web.Response:
        return web.json_response(
            {"tags": ["a"]}, headers={"Link": '</v2/test/loop/tags/list?last=a>; rel="next"'}
        )

    fake.route("GET", "/v2/test/loop/tags/list")(loop)
    with pytest.raises(InvalidContent, match="pagination does not advance"):
        await client.list_tags(f"{fake.host}/test/loop")
    assert len(fake.seen) <= 4


async def test_link_to_another_host_is_refused(fake, client):
    async def elsewhere(_: web.Request) -> web.Response:
        return web.json_response(
            {"tags": ["a"]},
            headers={"Link": '<http://127.0.0.2:9/v2/test/x/tags/list?last=a>; rel="next"'},
        )

    fake.route("GET", "/v2/test/x/tags/list")(elsewhere)
    with pytest.raises(InvalidContent, match="another host"):
        await client.list_tags(f"{fake.host}/test/x")


async def test_schema1_is_unsupported(fake, client):
    body = orjson.dumps({"schemaVersion": 1, "name": "test/old", "tag": "v1", "fsLayers": []})

    async def old(_: web.Request) -> web.Response:
        return web.Response(
            body=body,
            content_type="application/vnd.docker.distribution.manifest.v1+prettyjws",
        )

    fake.route("GET", "/v2/test/old/manifests/v1")(old)
    with pytest.raises(UnsupportedMediaType, match="schema 1"):
        await client.get_manifest(f"{fake.host}/test/old:v1")


async def test_manifest_by_digest_must_hash_to_that_digest(fake, client):
    real = docker_manifest(b'{"os":"linux","architecture":"amd64"}')
    tampered = real.replace(b'"layers":[]', b'"layers": []')

    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=tampered, content_type=DOCKER_V2)

    fake.route("GET", f"/v2/test/x/manifests/{sha(real)}")(serve)
    with pytest.raises(DigestMismatch) as info:
        await client.get_manifest(f"{fake.host}/test/x@{sha(real)}")
    assert info.value.expected == sha(real)
    assert info.value.actual == sha(tampered)


async def test_config_that_does_not_match_its_descriptor_is_rejected(fake, client):
    config = b'{"os":"linux","architecture":"amd64"}'
    manifest = docker_manifest(config)

    async def serve_manifest(_: web.Request) -> web.Response:
        return web.Response(body=manifest, content_type=DOCKER_V2)

    async def serve_config(_: web.Request) -> web.Response:
        return web.Response(body=config.replace(b"amd64", b"arm64"))

    fake.route("GET", "/v2/test/x/manifests/v1")(serve_manifest)
    fake.route("GET", f"/v2/test/x/blobs/{sha(config)}")(serve_config)
    with pytest.raises(DigestMismatch, match=sha(config)):
        await client.get_config(f"{fake.host}/test/x:v1")


async def test_missing_digest_header_falls_back_to_hashing_the_body(fake, client):
    manifest = docker_manifest(b"{}")

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=manifest, content_type=DOCKER_V2)  # no Docker-Content-Digest

    fake.route("GET", "/v2/test/x/manifests/v1")(serve)
    assert await client.get_digest(f"{fake.host}/test/x:v1") == sha(manifest)
    assert [r.method for r in fake.seen if "manifests" in r.path] == ["HEAD", "GET"]


async def test_digest_header_is_used_when_present(fake, client):
    manifest = docker_manifest(b"{}")

    async def serve(request: web.Request) -> web.Response:
        assert "application/vnd.oci.image.index.v1+json" in request.headers["Accept"]
        return web.Response(
            body=manifest, content_type=DOCKER_V2, headers={"Docker-Content-Digest": sha(manifest)}
        )

    fake.route("GET", "/v2/test/x/manifests/v1")(serve)
    assert await client.get_digest(f"{fake.host}/test/x:v1") == sha(manifest)
    assert [r.method for r in fake.seen if "manifests" in r.path] == ["HEAD"]


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b'{"schemaVersion": 2, "mediaType": "text/plain"}']
)
async def test_malformed_manifests_are_clear_errors(fake, client, body):
    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type=DOCKER_V2)

    fake.route("GET", "/v2/test/x/manifests/v1")(serve)
    with pytest.raises((InvalidContent, UnsupportedMediaType), match="manifest of"):
        await client.get_manifest(f"{fake.host}/test/x:v1")


async def test_oversized_manifest_is_refused(fake, client):
    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=b" " * (5 * 1024 * 1024), content_type=DOCKER_V2)

    fake.route("GET", "/v2/test/x/manifests/v1")(serve)
    with pytest.raises(InvalidContent, match="exceeds limit"):
        await client.get_manifest(f"{fake.host}/test/x:v1")


async def test_error_bodies_in_json_text_and_html(fake, client):
    async def oci(_: web.Request) -> web.Response:
        return web.json_response(
            {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}, status=404
        )

    async def text(_: web.Request) -> web.Response:
        return web.Response(text="backend exploded\n", status=500)

    async def html(_: web.Request) -> web.Response:
        return web.Response(text="<html><body>Bad Gateway</body></html>", status=502)

    fake.route("GET", "/v2/test/a/manifests/v1")(oci)
    fake.route("GET", "/v2/test/b/manifests/v1")(text)
    fake.route("GET", "/v2/test/c/manifests/v1")(html)
    with pytest.raises(NotFound, match="MANIFEST_UNKNOWN: manifest unknown") as nf:
        await client.get_manifest(f"{fake.host}/test/a:v1")
    assert nf.value.codes == ("MANIFEST_UNKNOWN",)
    with pytest.raises(ResponseError, match="500 Internal Server Error: backend exploded") as err:
        await client.get_manifest(f"{fake.host}/test/b:v1")
    assert err.value.status == 500
    with pytest.raises(ResponseError, match=r"502 Bad Gateway$"):
        await client.get_manifest(f"{fake.host}/test/c:v1")


async def test_redirect_to_another_host_drops_credentials(fake):
    """Blob stores redirect to a CDN: the registry's credentials must not follow."""
    config = b'{"os":"linux","architecture":"amd64"}'
    async with FakeServer("127.0.0.2") as cdn:

        async def cdn_blob(_: web.Request) -> web.Response:
            return web.Response(body=config)

        async def redirect(request: web.Request) -> web.Response:
            assert request.headers["Authorization"].startswith("Basic ")
            raise web.HTTPTemporaryRedirect(f"{cdn.url}/blob")

        cdn.route("GET", "/blob")(cdn_blob)
        fake.route("GET", f"/v2/test/x/blobs/{sha(config)}")(redirect)
        fake.challenge = 'Basic realm="fake"'
        creds = {fake.host: ("alice", "pw")}
        async with RegistryClient(credentials=creds, use_env_credentials=False) as client:
            got = await client.get_blob(f"{fake.host}/test/x", sha(config))
    assert got == config
    assert len(cdn.seen) == 1
    assert "Authorization" not in cdn.seen[0].headers


async def test_transient_errors_are_retried_then_succeed(fake):
    manifest = docker_manifest(b"{}")
    answers = iter([503, 502, 429, 200])
    seen: list[str] = []

    async def flaky(request: web.Request) -> web.Response:
        status = next(answers)
        seen.append(str(status))
        if status == 429:
            return web.Response(status=429, headers={"Retry-After": "0"})
        if status != 200:
            return web.Response(status=status, text="try again")
        return web.Response(body=manifest, content_type=DOCKER_V2)

    fake.route("GET", "/v2/test/x/manifests/v1")(flaky)
    retries = Retries(attempts=4, backoff=0.01)
    async with RegistryClient(plain_http=True, retries=retries) as client:
        got = await client.get_manifest(f"{fake.host}/test/x:v1")
        assert client.stats.retries == 3
    assert got.raw == manifest
    assert seen == ["503", "502", "429", "200"]


async def test_retries_give_up_with_the_last_error(fake):
    async def down(_: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    fake.route("GET", "/v2/test/x/manifests/v1")(down)
    async with RegistryClient(plain_http=True, retries=Retries(attempts=3, backoff=0.01)) as c:
        with pytest.raises(ResponseError, match="503 Service Unavailable: maintenance"):
            await c.get_manifest(f"{fake.host}/test/x:v1")
        assert c.stats.retries == 2
    assert len([r for r in fake.seen if r.path.endswith("/v1")]) == 3


async def test_a_long_retry_after_is_not_waited_for(fake):
    async def limited(_: web.Request) -> web.Response:
        return web.json_response(
            {"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]},
            status=429,
            headers={"Retry-After": "3600"},
        )

    fake.route("GET", "/v2/test/x/manifests/v1")(limited)
    async with RegistryClient(plain_http=True) as client:
        with pytest.raises(TooManyRequests, match="TOOMANYREQUESTS: slow down") as info:
            await client.get_manifest(f"{fake.host}/test/x:v1")
        assert client.stats.retries == 0
    assert info.value.retry_after == 3600


async def test_not_found_is_never_retried(fake, client):
    with pytest.raises(NotFound):
        await client.get_manifest(f"{fake.host}/test/none:v1")
    assert client.stats.retries == 0
    assert len([r for r in fake.seen if r.path.endswith("/none/manifests/v1")]) == 1


async def test_ctrl_c_stops_a_cli_scan_promptly_and_cleanly(fake):
    """SIGINT in the middle of a scan: exit 130 at once, a summary, no traceback."""
    tags = [f"t{i:03d}" for i in range(200)]
    manifest = docker_manifest(b"{}")

    async def tag_list(_: web.Request) -> web.Response:
        return web.json_response({"name": "test/slow", "tags": tags})

    under_way = anyio.Event()
    started_requests = 0

    async def slow(_: web.Request) -> web.Response:
        nonlocal started_requests
        started_requests += 1
        if started_requests >= 16:
            under_way.set()
        await anyio.sleep(0.5)
        return web.Response(body=manifest, content_type=DOCKER_V2)

    fake.route("GET", "/v2/test/slow/tags/list")(tag_list)
    for tag in tags:
        fake.route("GET", f"/v2/test/slow/manifests/{tag}")(slow)
    command = [sys.executable, "-m", "aioregistry", "scan", f"{fake.host}/test/slow"]
    command += ["--plain-http", "--what", "manifest", "--concurrency", "8"]
    async with await anyio.open_process(command) as process:
        with anyio.fail_after(20):
            await under_way.wait()
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        with anyio.fail_after(5):
            await process.wait()
        took = time.monotonic() - started
        assert process.stderr is not None
        assert process.stdout is not None
        err = (await process.stderr.receive()).decode()
    assert process.returncode == 130
    assert took < 2
    assert "Traceback" not in err
    assert err.startswith("aioregistry: ")
    assert " results, 0 errors" in err
