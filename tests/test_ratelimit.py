"""Docker Hub's rate-limit headers: the parser, `RegistryClient.get_rate_limit` and the CLI.

The parser is checked against a table of header shapes seen in the wild (and garbage: it
must give None, never raise). The operation runs against the real registry (which sends no
such headers: all None, from exactly one HEAD) and against the Docker Hub simulator of
``support.fakeregistry`` (headers present; the HEAD uses up no pull, a GET does).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator

import anyio
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from support.fakeregistry import (
    DOCKER_HUB_SOURCE,
    FakeRegistry,
    RateLimitState,
    Repo,
    docker_hub,
    image_tags,
)

from aioregistry import NotFound, RateLimit, RegistryClient, parse_rate_limit

WINDOW = 21600

# -- the parser --------------------------------------------------------------------------------

HEADER_SHAPES = [
    pytest.param(
        {
            "ratelimit-limit": "100;w=21600",
            "ratelimit-remaining": "76;w=21600",
            "docker-ratelimit-source": "203.0.113.7",
        },
        RateLimit(100, 76, WINDOW, "203.0.113.7"),
        id="docker-hub-anonymous",
    ),
    pytest.param(
        {
            "RateLimit-Limit": "200;w=21600",
            "RateLimit-Remaining": "199;w=21600",
            "Docker-RateLimit-Source": "b8c1f6f4-2a6e-4c0e-9f5d-3d0c7a1e4b21",
        },
        RateLimit(200, 199, WINDOW, "b8c1f6f4-2a6e-4c0e-9f5d-3d0c7a1e4b21"),
        id="docker-hub-account-capitalised",
    ),
    pytest.param(
        {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600"},
        RateLimit(100, 0, WINDOW, None),
        id="exhausted-is-zero-not-none",
    ),
    pytest.param({}, RateLimit(), id="no-headers"),
    pytest.param(
        {"content-type": "application/json", "docker-content-digest": "sha256:" + "a" * 64},
        RateLimit(),
        id="other-registry",
    ),
    pytest.param(
        {"ratelimit-limit": "100, 100;w=21600", "ratelimit-remaining": "76"},
        RateLimit(100, 76, WINDOW, None),
        id="ietf-policy-list",
    ),
    pytest.param(
        {"ratelimit-remaining": "5;w=60"}, RateLimit(None, 5, 60, None), id="window-from-remaining"
    ),
    pytest.param(
        {"ratelimit-limit": "100;w=3600", "ratelimit-remaining": "5;w=60"},
        RateLimit(100, 5, 3600, None),
        id="limit-window-wins",
    ),
    pytest.param(
        {"ratelimit-limit": " 100 ; W = 21600 ", "ratelimit-remaining": '"76";w="21600"'},
        RateLimit(100, 76, WINDOW, None),
        id="spaces-case-quotes",
    ),
    pytest.param(
        {"ratelimit-limit": "100;w=abc", "ratelimit-remaining": "lots;w=21600"},
        RateLimit(100, None, WINDOW, None),
        id="garbage-window-and-count",
    ),
    pytest.param(
        {
            "ratelimit-limit": "-1;w=21600",
            "ratelimit-remaining": "1e3",
            "docker-ratelimit-source": "  ",
        },
        RateLimit(None, None, WINDOW, None),
        id="negative-exponent-blank",
    ),
    pytest.param(
        {"ratelimit-limit": "\u0663\u0660", "ratelimit-remaining": "9" * 40},
        RateLimit(),
        id="non-ascii-digits-and-huge",
    ),
    pytest.param(
        {
            "ratelimit-limit": "",
            "ratelimit-remaining": ";;;,,,w=",
            "docker-ratelimit-source": "a\x00b",
        },
        RateLimit(),
        id="empty-and-control-characters",
    ),
    pytest.param(
        {"ratelimit-limit": "w=21600;100", "docker-ratelimit-source": "x" * 300},
        RateLimit(None, None, None, None),
        id="reversed-and-overlong-source",
    ),
]


@pytest.mark.parametrize(("headers", "expected"), HEADER_SHAPES)
def test_parse_rate_limit(headers, expected):
    assert parse_rate_limit(headers) == expected


def test_parse_takes_the_first_of_repeated_headers_from_a_multidict():
    headers = CIMultiDict(
        [("RateLimit-Limit", "100;w=21600"), ("ratelimit-limit", "5;w=1"), ("X", "y")]
    )
    assert parse_rate_limit(CIMultiDictProxy(headers)) == RateLimit(100, None, WINDOW, None)


@pytest.mark.parametrize(
    "value",
    ["", ";", "=", ",", "w", "w=", ";w=;w=", "1;w=2;w=3", "\udcff", "1" * 10_000, "0x10", "+5"],
)
def test_odd_values_never_raise(value):
    limit = parse_rate_limit(
        {"ratelimit-limit": value, "ratelimit-remaining": value, "docker-ratelimit-source": value}
    )
    for number in (limit.limit, limit.remaining, limit.window):
        assert number is None or (isinstance(number, int) and number >= 0)


def test_as_dict_and_known():
    assert RateLimit().as_dict() == {
        "limit": None,
        "remaining": None,
        "window": None,
        "source": None,
    }
    assert not RateLimit().known
    assert RateLimit(remaining=0).known
    with pytest.raises(AttributeError):
        RateLimit().limit = 3  # type: ignore[misc]


# -- against the real registry: no headers ------------------------------------------------------


@pytest.mark.anyio
async def test_real_registry_sends_no_limit_and_costs_one_head(registry_http):
    mark = registry_http.log_mark()
    async with RegistryClient(use_env_credentials=False) as client:
        limit = await client.get_rate_limit(f"{registry_http.host}/test/single:v1")
        stats = client.stats
    assert limit == RateLimit(None, None, None, None)
    assert not limit.known
    assert stats.requests["manifest-head"] == 1
    assert "manifest" not in stats.requests
    assert set(stats.requests) <= {"ping", "manifest-head"}
    entries = registry_http.wait_access_log(2, since=mark)
    manifests = [e for e in entries if "/manifests/" in e["path"]]
    assert [(e["method"], e["path"], e["status"]) for e in manifests] == [
        ("HEAD", "/v2/test/single/manifests/v1", 200)
    ]


@pytest.mark.anyio
async def test_unknown_tag_is_not_found(registry_http):
    async with RegistryClient(use_env_credentials=False) as client:
        with pytest.raises(NotFound, match="rate limit of"):
            await client.get_rate_limit(f"{registry_http.host}/test/single:no-such-tag")


# -- against the Docker Hub simulator -----------------------------------------------------------


@pytest.fixture
async def hub(sim_cert) -> AsyncIterator[FakeRegistry]:
    async with FakeRegistry(*sim_cert) as fake:
        fake.add(
            *docker_hub({"library/ubuntu": Repo(image_tags("library/ubuntu", {"latest": "a"}))})
        )
        yield fake


@pytest.mark.anyio
async def test_docker_hub_limit_from_a_head_that_uses_no_pull(hub, registry_certs):
    async with hub.client(registry_certs.ca_file) as (client, _):
        first = await client.get_rate_limit("ubuntu")
        again = await client.get_rate_limit("docker.io/library/ubuntu:latest")
        assert client.stats.requests["manifest-head"] == 2
        await client.get_manifest_list("ubuntu")  # a GET: Docker Hub counts this one
        after_pull = await client.get_rate_limit("ubuntu")
    assert first == RateLimit(100, 76, WINDOW, DOCKER_HUB_SOURCE)
    assert again == first  # the HEADs used up nothing
    assert after_pull == RateLimit(100, 75, WINDOW, DOCKER_HUB_SOURCE)
    manifest_requests = [(s.method, s.path) for s in hub.requests(path="/v2/library/*")]
    path = "/v2/library/ubuntu/manifests/latest"
    assert manifest_requests == [("HEAD", path), ("HEAD", path), ("GET", path), ("HEAD", path)]
    assert all(s.auth_scheme == "bearer" for s in hub.requests(path="/v2/library/*"))


@pytest.mark.anyio
async def test_a_scan_reports_the_latest_limit_the_registry_announced(hub, registry_certs):
    state = hub.registries["registry-1.docker.io"].rate_limit
    async with hub.client(registry_certs.ca_file) as (client, _):
        async with client.scan("ubuntu", what="config") as scan:
            results = [r async for r in scan]
        assert [r.error for r in results] == [None]
        # The scan's last manifest GET used a pull; the announcement after it is the latest.
        expected = RateLimit(100, state.remaining, WINDOW, DOCKER_HUB_SOURCE)
        assert state.remaining < 76
        assert scan.stats.rate_limits == {"registry-1.docker.io": expected}
        assert client.rate_limits == {"registry-1.docker.io": expected}


@pytest.mark.anyio
async def test_a_registry_that_announces_nothing_leaves_no_rate_limit(registry_http):
    async with RegistryClient(use_env_credentials=False) as client:
        async with client.scan(f"{registry_http.host}/test/single:v1") as scan:
            assert [r.error async for r in scan] == [None]
        assert scan.stats.rate_limits == {}
        assert client.rate_limits == {}


def test_the_scan_summary_shows_the_pulls_left():
    from aioregistry import ScanStats  # noqa: PLC0415
    from aioregistry._cli_scan import _summary  # noqa: PLC0415

    stats = ScanStats(
        results=3,
        errors=0,
        requests={"manifest-head": 3},
        tokens_fetched=1,
        bytes_received=10,
        retries=0,
        seconds=1.5,
        concurrency={"registry-1.docker.io": 64},
        rate_limits={"registry-1.docker.io": RateLimit(100, 73, WINDOW, DOCKER_HUB_SOURCE)},
    )
    line = _summary(stats)
    assert "registry-1.docker.io pulls left 73/100, " in line
    assert line.endswith(", 1.50 s")
    assert DOCKER_HUB_SOURCE not in line


# -- the CLI ------------------------------------------------------------------------------------


async def _cli(*args: str) -> tuple[int, bytes, bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_USER", "DOCKER_PASSWORD")}
    result = await anyio.run_process(
        [sys.executable, "-m", "aioregistry", *args], env=env, check=False
    )
    return result.returncode, result.stdout, result.stderr


@pytest.mark.anyio
async def test_cli_prints_nulls_for_the_real_registry(registry_http):
    status, out, err = await _cli("ratelimit", "-i", f"{registry_http.host}/test/single:v1")
    assert (status, err) == (0, b"")
    assert json.loads(out) == {"limit": None, "remaining": None, "window": None, "source": None}


@pytest.mark.anyio
async def test_cli_errors_are_one_line_with_the_usual_exit_codes(registry_http):
    status, out, err = await _cli("ratelimit", "-i", f"{registry_http.host}/test/single:nope")
    assert (status, out) == (1, b"")
    assert err.startswith(b"aioregistry: error: ")
    assert err.count(b"\n") == 1
    status, out, err = await _cli("ratelimit", "-i", "UPPER/Case")
    assert (status, out) == (2, b"")
    assert err.startswith(b"aioregistry: error: ")
    assert err.count(b"\n") == 1


@pytest.mark.anyio
async def test_cli_prints_docker_hub_style_headers(sim_cert, registry_certs):
    # The CLI runs in a process of its own, with the system resolver: the simulator plays
    # Docker Hub under its loopback address, realm included.
    async with FakeRegistry(*sim_cert) as fake:
        host = f"127.0.0.1:{fake.port}"
        repos = {"library/ubuntu": Repo(image_tags("library/ubuntu", {"latest": "a"}))}
        fake.add(
            *docker_hub(repos, host=host, realm_host=host, rate_limit=RateLimitState(remaining=3))
        )
        status, out, err = await _cli(
            "ratelimit", "-i", f"{host}/library/ubuntu", "--ca-file", str(registry_certs.ca_file)
        )
        assert (status, err) == (0, b"")
        assert json.loads(out) == {
            "limit": 100,
            "remaining": 3,
            "window": WINDOW,
            "source": DOCKER_HUB_SOURCE,
        }
        assert [s.method for s in fake.requests(path="/v2/library/*")] == ["HEAD"]
