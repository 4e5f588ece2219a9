"""Token flows beyond Basic-on-GET, against the real token registry and the tests' issuer.

- ACR-like: an identity (refresh) token in docker's config is exchanged with the OAuth2
  ``refresh_token`` grant (``POST`` to the realm) for an access token.
- Harbor-like: the realm is ``/service/token`` and answers the ``POST`` with 405, so the
  client falls back to docker's ``GET`` (with Basic when there is a username and password).
- The issuer's own OAuth2 side (password grant, offline tokens) that the tests rely on.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from support.fakes import FakeServer
from support.registry import RegistryProcess

from aioregistry import Credentials, InsecureCredentials, RegistryClient, Unauthorized

pytestmark = pytest.mark.anyio

SECRET_REF = "private/secret:v1"
PUBLIC_REF = "test/single:v1"
ACR_USER = "00000000-0000-0000-0000-000000000000"  # what `az acr login` writes


def post(url: str, form: dict[str, str]) -> tuple[int, dict[str, object]]:
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, json.loads(body) if body.startswith(b"{") else {}


def refresh_token_for(issuer, user: str = "alice", password: str = "wonderland") -> str:  # noqa: S107
    status, body = post(
        issuer.realm,
        {
            "grant_type": "password",
            "username": user,
            "password": password,
            "access_type": "offline",
            "client_id": "test",
            "service": issuer.service,
        },
    )
    assert status == 200, body
    token = body["refresh_token"]
    assert isinstance(token, str)
    return token


def docker_login(home, host: str, *, user: str, password: str = "", token: str | None = None):
    """What ``docker login`` leaves in ``home`` (conftest's ``temp_home``, whose ``.docker`` is
    DOCKER_CONFIG)."""
    entry: dict[str, str] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    if token is not None:
        entry["identitytoken"] = token
    docker_config = home / ".docker"
    docker_config.mkdir(exist_ok=True)
    (docker_config / "config.json").write_text(json.dumps({"auths": {host: entry}}))


@pytest.fixture(scope="module")
def registry_harbor(registry_token, token_issuer, tmp_path_factory):
    """A second registry over the same storage whose realm is Harbor's ``/service/token``."""
    realm = token_issuer.realm.removesuffix("/token") + "/service/token"
    storage = {"storage": {"filesystem": {"rootdirectory": str(registry_token.storage_path)}}}
    with RegistryProcess(
        "token",
        tmp_path_factory.mktemp("harbor"),
        certs=registry_token.certs,
        issuer=token_issuer,
        realm=realm,
        extra_config=storage,
    ) as registry:
        registry.content = registry_token.content
        yield registry


# -- the issuer's OAuth2 side ----------------------------------------------------------------


def test_issuer_password_grant_and_refresh_grant(fresh_issuer):
    refresh = refresh_token_for(fresh_issuer)
    status, body = post(
        fresh_issuer.realm,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": "test",
            "service": fresh_issuer.service,
            "scope": "repository:private/secret:pull repository:test/single:pull,push",
        },
    )
    assert status == 200
    assert body["scope"] == "repository:private/secret:pull repository:test/single:pull,push"
    record = fresh_issuer.issued[-1]
    assert (record.method, record.grant_type, record.account) == ("POST", "refresh_token", "alice")
    assert [a["name"] for a in record.access] == ["private/secret", "test/single"]
    assert post(fresh_issuer.realm, {"grant_type": "refresh_token", "refresh_token": "nope",
                                     "client_id": "t"})[0] == 400  # fmt: skip
    assert post(fresh_issuer.realm, {"grant_type": "password", "username": "alice",
                                     "password": "bad", "client_id": "t"})[0] == 401  # fmt: skip
    assert post(fresh_issuer.realm, {"grant_type": "refresh_token"})[1] == {
        "error": "invalid_request"
    }
    assert post(fresh_issuer.realm, {"grant_type": "magic", "client_id": "t"})[0] == 400
    assert fresh_issuer.failed == 2


def test_issuer_offline_token_on_get(fresh_issuer):
    basic = base64.b64encode(b"alice:wonderland").decode()
    url = f"{fresh_issuer.realm}?service={fresh_issuer.service}&offline_token=true"
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {basic}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        body = json.loads(resp.read())
    assert fresh_issuer.refresh_tokens[body["refresh_token"]] == "alice"
    anonymous = f"{fresh_issuer.realm}?service=x&offline_token=true"
    with urllib.request.urlopen(anonymous, timeout=10) as resp:  # noqa: S310
        assert "refresh_token" not in json.loads(resp.read())


@pytest.mark.parametrize("status", [404, 405])
def test_issuer_post_status_knob(fresh_issuer, status):
    fresh_issuer.post_status = status
    assert post(fresh_issuer.realm, {"grant_type": "password"})[0] == status
    assert fresh_issuer.requests[-1].status == status
    assert fresh_issuer.count == 0


# -- ACR-like: refresh-token exchange --------------------------------------------------------


async def test_identity_token_from_docker_config_is_exchanged(
    temp_home, registry_token, fresh_issuer
):
    refresh = refresh_token_for(fresh_issuer)
    docker_login(temp_home, registry_token.host, user=ACR_USER, token=refresh)
    fresh_issuer.reset()
    fresh_issuer.refresh_tokens[refresh] = "alice"  # reset forgets them; this one stays valid
    async with RegistryClient() as client:
        manifest = await client.get_manifest(f"{registry_token.host}/{SECRET_REF}")
        tags = await client.list_tags(f"{registry_token.host}/private/secret")
    assert manifest.raw == registry_token.content.get(SECRET_REF).raw
    assert "v1" in tags
    [request] = fresh_issuer.requests  # one scope, one token, by POST only
    assert (request.method, request.path, request.grant_type) == ("POST", "/token", "refresh_token")
    assert set(request.fields) == {"grant_type", "refresh_token", "service", "client_id", "scope"}
    [record] = fresh_issuer.issued
    assert record.account == "alice"
    assert record.query["client_id"] == ["aioregistry"]
    assert record.query["scope"] == ["repository:private/secret:pull"]
    assert record.query["service"] == [fresh_issuer.service]


async def test_refused_identity_token_is_unauthorized_without_the_token(
    temp_home, registry_token, fresh_issuer
):
    docker_login(temp_home, registry_token.host, user=ACR_USER, token="refresh-never-issued")
    async with RegistryClient() as client:
        with pytest.raises(
            Unauthorized, match=rf"token server refused '{ACR_USER}' with an identity token"
        ) as e:
            await client.get_digest(f"{registry_token.host}/{PUBLIC_REF}")
    assert "refresh-never-issued" not in str(e.value)
    assert "docker config" in str(e.value)
    assert fresh_issuer.count == 0


async def test_explicit_identity_token(registry_token, fresh_issuer):
    refresh = refresh_token_for(fresh_issuer)
    creds = {registry_token.host: Credentials(ACR_USER, identity_token=refresh)}
    async with RegistryClient(credentials=creds, use_config_files=False) as client:
        digest = await client.get_digest(f"{registry_token.host}/{SECRET_REF}")
    assert digest == registry_token.content.get(SECRET_REF).digest
    assert fresh_issuer.issued[-1].grant_type == "refresh_token"


async def test_password_keeps_the_get_flow(temp_home, registry_token, fresh_issuer):
    docker_login(temp_home, registry_token.host, user="alice", password="wonderland")
    async with RegistryClient() as client:
        await client.get_digest(f"{registry_token.host}/{SECRET_REF}")
    assert [(r.method, r.grant_type) for r in fresh_issuer.requests] == [("GET", None)]
    assert fresh_issuer.issued[-1].account == "alice"


# -- Harbor-like: /service/token, POST answered 405 or 404 -----------------------------------


@pytest.mark.parametrize("status", [405, 404])
async def test_post_refused_falls_back_to_get_with_basic(
    temp_home, registry_harbor, fresh_issuer, status
):
    fresh_issuer.post_status = status
    # docker writes both after a login that returned an identity token
    docker_login(temp_home, registry_harbor.host, user="alice", password="wonderland", token="rt")
    async with RegistryClient() as client:
        manifest = await client.get_manifest(f"{registry_harbor.host}/{SECRET_REF}")
    assert manifest.raw == registry_harbor.content.get(SECRET_REF).raw
    assert [(r.method, r.path, r.status) for r in fresh_issuer.requests] == [
        ("POST", "/service/token", status),
        ("GET", "/service/token", 200),
    ]
    assert fresh_issuer.issued[-1].account == "alice"


async def test_post_refused_and_only_a_token_is_anonymous_get(
    temp_home, registry_harbor, fresh_issuer
):
    fresh_issuer.post_status = 405
    docker_login(temp_home, registry_harbor.host, user=ACR_USER, token="rt")
    async with RegistryClient() as client:
        digest = await client.get_digest(f"{registry_harbor.host}/{PUBLIC_REF}")
        assert digest == registry_harbor.content.get(PUBLIC_REF).digest
        with pytest.raises(Unauthorized):
            await client.get_digest(f"{registry_harbor.host}/{SECRET_REF}")
    assert {r.account for r in fresh_issuer.issued} == {None}
    # One POST: the realm is remembered as GET-only. Three GETs: the public scope, the
    # private one, and its one renewal after the registry refused the anonymous token.
    assert [(r.method, r.status) for r in fresh_issuer.requests] == [
        ("POST", 405),
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
    ]


async def test_harbor_realm_without_credentials(registry_harbor, fresh_issuer):
    async with RegistryClient() as client:
        with pytest.raises(Unauthorized, match="anonymously"):
            await client.get_manifest(f"{registry_harbor.host}/{SECRET_REF}")
    assert all(r.method == "GET" and r.path == "/service/token" for r in fresh_issuer.requests)


# -- where an identity token may go ----------------------------------------------------------


async def test_identity_token_never_goes_in_clear_text_to_a_remote_realm():
    # A registry quirk the real one will not produce: a challenge naming a plain-HTTP realm on
    # another (non-loopback) host. 192.0.2.1 (TEST-NET-1) is never contacted.
    challenge = 'Bearer realm="http://192.0.2.1:5000/token",service="x"'
    async with FakeServer(challenge=challenge) as fake:
        creds = {fake.host: Credentials("", identity_token="refresh-secret")}
        async with RegistryClient(
            credentials=creds, plain_http=True, use_config_files=False
        ) as client:
            with pytest.raises(InsecureCredentials, match=r"plain HTTP to http://192\.0\.2\.1"):
                await client.get_digest(f"{fake.host}/{PUBLIC_REF}")
            assert client.stats.requests.get("token", 0) == 0
