"""The fault proxy's own modes (support.faultproxy), checked by their counts, not by the clock.

The proxy stands in front of ``registry_many`` (token auth: an unauthenticated ``GET /v2/``
is answered 401 by the registry itself, so a 401 means "admitted and forwarded"). Throttling
is checked with plain aiohttp; that a client keeping to the cap is never refused, with a scan.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from support.faultproxy import FaultProxy, rate_for_share
from support.registry import RegistryProcess
from support.tokens import TokenIssuer

from aioregistry import RegistryClient

pytestmark = pytest.mark.anyio


class Clock:
    """A clock for the token bucket that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _get(session: aiohttp.ClientSession, proxy: FaultProxy) -> tuple[int, str | None]:
    async with session.get(f"http://{proxy.host}/v2/") as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


async def _get_all(proxy: FaultProxy, n: int) -> list[tuple[int, str | None]]:
    """``n`` requests at once, each on a connection of its own."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        return list(await asyncio.gather(*(_get(session, proxy) for _ in range(n))))


@pytest.mark.parametrize("share", [0.01, 0.1])
def test_rate_for_share_makes_that_share_of_answers_503(share):
    burst = (1, 8)
    proxy = FaultProxy(
        "http://127.0.0.1:1",
        seed=3,
        rate=rate_for_share(share, burst),
        weights={"503": 1.0},
        burst=burst,
    )
    answers = [proxy._choose("GET", f"/v2/x/manifests/{i}") for i in range(40_000)]
    assert abs(answers.count("503") / len(answers) - share) < share / 10
    runs, run = [], 0  # lengths of the runs of consecutive 503s (two bursts may touch)
    for answer in [*answers, None]:
        if answer == "503":
            run += 1
        elif run:
            runs.append(run)
            run = 0
    assert min(runs) == 1
    assert max(runs) >= 8


@pytest.mark.parametrize("retry_after", [None, "1"])
async def test_an_empty_bucket_answers_429(registry_many: RegistryProcess, retry_after):
    clock = Clock()
    async with FaultProxy(
        registry_many.url, rps=10, rps_burst=5, rps_retry_after=retry_after, clock=clock
    ) as proxy:
        first = await _get_all(proxy, 12)  # the clock stands still: 5 tokens for 12 requests
        clock.now += 0.35  # 3.5 more tokens
        second = [await _get_all(proxy, 1) for _ in range(4)]
    assert sorted(first) == [(401, None)] * 5 + [(429, retry_after)] * 7
    assert [answer for [answer] in second] == [(401, None)] * 3 + [(429, retry_after)]
    assert (proxy.admitted, proxy.refused) == (8, 8)
    throttled = [r for r in proxy.records if r.throttled]
    assert len(throttled) == 8
    assert {r.fault for r in throttled} == {"429"}
    assert proxy.retryable_faults == 8
    assert proxy.counts() == {
        "requests": 16,
        "admitted": 8,
        "refused": 8,
        "peak_in_flight": proxy.peak_in_flight,
        "faults": {},
    }


async def test_requests_beyond_the_cap_in_flight_get_503(registry_many: RegistryProcess):
    # Every admitted answer is held, so the first 8 are all in flight when the rest arrive.
    async with FaultProxy(
        registry_many.url, max_in_flight=8, rate=1.0, weights={"hold": 1.0}, hold=1.0
    ) as proxy:
        answers = await _get_all(proxy, 20)
        proxy.rate = 0.0  # no more holds
        after = await _get_all(proxy, 1)  # nothing in flight now: admitted
    assert sorted(answers) == [(401, None)] * 8 + [(503, None)] * 12
    assert after == [(401, None)]
    assert (proxy.admitted, proxy.refused, proxy.peak_in_flight) == (9, 12, 8)
    assert proxy.in_flight == 0
    assert len(proxy.faults("hold")) == 8  # held answers are not faults to retry
    assert proxy.retryable_faults == 12
    assert proxy.counts()["faults"] == {"hold": 8}


async def test_a_scan_kept_to_the_cap_is_never_refused(
    registry_many: RegistryProcess, many_issuer: TokenIssuer
):
    content = registry_many.content
    async with (
        FaultProxy(registry_many.url, max_in_flight=8) as proxy,
        RegistryClient(plain_http=True, use_env_credentials=False) as client,
        client.scan(
            f"{proxy.host}/{content.many_repository}", what="digest", concurrency=8
        ) as scan,
    ):
        results = [result async for result in scan]
    assert sorted((r.tag, r.digest, r.error) for r in results) == sorted(
        (tag, pushed.digest, None) for tag, pushed in content.many_tags.items()
    )
    assert proxy.refused == 0
    assert proxy.admitted == len(proxy.records) >= len(content.many_tags)
    assert 1 <= proxy.peak_in_flight <= 8
    assert scan.stats.retries == 0
