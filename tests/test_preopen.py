"""A scan of a distant registry opens its connections while its first tag list is on the way.

Counted at the client: connections that requests open themselves (aiohttp's trace of the
session the client borrows) against those the scan opened ahead (`Transport.preopen`, which
that trace does not see).
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from support.fakes import DOCKER_V2, FakeServer, docker_manifest

from aioregistry import RegistryClient, _scan_tag
from aioregistry._scan_tag import TagScanner

pytestmark = pytest.mark.anyio

TAGS = [f"t{i:02d}" for i in range(40)]
MANIFEST = docker_manifest(b"{}")


async def _scan_far_registry(fake: FakeServer) -> tuple[int, int, int]:
    """(results, connections the requests opened, requests sent) of a manifest scan of 40
    tags on a registry whose answers take 30 ms and whose tag list takes 300 ms."""

    async def ping(_: web.Request) -> web.Response:
        await anyio.sleep(0.03)
        return web.json_response({})

    async def tag_list(_: web.Request) -> web.Response:
        await anyio.sleep(0.3)
        return web.json_response({"name": "test/far", "tags": TAGS})

    # Every manifest is answered once all 40 are in flight (or after 2 s), so that no request
    # finds a connection another has finished with, however slowly the machine sends them.
    arrived = 0
    all_in_flight = anyio.Event()

    async def manifest(_: web.Request) -> web.Response:
        nonlocal arrived
        arrived += 1
        if arrived == len(TAGS):
            all_in_flight.set()
        with anyio.move_on_after(2):
            await all_in_flight.wait()
        await anyio.sleep(0.03)
        return web.Response(body=MANIFEST, content_type=DOCKER_V2)

    fake.route("GET", "/v2/")(ping)
    fake.route("GET", "/v2/test/far/tags/list")(tag_list)
    fake.route("GET", "/v2/test/far/manifests/*")(manifest)
    opened = 0

    async def on_create(*_: Any) -> None:
        nonlocal opened
        opened += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_create)
    results = 0
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as http,
        RegistryClient(session=http, plain_http=True, use_env_credentials=False) as client,
        client.scan(f"{fake.host}/test/far", what="manifest") as scan,
    ):
        async for result in scan:
            assert result.error is None, result.error
            results += 1
    return results, opened, len(fake.seen)


async def test_connections_are_opened_while_the_tags_are_listed():
    async with FakeServer() as fake:
        results, opened, requests = await _scan_far_registry(fake)
    assert results == len(TAGS)
    assert requests == 2 + len(TAGS)  # nothing is sent on the connections opened ahead
    # The ping opened one; every manifest found a connection open.
    assert opened <= 2


async def test_without_opening_ahead_each_request_opens_its_own(monkeypatch):
    monkeypatch.setattr(_scan_tag, "PREOPEN_ROUND_TRIP", math.inf)
    async with FakeServer() as fake:
        results, opened, _ = await _scan_far_registry(fake)
    assert results == len(TAGS)
    assert opened >= len(TAGS) - 2


def _session(round_trip: float | None, rate: float | None = None) -> Any:
    return SimpleNamespace(pacer=SimpleNamespace(round_trip=round_trip, requests_per_second=rate))


def _scanner(*, initial: int = 64, ceiling: int = 256, adaptive: bool = True) -> TagScanner:
    return TagScanner(
        None,  # type: ignore[arg-type]  (the sessions are not used here)
        what="manifest",
        platform=None,
        repo_type="image",
        resolve="get",
        initial=initial,
        ceiling=ceiling,
        adaptive=adaptive,
        on_grow=lambda: None,
    )


def test_how_many_are_opened_ahead():
    scanner = _scanner()
    assert scanner.connections_to_preopen(_session(None)) == 0  # distance unknown
    assert scanner.connections_to_preopen(_session(0.002)) == 0  # near: little to win
    assert scanner.connections_to_preopen(_session(0.02)) == 64  # where the limiter starts
    assert scanner.connections_to_preopen(_session(0.1)) == 256
    assert scanner.connections_to_preopen(_session(0.5)) == 256  # never above the ceiling
    # Under a rate cap only what the rate keeps in flight (Docker Hub's 25/s at 100 ms).
    assert scanner.connections_to_preopen(_session(0.1, rate=25.0)) == 5
    # --concurrency N: N.
    assert _scanner(initial=8, ceiling=8, adaptive=False).connections_to_preopen(_session(0.1)) == 8
