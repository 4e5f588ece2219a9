"""The registry fixtures themselves: each mode answers as expected and holds the pushed content.

These use raw aiohttp, never ``aioregistry``: they check the oracle, not the client.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
from urllib.parse import urljoin

import aiohttp
import pytest
from cryptography import x509
from support.content import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    PushedImage,
    PushedIndex,
    sha,
)
from support.tokens import decode_jwt_unverified, parse_scope

pytestmark = pytest.mark.anyio


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def _token(
    session: aiohttp.ClientSession, issuer, *scopes: str, user: tuple[str, str] | None = None
) -> str:
    params = [("service", issuer.service)] + [("scope", scope) for scope in scopes]
    headers = _basic(*user) if user else {}
    async with session.get(issuer.realm, params=params, headers=headers) as resp:
        assert resp.status == 200
        body = json.loads(await resp.read())
    assert body["token"] == body["access_token"]
    return body["token"]


async def test_http_v2_root(registry_http):
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{registry_http.url}/v2/") as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


async def test_basic_challenge_then_credentials_over_verified_tls(registry_basic):
    assert registry_basic.url.startswith("https://127.0.0.1:")
    context = registry_basic.ssl_context()
    context.verify_flags |= ssl.VERIFY_X509_STRICT  # the default from Python 3.13 on
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(f"https://localhost:{registry_basic.port}/v2/") as resp:
            assert resp.status == 401  # the DNS name in the certificate verifies too
        async with session.get(f"{registry_basic.url}/v2/") as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
        async with session.get(f"{registry_basic.url}/v2/", headers=_basic("alice", "x")) as resp:
            assert resp.status == 401
        async with session.get(
            f"{registry_basic.url}/v2/", headers=_basic("alice", "wonderland")
        ) as resp:
            assert resp.status == 200
        image = registry_basic.content.get("org/team/app:1.0")
        async with session.get(
            f"{registry_basic.url}/v2/org/team/app/manifests/1.0",
            headers={**_basic("alice", "wonderland"), "Accept": DOCKER_MANIFEST},
        ) as resp:
            assert resp.status == 200
            assert await resp.read() == image.raw


async def test_basic_tls_is_not_trusted_without_the_test_ca(registry_basic):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=True)) as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"{registry_basic.url}/v2/")


def test_server_certificate_covers_loopback_names(registry_certs):
    sans = registry_certs.server_cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    ips = sans.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("127.0.0.1") in ips
    assert ipaddress.ip_address("127.0.0.2") in ips


async def test_token_challenge_and_pull(registry_token, fresh_issuer):
    image = registry_token.content.get("test/single:v1")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{registry_token.url}/v2/") as resp:
            assert resp.status == 401
            challenge = resp.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'realm="{fresh_issuer.realm}"' in challenge
        assert f'service="{fresh_issuer.service}"' in challenge

        url = f"{registry_token.url}/v2/test/single/manifests/v1"
        async with session.get(url, headers={"Accept": DOCKER_MANIFEST}) as resp:
            assert resp.status == 401
            assert 'scope="repository:test/single:pull"' in resp.headers["WWW-Authenticate"]

        token = await _token(session, fresh_issuer, "repository:test/single:pull")
        headers = {"Accept": DOCKER_MANIFEST, "Authorization": f"Bearer {token}"}
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == DOCKER_MANIFEST
            assert resp.headers["Docker-Content-Digest"] == image.digest
            assert await resp.read() == image.raw

    header, claims = decode_jwt_unverified(token)
    assert header["alg"] == "ES256"
    assert header["typ"] == "JWT"
    assert len(header["x5c"]) == 1
    assert claims["aud"] == fresh_issuer.service
    assert claims["sub"] == ""
    assert claims["access"] == [{"type": "repository", "name": "test/single", "actions": ["pull"]}]
    assert fresh_issuer.count == 1
    assert fresh_issuer.issued[0].account is None


async def test_anonymous_token_cannot_pull_private(registry_token, fresh_issuer):
    url = f"{registry_token.url}/v2/private/secret/manifests/v1"
    async with aiohttp.ClientSession() as session:
        anonymous = await _token(session, fresh_issuer, "repository:private/secret:pull")
        headers = {"Accept": DOCKER_MANIFEST, "Authorization": f"Bearer {anonymous}"}
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 401
            assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]

        alice = await _token(
            session,
            fresh_issuer,
            "repository:private/secret:pull,push",
            user=("alice", "wonderland"),
        )
        headers["Authorization"] = f"Bearer {alice}"
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
            assert await resp.read() == registry_token.content.get("private/secret:v1").raw

    assert fresh_issuer.issued[0].access == []
    assert fresh_issuer.issued[1].account == "alice"
    assert fresh_issuer.issued[1].access == [
        {"type": "repository", "name": "private/secret", "actions": ["pull"]}
    ]


async def test_plugin_scope_class_is_accepted(registry_token, fresh_issuer):
    plugin = registry_token.content.get("test/plugin:latest")
    assert isinstance(plugin, PushedImage)
    assert plugin.platform is None
    async with aiohttp.ClientSession() as session:
        token = await _token(session, fresh_issuer, "repository(plugin):test/plugin:pull")
        headers = {"Accept": DOCKER_MANIFEST, "Authorization": f"Bearer {token}"}
        async with session.get(
            f"{registry_token.url}/v2/test/plugin/manifests/latest", headers=headers
        ) as resp:
            assert resp.status == 200
            assert await resp.read() == plugin.raw
    assert fresh_issuer.issued[0].access == [
        {"type": "repository", "class": "plugin", "name": "test/plugin", "actions": ["pull"]}
    ]


async def test_issuer_knobs_and_failures(registry_token, fresh_issuer):
    fresh_issuer.expired_tokens_remaining = 1
    fresh_issuer.token_fields = ("access_token",)
    fresh_issuer.expires_in = None
    url = f"{registry_token.url}/v2/test/single/manifests/v1"
    async with aiohttp.ClientSession() as session:
        params = {"service": fresh_issuer.service, "scope": "repository:test/single:pull"}
        async with session.get(fresh_issuer.realm, params=params) as resp:
            body = json.loads(await resp.read())
        assert set(body) == {"access_token", "issued_at"}
        headers = {"Accept": DOCKER_MANIFEST, "Authorization": f"Bearer {body['access_token']}"}
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 401  # expired beyond the registry's 60 s leeway
            assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]

        async with session.get(
            fresh_issuer.realm, params=params, headers=_basic("alice", "wrong")
        ) as resp:
            assert resp.status == 401
            assert json.loads(await resp.read()) == {
                "errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]
            }

        async with session.get(fresh_issuer.realm, params=params) as resp:
            body = json.loads(await resp.read())
        headers["Authorization"] = f"Bearer {body['access_token']}"
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200

    assert fresh_issuer.count == 2
    assert fresh_issuer.failed == 1
    assert [record.expired for record in fresh_issuer.issued] == [True, False]
    fresh_issuer.reset()
    assert fresh_issuer.count == 0
    assert fresh_issuer.token_fields == ("token", "access_token")
    assert fresh_issuer.expires_in == 300


async def test_catalog_paginates_with_link(registry_http):
    seen: list[str] = []
    url = f"{registry_http.url}/v2/_catalog?n=3"
    pages = 0
    async with aiohttp.ClientSession() as session:
        while url:
            async with session.get(url) as resp:
                assert resp.status == 200
                page = json.loads(await resp.read())["repositories"]
                link = resp.headers.get("Link")
            pages += 1
            assert len(page) <= 3
            seen += page
            if link is None:
                break
            assert link.startswith("</v2/_catalog?")
            assert link.endswith('>; rel="next"')
            url = urljoin(registry_http.url, link[1 : link.index(">")])
    assert pages == 3
    assert seen == registry_http.content.repositories


async def test_content_bytes_index_children_and_blobs(registry_http):
    content = registry_http.content
    oci = content.get("test/multi:oci")
    docker = content.get("test/multi:docker")
    assert isinstance(oci, PushedIndex)
    assert isinstance(docker, PushedIndex)
    assert oci.media_type == OCI_INDEX
    assert docker.media_type == DOCKER_LIST
    assert [child.platform for child in oci.children] == [
        "unknown/unknown",
        "linux/amd64",
        "linux/arm64/v8",
        "linux/arm/v7",
    ]
    assert oci.manifest["manifests"][0]["annotations"]["vnd.docker.reference.digest"] == (
        oci.child("linux/amd64").digest
    )
    single = content.get("test/single:latest")
    assert isinstance(single, PushedImage)
    assert content.get(f"test/single@{single.digest}") is single
    big_layer = single.layers[-1]
    async with aiohttp.ClientSession() as session:
        for ref, item in (("oci", oci), ("docker", docker), (oci.children[0].digest, None)):
            expected = item or oci.children[0]
            async with session.get(
                f"{registry_http.url}/v2/test/multi/manifests/{ref}",
                headers={"Accept": MANIFEST_ACCEPT},
            ) as resp:
                assert resp.status == 200
                raw = await resp.read()
            assert raw == expected.raw
            assert sha(raw) == expected.digest
        async with session.get(
            f"{registry_http.url}/v2/test/single/blobs/{big_layer.digest}"
        ) as resp:
            assert resp.status == 200
            assert await resp.read() == big_layer.raw
        async with session.get(
            f"{registry_http.url}/v2/{content.many_repository}/tags/list"
        ) as resp:
            tags = json.loads(await resp.read())["tags"]
    assert sorted(tags) == sorted(content.many_tags)
    assert len(content.many_tags) == 300
    assert len({image.digest for image in content.many_tags.values()}) == 40


async def test_access_log_sees_requests(registry_http):
    mark = registry_http.log_mark()
    async with aiohttp.ClientSession(headers={"User-Agent": "fixture-probe/1"}) as session:
        async with session.head(f"{registry_http.url}/v2/test/oci/manifests/v1") as resp:
            assert resp.status == 404  # no OCI type in Accept: distribution 2.8 says unknown
        async with session.get(f"{registry_http.url}/v2/_catalog?n=2&last=test") as resp:
            assert resp.status == 200
    entries = registry_http.wait_access_log(2, since=mark)
    probes = [entry for entry in entries if entry["user_agent"] == "fixture-probe/1"]
    assert [(e["method"], e["path"], e["status"]) for e in probes] == [
        ("HEAD", "/v2/test/oci/manifests/v1", 404),
        ("GET", "/v2/_catalog?n=2&last=test", 200),
    ]


def test_parse_scope_splits_type_left_and_actions_right():
    scope = parse_scope("repository(plugin):localhost:5000/a/b:pull,push")
    assert scope is not None
    assert (scope.type, scope.resource_class, scope.name, scope.actions) == (
        "repository",
        "plugin",
        "localhost:5000/a/b",
        ("pull", "push"),
    )
    assert parse_scope("registry:catalog:*").actions == ("*",)  # type: ignore[union-attr]
    assert parse_scope("nonsense") is None
