"""Authentication against real registries: htpasswd Basic over TLS, and bearer token auth.

The token registry trusts JWTs from the tests' own issuer (``support.tokens``), which counts
every token it issues: that count is how these tests prove single-flight and renewal.
"""

from __future__ import annotations

import anyio
import pytest
from support.tokens import decode_jwt_unverified

from aioregistry import (
    AuthenticationError,
    InsecureCredentials,
    NotFound,
    RegistryClient,
    TLSError,
    Unauthorized,
)

pytestmark = pytest.mark.anyio


# -- Basic auth over TLS ------------------------------------------------------------------


async def test_self_signed_registry_fails_without_trust(registry_basic):
    async with RegistryClient() as client:
        with pytest.raises(TLSError, match=r"not trusted.*--ca-file"):
            await client.list_tags(f"{registry_basic.host}/test/single")


async def test_ca_file_trusts_the_registry(registry_basic):
    creds = {registry_basic.host: ("alice", "wonderland")}
    async with RegistryClient(ca_file=str(registry_basic.ca_file), credentials=creds) as client:
        assert sorted(await client.list_tags(f"{registry_basic.host}/test/single")) == [
            "latest",
            "v1",
        ]
        pushed = registry_basic.content.get("test/single:v1")
        manifest = await client.get_manifest(f"{registry_basic.host}/test/single:v1")
        assert manifest.raw == pushed.raw
        config = await client.get_config(f"{registry_basic.host}/test/single:v1")
        assert config.raw == pushed.config_raw


async def test_insecure_skips_verification(registry_basic):
    creds = {registry_basic.host: ("alice", "wonderland")}
    async with RegistryClient(insecure=True, credentials=creds) as client:
        digest = await client.get_digest(f"{registry_basic.host}/test/oci:v1")
    assert digest == registry_basic.content.get("test/oci:v1").digest


async def test_ssl_cert_file_is_honoured(registry_basic, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(registry_basic.ca_file))
    monkeypatch.setenv("DOCKER_USER", "alice")
    monkeypatch.setenv("DOCKER_PASSWORD", "wonderland")
    async with RegistryClient() as client:
        digest = await client.get_digest(f"{registry_basic.host}/org/team/app:1.0")
    assert digest == registry_basic.content.get("org/team/app:1.0").digest


def test_the_default_tls_settings_reuse_aiohttp_s_context_until_the_variables_change(
    tmp_path, monkeypatch
):
    """No second load of the system's certificates at every start (`_ssl_context`): aiohttp's
    own verifying context is used, unless SSL_CERT_FILE changed since it was built (above:
    then it is honoured) or is unreadable (a clear error, as OpenSSL says nothing)."""
    from aioregistry import UsageError  # noqa: PLC0415
    from aioregistry._transport import Transport  # noqa: PLC0415

    assert Transport()._ssl is True
    assert Transport(insecure=True)._ssl is False
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(UsageError, match=r"missing\.pem.*SSL_CERT_FILE"):
        Transport()


async def test_basic_wrong_password_is_unauthorized(registry_basic):
    creds = {registry_basic.host: ("alice", "wrong")}
    async with RegistryClient(ca_file=str(registry_basic.ca_file), credentials=creds) as client:
        with pytest.raises(Unauthorized, match=r"401.*as 'alice' \(explicit credentials\)") as e:
            await client.get_digest(f"{registry_basic.host}/test/single:v1")
    assert "wrong" not in str(e.value)


async def test_basic_without_credentials_says_so(registry_basic):
    async with RegistryClient(ca_file=str(registry_basic.ca_file)) as client:
        with pytest.raises(Unauthorized, match="anonymously"):
            await client.get_digest(f"{registry_basic.host}/test/single:v1")


async def test_basic_registry_has_no_bearer_token(registry_basic):
    creds = {registry_basic.host: ("alice", "wonderland")}
    async with RegistryClient(ca_file=str(registry_basic.ca_file), credentials=creds) as client:
        with pytest.raises(AuthenticationError, match="does not use bearer tokens"):
            await client.get_token(f"{registry_basic.host}/test/single")


# -- token auth ---------------------------------------------------------------------------


async def test_anonymous_token_pull(registry_token, fresh_issuer):
    pushed = registry_token.content.get("test/multi:oci")
    async with RegistryClient() as client:
        ref = f"{registry_token.host}/test/multi:oci"
        assert await client.get_digest(ref) == pushed.digest
        assert (await client.get_manifest_list(ref)).raw == pushed.raw
        manifest = await client.get_manifest(ref, platform="linux/arm/v7")
        config = await client.get_config(ref, platform="linux/arm/v7")
        assert sorted(await client.list_tags(f"{registry_token.host}/test/multi")) == [
            "docker",
            "oci",
        ]
    assert manifest.raw == pushed.child("linux/arm/v7").raw
    assert config.raw == pushed.child("linux/arm/v7").config_raw
    # Five operations, several requests each: one token for the one scope.
    assert fresh_issuer.count == 1
    record = fresh_issuer.issued[0]
    assert record.account is None
    assert record.scopes == ["repository:test/multi:pull"]
    assert record.service == fresh_issuer.service


async def test_hundred_concurrent_calls_make_one_token_request(registry_token, fresh_issuer):
    fresh_issuer.delay = 0.2  # keep the token request in flight while every task asks
    many = registry_token.content.many_tags
    tags = sorted(many)[:100]
    results: dict[str, str] = {}
    async with RegistryClient() as client:

        async def one(tag: str) -> None:
            ref = f"{registry_token.host}/{registry_token.content.many_repository}:{tag}"
            results[tag] = await client.get_digest(ref)

        async with anyio.create_task_group() as tg:
            for tag in tags:
                tg.start_soon(one, tag)
        assert client.stats.tokens_fetched == 1
    assert fresh_issuer.count == 1
    assert results == {tag: many[tag].digest for tag in tags}


async def test_get_token_returns_the_issued_token(registry_token, fresh_issuer):
    async with RegistryClient() as client:
        token = await client.get_token(f"{registry_token.host}/test/single")
        again = await client.get_token(f"{registry_token.host}/test/single")
    assert token is again
    assert fresh_issuer.count == 1
    assert token.value == fresh_issuer.issued[0].token
    _, claims = decode_jwt_unverified(token.value)
    assert claims["access"] == [{"type": "repository", "name": "test/single", "actions": ["pull"]}]
    assert "eyJ" not in repr(token)


async def test_plugin_scope(registry_token, fresh_issuer):
    pushed = registry_token.content.get("test/plugin:latest")
    async with RegistryClient() as client:
        config = await client.get_config(
            f"{registry_token.host}/test/plugin:latest", repo_type="plugin"
        )
    assert config.raw == pushed.config_raw
    assert fresh_issuer.issued[0].scopes == ["repository(plugin):test/plugin:pull"]


async def test_expired_token_is_renewed(registry_token, fresh_issuer):
    # issued_at 58 s ago with a 60 s lifetime: by the token's own word it is about to expire.
    fresh_issuer.expires_in = 60
    fresh_issuer.issued_at_offset = -58
    ref = f"{registry_token.host}/test/single:v1"
    async with RegistryClient() as client:
        await client.get_digest(ref)
        assert fresh_issuer.count == 1
        await client.get_digest(ref)
        assert fresh_issuer.count == 2
        fresh_issuer.reset()  # now a token that lasts: it is reused
        await client.get_digest(ref)
        await client.get_digest(ref)
    assert fresh_issuer.count == 1


async def test_token_refused_by_registry_is_renewed_once(registry_token, fresh_issuer):
    # The first token's JWT is already past exp (+ the registry's leeway) though the answer
    # says it lasts 300 s: the registry answers 401 invalid_token, the client renews once.
    fresh_issuer.expired_tokens_remaining = 1
    pushed = registry_token.content.get("test/oci:v1")
    async with RegistryClient() as client:
        assert await client.get_digest(f"{registry_token.host}/test/oci:v1") == pushed.digest
    assert fresh_issuer.count == 2
    assert [r.expired for r in fresh_issuer.issued] == [True, False]


async def test_token_renewal_is_not_an_endless_loop(registry_token, fresh_issuer):
    fresh_issuer.expired_tokens_remaining = 10
    async with RegistryClient() as client:
        with pytest.raises(Unauthorized):
            await client.get_digest(f"{registry_token.host}/test/oci:v1")
    assert fresh_issuer.count == 2


async def test_access_token_only_answer(registry_token, fresh_issuer):
    fresh_issuer.token_fields = ("access_token",)
    fresh_issuer.expires_in = None
    async with RegistryClient() as client:
        digest = await client.get_digest(f"{registry_token.host}/test/single:v1")
    assert digest == registry_token.content.get("test/single:v1").digest


async def test_private_repository_needs_credentials(registry_token, fresh_issuer):
    ref = f"{registry_token.host}/private/secret:v1"
    async with RegistryClient() as client:
        with pytest.raises(Unauthorized, match="anonymously"):
            await client.get_manifest(ref)
    creds = {registry_token.host: ("alice", "wonderland")}
    async with RegistryClient(credentials=creds) as client:
        manifest = await client.get_manifest(ref)
    assert manifest.raw == registry_token.content.get("private/secret:v1").raw
    assert fresh_issuer.issued[-1].account == "alice"


async def test_env_credentials(registry_token, fresh_issuer, monkeypatch):
    monkeypatch.setenv("DOCKER_USER", "alice")
    monkeypatch.setenv("DOCKER_PASSWORD", "wonderland")
    async with RegistryClient() as client:
        digest = await client.get_digest(f"{registry_token.host}/private/secret:v1")
    assert digest == registry_token.content.get("private/secret:v1").digest
    assert fresh_issuer.issued[-1].account == "alice"


async def test_wrong_password_at_the_token_server(registry_token, fresh_issuer):
    creds = {registry_token.host: ("alice", "not-the-password")}
    async with RegistryClient(credentials=creds) as client:
        with pytest.raises(Unauthorized, match=r"token server refused 'alice'") as info:
            await client.get_digest(f"{registry_token.host}/test/single:v1")
    assert "not-the-password" not in str(info.value)
    assert fresh_issuer.count == 0
    assert fresh_issuer.failed == 1


async def test_unknown_repository_with_token_auth(registry_token, fresh_issuer):
    async with RegistryClient() as client:
        with pytest.raises(NotFound):
            await client.get_manifest(f"{registry_token.host}/test/nothing:v1")


async def test_credentials_over_plain_http_to_a_remote_host_are_refused():
    # 192.0.2.1 (TEST-NET-1) is never contacted: the refusal comes before any request.
    from yarl import URL  # noqa: PLC0415

    from aioregistry._auth import Challenge, TokenCache  # noqa: PLC0415
    from aioregistry._authflow import AuthFlow, Endpoint  # noqa: PLC0415
    from aioregistry._credential_source import CredentialSource  # noqa: PLC0415
    from aioregistry._transport import Transport  # noqa: PLC0415

    source = CredentialSource({"192.0.2.1:5000": ("alice", "pw")}, use_env=False)
    auth = AuthFlow(Transport(), source, TokenCache(), insecure=False)
    endpoint = Endpoint("192.0.2.1:5000", URL("http://192.0.2.1:5000"), Challenge("basic"))
    with pytest.raises(InsecureCredentials, match=r"plain HTTP to http://192\.0\.2\.1:5000"):
        await auth.authorize(endpoint, "repository:x:pull", {})
