"""Auth rules without a network: challenges, scopes, token answers, the single-flight cache."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import anyio
import orjson
import pytest

from aioregistry import AuthenticationError, Credentials, UsageError
from aioregistry._auth import Token, TokenCache, parse_token_response, parse_www_authenticate
from aioregistry._credential_source import CredentialSource
from aioregistry._scopes import repository_scope

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/ubuntu:pull"',
            [
                (
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:library/ubuntu:pull",
                    },
                )
            ],
        ),
        ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"})]),
        (
            # A quoted value with commas, then a second challenge in the same header.
            'Bearer realm="https://a/t",scope="repository:a:pull,push",error="insufficient_scope",'
            " Basic realm=plain",
            [
                (
                    "bearer",
                    {
                        "realm": "https://a/t",
                        "scope": "repository:a:pull,push",
                        "error": "insufficient_scope",
                    },
                ),
                ("basic", {"realm": "plain"}),
            ],
        ),
        ('Bearer realm="x\\"y"', [("bearer", {"realm": 'x"y'})]),
        ("Negotiate abc==, Bearer realm=r", [("negotiate", {}), ("bearer", {"realm": "r"})]),
        ("BEARER Realm=r , Service=s", [("bearer", {"realm": "r", "service": "s"})]),
    ],
)
def test_parse_www_authenticate(header, expected):
    got = [(c.scheme, dict(c.params)) for c in parse_www_authenticate(header)]
    assert got == expected


def test_several_header_values_keep_their_order():
    got = parse_www_authenticate(['Basic realm="b"', 'Bearer realm="https://t",service="s"'])
    assert [c.scheme for c in got] == ["basic", "bearer"]
    assert got[1].realm == "https://t"
    assert got[1].service == "s"


def test_repository_scope():
    assert repository_scope("library/ubuntu") == "repository:library/ubuntu:pull"
    assert (
        repository_scope("vieux/sshfs", "pull", "plugin") == "repository(plugin):vieux/sshfs:pull"
    )
    with pytest.raises(UsageError, match="invalid repository type 'chart'"):
        repository_scope("x", "pull", "chart")  # type: ignore[arg-type]


def _answer(**fields: object) -> bytes:
    return orjson.dumps(fields)


def test_token_field_or_access_token():
    now = 1_000_000.0
    assert parse_token_response(_answer(token="a"), scope="s", now=now, realm="r").value == "a"
    assert (
        parse_token_response(_answer(access_token="b"), scope="s", now=now, realm="r").value == "b"
    )
    with pytest.raises(AuthenticationError, match="without a token"):
        parse_token_response(_answer(expires_in=300), scope="s", now=now, realm="r")
    with pytest.raises(AuthenticationError, match="not valid JSON"):
        parse_token_response(b"<html>", scope="s", now=now, realm="r")


@pytest.mark.parametrize(("expires_in", "lifetime"), [(None, 60), (10, 60), (300, 300)])
def test_token_lifetime_has_a_floor_of_60_seconds(expires_in, lifetime):
    fields: dict[str, object] = {"token": "t"}
    if expires_in is not None:
        fields["expires_in"] = expires_in
    token = parse_token_response(_answer(**fields), scope="s", now=1000.0, realm="r")
    assert token.expires_in == lifetime
    assert token.expires_at == 1000.0 + lifetime


def test_issued_at_moves_expiry_earlier_but_skew_does_not_expire_a_new_token():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    old = (now - timedelta(seconds=100)).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
    token = parse_token_response(
        _answer(token="t", expires_in=300, issued_at=old),
        scope="s",
        now=now.timestamp(),
        realm="r",
    )
    assert token.expires_at == pytest.approx(now.timestamp() + 200, abs=1)
    # issued_at an hour ago with a 5-minute lifetime: that is clock skew, not a dead token.
    ancient = (now - timedelta(hours=1)).isoformat()
    token = parse_token_response(
        _answer(token="t", expires_in=300, issued_at=ancient),
        scope="s",
        now=now.timestamp(),
        realm="r",
    )
    assert token.expires_at == now.timestamp() + 300


def test_secrets_stay_out_of_reprs():
    assert "hunter2" not in repr(Credentials("bob", "hunter2"))
    assert "sekrit" not in repr(Token("sekrit", 1.0, 60, "scope"))
    header = Credentials("bob", "hunter2").basic_header()
    assert base64.b64decode(header.removeprefix("Basic ")) == b"bob:hunter2"


def test_credential_source_order():
    env = {"DOCKER_USER": "envuser", "DOCKER_PASSWORD": "envpw"}
    source = CredentialSource({"docker.io": ("hub", "pw")}, environ=env)
    creds, where = source.lookup("registry-1.docker.io")
    assert creds is not None
    assert (creds.username, where) == ("hub", "explicit credentials")
    creds, where = source.lookup("127.0.0.1:5000")
    assert creds is not None
    assert (creds.username, where) == ("envuser", "DOCKER_USER/DOCKER_PASSWORD")
    assert CredentialSource(environ=env, use_env=False).lookup("x")[0] is None
    assert CredentialSource(environ={"DOCKER_USER": "u"}).lookup("x") == (None, "anonymous")


async def test_token_cache_single_flight_and_expiry():
    clock = [1000.0]
    cache = TokenCache(clock=lambda: clock[0])
    calls = 0

    async def fetch() -> Token:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.01)
        return Token(f"t{calls}", clock[0] + 300, 300, "s")

    key = ("realm", "svc", "s")
    results: list[str] = []

    async def one() -> None:
        results.append((await cache.get(key, fetch)).value)

    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(one)
    assert calls == 1
    assert results == ["t1"] * 100
    assert cache.fetches == 1

    clock[0] += 299  # inside the early-refresh margin: renewed
    assert (await cache.get(key, fetch)).value == "t2"
    assert calls == 2


async def test_token_cache_shares_a_failure_and_recovers():
    cache = TokenCache()
    calls = 0

    async def failing() -> Token:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.01)
        raise AuthenticationError("nope")

    errors: list[Exception] = []

    async def one() -> None:
        try:
            await cache.get(("r", "s", "x"), failing)
        except AuthenticationError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
    assert calls == 1
    assert len(errors) == 20

    async def working() -> Token:
        return Token("ok", cache.clock() + 300, 300, "x")

    assert (await cache.get(("r", "s", "x"), working)).value == "ok"


async def test_cancelled_leader_hands_over_to_a_waiter():
    cache = TokenCache()
    started = anyio.Event()
    calls = 0

    async def slow() -> Token:
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await anyio.sleep(10)
        return Token("second", cache.clock() + 300, 300, "x")

    got: list[str] = []
    async with anyio.create_task_group() as tg:
        leader_scope = anyio.CancelScope()

        async def leader() -> None:
            with leader_scope:
                await cache.get(("r", "s", "x"), slow)

        async def waiter() -> None:
            await started.wait()
            got.append((await cache.get(("r", "s", "x"), slow)).value)

        tg.start_soon(leader)
        tg.start_soon(waiter)
        await started.wait()
        await anyio.sleep(0.01)
        leader_scope.cancel()
    assert got == ["second"]
    assert calls == 2


def test_invalidate_only_drops_the_refused_token():
    cache = TokenCache()
    key = ("r", "s", "x")
    old = Token("old", 1e12, 300, "x")
    new = Token("new", 1e12, 300, "x")
    cache._tokens[key] = new
    cache.invalidate(key, old)  # someone already renewed it: keep the new one
    assert cache._tokens[key] is new
    cache.invalidate(key, new)
    assert key not in cache._tokens
