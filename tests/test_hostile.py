"""Hostile servers (issue #5): what a malicious or broken registry must not get away with.

In-process servers (`support.fakes.FakeServer`) on loopback; ``127.0.0.2`` plays another
host. Each case: oversize bodies are cut off with an error, pagination that never ends stops,
content that does not match its digest is an error, credentials never follow a redirect to
another host nor go to a realm that is not http(s), and secrets never reach an exception's
message or repr.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable

import anyio
import pytest
from aiohttp import web
from support.content import sha
from support.fakes import DOCKER_V2, FakeServer, Handler, docker_manifest

from aioregistry import (
    AuthenticationError,
    DigestMismatch,
    InvalidContent,
    RegistryClient,
    RegistryError,
    ResponseError,
    Retries,
    TransportError,
    Unauthorized,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

MIB = 1024 * 1024
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
MANIFEST = docker_manifest(CONFIG)
PASSWORD = "s3cret-Pa55word"
TOKEN = "tok-" + "Zm9vYmFy" * 8
BASIC = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, TOKEN, BASIC)
NO_RETRIES = Retries(attempts=1)


@pytest.fixture
async def fake() -> AsyncIterator[FakeServer]:
    async with FakeServer() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[RegistryClient]:
    async with RegistryClient(plain_http=True, use_env_credentials=False, retries=NO_RETRIES) as c:
        yield c


class Stream:
    """A handler that streams ``chunk`` forever (or up to ``declared`` bytes, announced in
    Content-Length) and notes when the client cut the connection."""

    def __init__(
        self, *, declared: int | None = None, status: int = 200, content_type: str = DOCKER_V2
    ) -> None:
        self.declared = declared
        self.status = status
        self.content_type = content_type
        self.sent = 0
        self.cut = anyio.Event()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            status=self.status, headers={"Content-Type": self.content_type}
        )
        if self.declared is not None:
            response.content_length = self.declared
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b" " * 65536
        try:
            while self.declared is None or self.sent + len(chunk) <= self.declared:
                await response.write(chunk)
                self.sent += len(chunk)
        except (ConnectionError, asyncio.CancelledError):
            self.cut.set()
            raise
        return response

    async def wait_cut(self) -> None:
        with anyio.fail_after(10):
            await self.cut.wait()


# -- size caps ---------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [64 * MIB, None], ids=["content-length", "chunked"])
async def test_oversize_manifest_is_refused_and_the_connection_cut(fake, client, declared):
    stream = Stream(declared=declared)
    fake.route("GET", "/v2/x/manifests/v1")(stream)
    with pytest.raises(InvalidContent, match="exceeds limit of 4194304"):
        await client.get_manifest(f"{fake.host}/x:v1")
    await stream.wait_cut()
    assert stream.sent < 24 * MIB  # the cap plus what socket buffers hold, not the whole body


async def test_config_longer_than_its_descriptor_is_cut_off(fake, client):
    stream = Stream(content_type="application/octet-stream")

    async def manifest(_: web.Request) -> web.Response:
        return web.Response(body=MANIFEST, content_type=DOCKER_V2)

    fake.route("GET", "/v2/x/manifests/v1")(manifest)
    fake.route("GET", f"/v2/x/blobs/{sha(CONFIG)}")(stream)
    with pytest.raises(InvalidContent, match=f"limit of {len(CONFIG)} bytes"):
        await client.get_config(f"{fake.host}/x:v1")
    await stream.wait_cut()


@pytest.mark.parametrize("declared", [8 * MIB, None], ids=["content-length", "chunked"])
async def test_token_answer_bigger_than_its_cap_is_refused(fake, client, declared):
    async with FakeServer() as realm:
        stream = Stream(declared=declared, content_type="application/json")
        realm.route("GET", "/token")(stream)
        fake.challenge = f'Bearer realm="{realm.url}/token",service="fake"'
        with pytest.raises(InvalidContent, match="exceeds limit of 1048576"):
            await client.get_manifest(f"{fake.host}/x:v1")
        await stream.wait_cut()
    assert len(realm.seen) == 1


async def test_error_body_bigger_than_its_cap_gives_a_short_clean_message(fake, client):
    stream = Stream(status=500, content_type="text/plain")
    fake.route("GET", "/v2/x/manifests/v1")(stream)
    with pytest.raises(ResponseError) as info:
        await client.get_manifest(f"{fake.host}/x:v1")
    await stream.wait_cut()
    message = str(info.value)
    assert info.value.status == 500
    assert message.startswith(f"manifest of {fake.host}/x:v1: GET ")
    assert "\n" not in message
    assert len(message) < 400
    assert len(info.value.body) <= 2048


@pytest.mark.parametrize(
    "answer",
    [
        web.Response(status=500, text="\x1b[2J\x1b[31mdisk on fire\x1b[0m\rfake prompt$ "),
        web.json_response(
            {"errors": [{"code": "UNKNOWN", "message": "line\n" * 10000 + "\x1b[2J"}]},
            status=500,
        ),
    ],
    ids=["terminal-escapes", "huge-multiline-json-message"],
)
async def test_error_messages_are_one_short_printable_line(fake, client, answer):
    async def serve(_: web.Request) -> web.Response:
        return answer

    fake.route("GET", "/v2/x/manifests/v1")(serve)
    with pytest.raises(ResponseError) as info:
        await client.get_manifest(f"{fake.host}/x:v1")
    message = str(info.value)
    assert message.isprintable(), message[:300]
    assert len(message) < 1000


# -- pagination --------------------------------------------------------------------------


async def test_pagination_that_only_repeats_itself_under_new_links_stops(fake, client):
    pages = 0

    async def page(_: web.Request) -> web.Response:
        nonlocal pages
        pages += 1
        headers = {"Link": f'</v2/x/tags/list?last=b&page={pages}>; rel="next"'}
        if pages >= 200:  # the server gives up first only if the client never does
            headers = {}
        return web.json_response({"name": "x", "tags": ["a", "b"]}, headers=headers)

    fake.route("GET", "/v2/x/tags/list")(page)
    with pytest.raises(InvalidContent, match="pagination does not advance"):
        await client.list_tags(f"{fake.host}/x")
    assert pages <= 3


async def test_pagination_that_never_ends_stops_at_the_page_cap(fake, client, monkeypatch):
    import aioregistry._pages  # noqa: PLC0415  (the cap is 100,000 pages; 30 will do here)

    monkeypatch.setattr(aioregistry._pages, "MAX_PAGES", 30)
    pages = 0

    async def page(_: web.Request) -> web.Response:
        nonlocal pages
        pages += 1  # every page new, with new tags: only a cap can end this
        headers = {"Link": f'</v2/x/tags/list?last=t{pages}&n=1>; rel="next"'}
        return web.json_response({"name": "x", "tags": [f"t{pages}"]}, headers=headers)

    fake.route("GET", "/v2/x/tags/list")(page)
    with pytest.raises(InvalidContent, match="more than 30 pages"):
        await client.list_tags(f"{fake.host}/x")
    assert pages == 30


@pytest.mark.parametrize(
    "target",
    ["http://[::1/v2/x/tags/list", "http://{host}:99999/x", "javascript:alert(1)", "//127.0.0.2/x"],
)
async def test_a_next_link_that_is_no_url_of_this_registry_is_an_error(fake, client, target):
    async def page(_: web.Request) -> web.Response:
        link = target.format(host=fake.host.partition(":")[0])
        return web.json_response({"tags": ["a"]}, headers={"Link": f'<{link}>; rel="next"'})

    fake.route("GET", "/v2/x/tags/list")(page)
    with pytest.raises(InvalidContent, match="next page link"):
        await client.list_tags(f"{fake.host}/x")
    assert len(fake.seen) == 2  # /v2/ and the first page: the link was never followed


# -- digests -----------------------------------------------------------------------------


def _serve_manifest(body: bytes, header: str | None) -> Handler:
    async def serve(_: web.Request) -> web.Response:
        headers = {"Docker-Content-Digest": header} if header else {}
        return web.Response(body=body, content_type=DOCKER_V2, headers=headers)

    return serve


async def _serve_config(_: web.Request) -> web.Response:
    return web.Response(body=CONFIG, content_type="application/octet-stream")


async def test_a_right_digest_header_on_a_tag_get_is_accepted(fake, client):
    fake.route("GET", "/v2/x/manifests/v1")(_serve_manifest(MANIFEST, sha(MANIFEST)))
    manifest = await client.get_manifest(f"{fake.host}/x:v1")
    assert manifest.digest == sha(MANIFEST)
    assert manifest.raw == MANIFEST


async def test_a_wrong_digest_header_on_a_tag_get_is_a_digest_mismatch(fake, client):
    claimed = sha(b"some other manifest")
    fake.route("GET", "/v2/x/manifests/v1")(_serve_manifest(MANIFEST, claimed))
    with pytest.raises(DigestMismatch) as info:
        await client.get_manifest(f"{fake.host}/x:v1")
    assert {info.value.expected, info.value.actual} == {claimed, sha(MANIFEST)}
    with pytest.raises(DigestMismatch):
        await client.fetch_manifest(f"{fake.host}/x:v1")


async def test_a_wrong_digest_header_fails_that_tag_of_a_scan_and_no_other(fake, client):
    async def tags(_: web.Request) -> web.Response:
        return web.json_response({"name": "x", "tags": ["good1", "bad", "good2"]})

    fake.route("GET", "/v2/x/tags/list")(tags)
    for tag in ("good1", "good2"):
        fake.route("GET", f"/v2/x/manifests/{tag}")(_serve_manifest(MANIFEST, sha(MANIFEST)))
    fake.route("GET", "/v2/x/manifests/bad")(_serve_manifest(MANIFEST, sha(b"lies")))
    fake.route("GET", f"/v2/x/blobs/{sha(CONFIG)}")(_serve_config)
    async with client.scan(f"{fake.host}/x", what="config") as scan:
        results = {r.tag: r for r in [r async for r in scan]}
    assert sorted(results) == ["bad", "good1", "good2"]
    for tag in ("good1", "good2"):
        assert results[tag].error is None
        assert results[tag].digest == sha(MANIFEST)
    bad = results["bad"]
    assert bad.error is not None
    assert isinstance(bad.error.exception, DigestMismatch)
    assert bad.digest != sha(b"lies")  # the claim that disagreed is never reported as fact


async def test_a_tampered_blob_is_a_digest_mismatch(fake, client):
    async def tampered(_: web.Request) -> web.Response:
        return web.Response(body=CONFIG.replace(b"amd64", b"arm64"))

    fake.route("GET", f"/v2/x/blobs/{sha(CONFIG)}")(tampered)
    with pytest.raises(DigestMismatch) as info:
        await client.get_blob(f"{fake.host}/x", sha(CONFIG))  # no size to check it by
    assert info.value.expected == sha(CONFIG)


async def test_a_tampered_blob_behind_a_redirect_is_a_digest_mismatch(fake, client):
    async with FakeServer("127.0.0.2") as cdn:

        async def tampered(_: web.Request) -> web.Response:
            return web.Response(body=CONFIG.replace(b"linux", b"Linux"))

        async def redirect(_: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(f"{cdn.url}/blob")

        cdn.route("GET", "/blob")(tampered)
        fake.route("GET", "/v2/x/manifests/v1")(_serve_manifest(MANIFEST, sha(MANIFEST)))
        fake.route("GET", f"/v2/x/blobs/{sha(CONFIG)}")(redirect)
        with pytest.raises(DigestMismatch, match=sha(CONFIG)):
            await client.get_config(f"{fake.host}/x:v1")
    assert len(cdn.seen) == 1


# -- credentials and other hosts ---------------------------------------------------------


@pytest.fixture
async def realm() -> AsyncIterator[FakeServer]:
    """A token server: alice with PASSWORD gets TOKEN, anyone else a 401."""
    async with FakeServer() as server:

        async def token(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != f"Basic {BASIC}":
                return web.json_response(
                    {"errors": [{"code": "UNAUTHORIZED", "message": "who are you"}]}, status=401
                )
            return web.json_response({"token": TOKEN, "expires_in": 300})

        server.route("GET", "/token")(token)
        yield server


def _bearer(realm: FakeServer) -> str:
    return f'Bearer realm="{realm.url}/token",service="fake"'


def _alice(fake: FakeServer, **options: object) -> RegistryClient:
    return RegistryClient(
        credentials={fake.host: ("alice", PASSWORD)},
        use_env_credentials=False,
        plain_http=True,
        retries=NO_RETRIES,
        **options,  # type: ignore[arg-type]
    )


async def test_a_bearer_token_does_not_follow_a_blob_redirect_to_another_host(fake, realm):
    async with FakeServer("127.0.0.2") as cdn:

        async def blob(_: web.Request) -> web.Response:
            return web.Response(body=CONFIG)

        async def redirect(request: web.Request) -> web.Response:
            assert request.headers["Authorization"] == f"Bearer {TOKEN}"
            raise web.HTTPTemporaryRedirect(f"{cdn.url}/blob?sig=abc")

        cdn.route("GET", "/blob")(blob)
        fake.route("GET", f"/v2/x/blobs/{sha(CONFIG)}")(redirect)
        fake.challenge = _bearer(realm)
        async with _alice(fake) as client:
            assert await client.get_blob(f"{fake.host}/x", sha(CONFIG)) == CONFIG
    assert len(fake.requests_to(f"/v2/x/blobs/{sha(CONFIG)}")) == 1
    assert len(cdn.seen) == 1
    assert "Authorization" not in cdn.seen[0].headers


async def test_a_challenge_from_a_redirect_target_gets_no_credentials(fake, realm):
    async with FakeServer("127.0.0.2") as cdn:
        cdn.challenge = f'Bearer realm="{cdn.url}/token",service="evil"'

        async def redirect(_: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(f"{cdn.url}/blob")

        fake.route("GET", f"/v2/x/blobs/{sha(CONFIG)}")(redirect)
        fake.challenge = _bearer(realm)
        async with _alice(fake) as client:
            with pytest.raises(RegistryError):
                await client.get_blob(f"{fake.host}/x", sha(CONFIG))
    assert cdn.seen, "the redirect was not followed: the test proves nothing"
    assert not cdn.requests_to("/token"), "credentials went to a realm another host named"
    assert all("Authorization" not in r.headers for r in cdn.seen)


class Listener:
    """A TCP port that counts connections: where a bad realm points, to prove none is made."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Listener:
        def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self._server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


BAD_REALMS: list[Callable[[int], str]] = [
    lambda port: f"ftp://127.0.0.1:{port}/token",
    lambda port: f"file://127.0.0.1:{port}/etc/passwd",
    lambda port: f"javascript:fetch('http://127.0.0.1:{port}/')",
    lambda port: f"gopher://127.0.0.1:{port}/token",
    lambda port: f"//127.0.0.1:{port}/token",
    lambda port: "http:///token",
]
BAD_REALM_IDS = ["ftp", "file", "javascript", "gopher", "scheme-relative", "no-host"]


@pytest.mark.parametrize("make_realm", BAD_REALMS, ids=BAD_REALM_IDS)
async def test_a_realm_that_is_not_http_is_refused_before_any_request(fake, make_realm):
    async with Listener() as listener:
        realm = make_realm(listener.port)
        fake.challenge = f'Bearer realm="{realm}",service="fake"'
        async with _alice(fake) as client:
            with pytest.raises(AuthenticationError) as info:
                await client.get_manifest(f"{fake.host}/x:v1")
    assert repr(realm) in str(info.value)
    assert listener.connections == 0
    assert [r.path for r in fake.seen] == ["/v2/"]


@pytest.mark.parametrize("make_realm", BAD_REALMS[:3], ids=BAD_REALM_IDS[:3])
async def test_a_bad_realm_in_a_later_challenge_is_refused_too(fake, realm, make_realm):
    """/v2/ names a good realm; the manifest's 401 then names a bad one."""
    async with Listener() as listener:
        bad = make_realm(listener.port)

        async def refuse(_: web.Request) -> web.Response:
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED", "message": "token expired"}]},
                status=401,
                headers={"WWW-Authenticate": f'Bearer realm="{bad}",error="invalid_token"'},
            )

        fake.challenge = _bearer(realm)
        fake.route("GET", "/v2/x/manifests/v1")(refuse)
        async with _alice(fake) as client:
            with pytest.raises(AuthenticationError, match="unusable token realm"):
                await client.get_manifest(f"{fake.host}/x:v1")
    assert listener.connections == 0
    assert len(realm.seen) == 1


# -- secrets stay secret -----------------------------------------------------------------


def _leaks(exc: BaseException) -> list[str]:
    """Where a secret shows: the message and repr of ``exc``, the messages of its causes."""
    found = []
    for secret in SECRETS:
        if secret in str(exc) or secret in repr(exc):
            found.append(f"{type(exc).__name__}: {secret[:6]}...")
        cause = exc.__cause__ or exc.__context__
        while cause is not None:
            if secret in str(cause):
                found.append(f"cause {type(cause).__name__}: {secret[:6]}...")
            cause = cause.__cause__ or cause.__context__
    return found


async def test_secrets_stay_out_of_errors_when_the_password_is_wrong(fake, realm):
    fake.challenge = _bearer(realm)
    async with RegistryClient(
        credentials={fake.host: ("alice", PASSWORD + "-wrong")},
        use_env_credentials=False,
        plain_http=True,
    ) as client:
        with pytest.raises(Unauthorized) as info:
            await client.get_manifest(f"{fake.host}/x:v1")
        assert "'alice'" in str(info.value)
        assert PASSWORD not in str(info.value)
        assert PASSWORD not in repr(info.value)
        assert PASSWORD not in repr(client)


async def test_secrets_stay_out_of_errors_when_the_token_is_refused(fake, realm):
    async def refuse(_: web.Request) -> web.Response:
        return web.json_response(
            {"errors": [{"code": "UNAUTHORIZED", "message": "bad token"}]},
            status=401,
            headers={"WWW-Authenticate": _bearer(realm) + ',error="invalid_token"'},
        )

    fake.challenge = _bearer(realm)
    fake.route("GET", "/v2/x/manifests/v1")(refuse)
    async with _alice(fake) as client:
        token = await client.get_token(f"{fake.host}/x")
        assert token.value == TOKEN
        with pytest.raises(Unauthorized) as info:
            await client.get_manifest(f"{fake.host}/x:v1")
        assert _leaks(info.value) == []
        assert len(realm.seen) == 2  # the first token, and one renewal after the 401
        for shown in (repr(token), repr(client), repr(client.stats)):
            assert not [s for s in SECRETS if s in shown], shown
        async with client.scan(f"{fake.host}/x:v1") as scan:
            (result,) = [r async for r in scan]
        assert result.error is not None
        assert not [s for s in SECRETS if s in repr(result) or s in json.dumps(result.to_json())]


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
async def test_secrets_stay_out_of_a_redirect_loop_error(fake, realm, scheme):
    async def loop(_: web.Request) -> web.Response:
        raise web.HTTPFound(f"/v2/x/blobs/{sha(CONFIG)}")

    fake.route("GET", f"/v2/x/blobs/{sha(CONFIG)}")(loop)
    fake.challenge = 'Basic realm="fake"' if scheme == "basic" else _bearer(realm)
    async with _alice(fake) as client:
        with pytest.raises(TransportError) as info:
            await client.get_blob(f"{fake.host}/x", sha(CONFIG))
    assert _leaks(info.value) == []


async def test_an_error_body_echoing_the_credentials_does_not_leak_them(fake, realm):
    async def echo(request: web.Request) -> web.Response:
        return web.Response(
            status=500, text=f"bad request: Authorization: {request.headers['Authorization']}"
        )

    fake.route("GET", "/v2/x/manifests/v1")(echo)
    fake.challenge = _bearer(realm)
    async with _alice(fake) as client:
        with pytest.raises(ResponseError) as info:
            await client.get_manifest(f"{fake.host}/x:v1")
    assert _leaks(info.value) == []
