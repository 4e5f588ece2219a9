"""Scans of the real registry through a proxy that injects seeded faults (issue #5).

``registry_many`` (1,000 tags over 250 images, token auth) sits behind
`support.faultproxy.FaultProxy`; the token realm is not proxied. Every scan must end with each
tag either exactly what was pushed or, only where the proxy corrupted that tag's manifest or
config bytes, an explicit `ProtocolError` for that tag: never a wrong answer. The retries the
scan reports must cover every retryable fault the proxy injected.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import pytest
from support.content import Content
from support.faultproxy import RETRYABLE, FaultProxy
from support.registry import RegistryProcess
from support.tokens import TokenIssuer

from aioregistry import ProtocolError, RegistryClient, Retries, ScanResult, ScanStats, Timeouts

pytestmark = pytest.mark.anyio

SEED = 5
# Enough attempts for the proxy's per-path fault budget (2) with one to spare; tiny waits.
RETRIES = Retries(attempts=4, backoff=0.02, max_wait=2.0)
# A stalled body is given up on after this long; generous enough that a loaded machine's
# slow answers are not mistaken for stalls.
READ_TIMEOUT = 1.5

# Faults that reach the client as an HTTP answer (a status, or headers and a cut body).
ANSWERED = ("503", "429", "stall", "truncate")


@dataclass
class Outcome:
    results: list[ScanResult]
    stats: ScanStats


async def _scan(
    proxy: FaultProxy,
    content: Content,
    *,
    concurrency: int = 32,
    stalls: bool = True,
    retries: Retries = RETRIES,
) -> Outcome:
    # Only a scan that meets stalls needs the short read timeout.
    timeouts = Timeouts(connect=5, read=READ_TIMEOUT if stalls else 60, total=120)
    async with (
        RegistryClient(
            plain_http=True, use_env_credentials=False, retries=retries, timeouts=timeouts
        ) as client,
        client.scan(
            f"{proxy.host}/{content.many_repository}", what="config", concurrency=concurrency
        ) as scan,
    ):
        results = [result async for result in scan]
    return Outcome(results, scan.stats)


def _check(outcome: Outcome, content: Content, proxy: FaultProxy) -> dict[str, ScanResult]:
    """Every result right, or an error only where the proxy corrupted that tag's content.

    Returns the failed results by tag.
    """
    many = content.many_repository
    results = outcome.results
    assert sorted(r.tag or "" for r in results) == sorted(content.many_tags)
    flipped = proxy.flipped_paths()
    failed: dict[str, ScanResult] = {}
    for result in results:
        assert result.tag is not None
        pushed = content.many_tags[result.tag]
        if result.error is not None:
            failed[result.tag] = result
            continue
        assert result.digest == pushed.digest, result.tag
        assert result.manifest_digest == pushed.digest, result.tag
        assert result.config_digest == pushed.config_digest, result.tag
        assert result.manifest is not None
        assert result.manifest.raw == pushed.raw, result.tag
        assert result.config is not None
        assert result.config.raw == pushed.config_raw, result.tag
    for tag, result in failed.items():
        assert result.error is not None
        pushed = content.many_tags[tag]
        own = {f"/v2/{many}/manifests/{tag}", f"/v2/{many}/blobs/{pushed.config_digest}"}
        assert own & flipped, (
            f"{tag} failed though none of its content was corrupted: "
            f"{result.error.type}: {result.error.message}"
        )
        assert isinstance(result.error.exception, ProtocolError), result.error
    asked = Counter(r.path for r in proxy.records)
    for path in flipped:
        if asked[path] > 1 or outcome.stats.hedges:
            # Hedged or retried: another answer (one that lost may never have reached the
            # proxy) may have been the right one. Every result given is checked above.
            continue
        if "/manifests/" in path:  # a corrupted manifest cannot give a right answer
            assert path.rsplit("/", 1)[1] in failed, path
        else:  # nor a corrupted config: at least the tag that asked for it fails
            digest = path.rsplit("/", 1)[1]
            assert any(content.many_tags[t].config_digest == digest for t in failed), path
    assert outcome.stats.results == len(results)
    assert outcome.stats.errors == len(failed)
    # Nothing is given up on: every request that got a retryable fault was sent again, or
    # was itself a hedge of one still in flight (which then answered).
    requests = [(r.method, r.path) for r in proxy.records]
    sent = Counter(requests)
    for i, record in enumerate(proxy.records):
        if record.fault in RETRYABLE:
            key = (record.method, record.path)
            assert key in requests[i + 1 :] or sent[key] >= 2, record
    # Each fault that reached the client as an answer costs it one counted retry or hedge (a
    # late answer may be beaten by a hedge; a reset on a reused connection may be re-sent by
    # aiohttp itself, unseen); a retry or a hedge always repeats a request.
    # (A hedge that lost may have been cancelled before it reached the proxy.)
    answered = len(proxy.faults(*ANSWERED))
    stats = outcome.stats
    assert answered <= stats.retries + stats.hedges
    assert stats.retries <= len(requests) - len(set(requests))
    return failed


@pytest.fixture
def content(registry_many: RegistryProcess, many_issuer: TokenIssuer) -> Content:
    return registry_many.content


async def test_scan_through_transient_faults_is_complete_and_correct(registry_many, content):
    weights = {"503": 1.0, "429": 0.5, "reset": 1.0, "truncate": 1.0}
    async with FaultProxy(registry_many.url, seed=SEED, rate=0.07, weights=weights) as proxy:
        outcome = await _scan(proxy, content, stalls=False)
    failed = _check(outcome, content, proxy)
    assert failed == {}
    for kind in weights:
        assert proxy.faults(kind), f"seed {SEED} injected no {kind}"
    assert len(proxy.faults()) > 50


async def test_stalled_bodies_are_hedged_or_given_up_on_and_retried(registry_many, content):
    async with FaultProxy(
        registry_many.url, seed=SEED, rate=0.015, weights={"stall": 1.0}
    ) as proxy:
        outcome = await _scan(proxy, content)
    assert len(proxy.faults("stall")) >= 5
    assert _check(outcome, content, proxy) == {}


async def test_corrupted_manifests_and_configs_are_errors_never_wrong_answers(
    registry_many, content
):
    async with FaultProxy(registry_many.url, seed=SEED, rate=0.02, weights={"flip": 1.0}) as proxy:
        # Without hedges, so that each corrupted answer is the only one (one a hedge beat
        # would rightly give the right answer, which this test would not see fail).
        no_hedges = Retries(attempts=4, backoff=0.02, max_wait=2.0, hedge_share=0)
        outcome = await _scan(proxy, content, stalls=False, retries=no_hedges)
    assert outcome.stats.hedges == 0
    flipped = proxy.flipped_paths()
    assert any("/manifests/" in p for p in flipped)
    assert any("/blobs/" in p for p in flipped)
    assert _check(outcome, content, proxy)


async def test_a_scan_with_a_tenth_of_requests_faulted_loses_nothing(registry_many, content):
    """The issue's acceptance test: every fault at once, about 10% of requests."""
    weights = {"503": 1.0, "429": 0.5, "reset": 1.0, "stall": 0.3, "truncate": 1.0, "flip": 0.5}
    async with FaultProxy(registry_many.url, seed=SEED, rate=0.06, weights=weights) as proxy:
        outcome = await _scan(proxy, content)
    share = len(proxy.faults()) / len(proxy.records)
    assert 0.07 <= share <= 0.15, share
    for kind in weights:
        assert proxy.faults(kind), f"seed {SEED} injected no {kind}"
    _check(outcome, content, proxy)
    assert outcome.stats.retries > 0


async def test_short_lived_tokens_are_renewed_once_per_expiry(registry_many, content, many_issuer):
    """Tokens the registry honours for 2 s, across a scan of several times that long.

    Distribution accepts a JWT up to 60 s past its ``exp``; the issuer signs ``exp`` 58 s in
    the past, so each token works for 2 s (1-2 s: ``iat`` is whole seconds). The proxy's
    latency stretches the scan; the client learns of each expiry from a 401 and must fetch
    one new token for all its tasks, not one per task.
    """
    lifetime = 2
    many_issuer.jwt_lifetime = lifetime - 60
    many_issuer.expires_in = lifetime  # below 60, so the client takes it as 60: 401s tell
    concurrency, latency = 8, 0.04
    tags = len(content.many_tags)
    assert tags * latency / concurrency >= 2.5 * lifetime  # the scan outlives several tokens
    async with (
        FaultProxy(registry_many.url, latency=latency) as proxy,
        RegistryClient(plain_http=True, use_env_credentials=False, retries=RETRIES) as client,
        client.scan(
            f"{proxy.host}/{content.many_repository}", what="digest", concurrency=concurrency
        ) as scan,
    ):
        results = [result async for result in scan]
    assert [r for r in results if r.error is not None] == []
    assert sorted((r.tag, r.digest) for r in results) == sorted(
        (tag, pushed.digest) for tag, pushed in content.many_tags.items()
    )
    span = proxy.records[-1].time - proxy.records[0].time
    issued = [record.time for record in many_issuer.issued]
    assert scan.stats.tokens_fetched == len(issued)
    # Several expiries happened, and each was noticed within two seconds of it...
    assert len(issued) >= max(2, int(span // (lifetime + 2))), (span, issued)
    # ...and answered by one token: a renewal comes only once the previous token has died.
    gaps = [later - earlier for earlier, later in itertools.pairwise(issued)]
    assert min(gaps) > lifetime - 1, gaps
