"""The limit: the registry's ceiling for "every tag: digest, linux/amd64 manifest, config".

A minimal load generator that makes exactly the requests a perfect client must make for that
job, and nothing else: one token request, one ``GET tags/list`` (per page), one
``GET /v2/NAME/manifests/<tag>`` per tag (Accept: OCI index, Docker manifest list, OCI
manifest, Docker v2), one ``GET manifests/<child digest>`` per distinct linux/amd64 child of
a multi-arch index, and one ``GET blobs/<config digest>`` per distinct config. No ping: the
realm is known. Bodies are read in full and never parsed (except the token's).

How:

1. **discovery** (not timed), with plain aiohttp: ``GET /v2/`` for the realm and service of
   the ``WWW-Authenticate`` challenge, an anonymous token, the tag list, every manifest by
   tag, every distinct child; this gives the URL plan. Its requests carry the User-Agent
   ``aioregistry-limit-discovery``.
2. **the timed pass** (User-Agent ``aioregistry-limit``), in one ``aiohttp.ClientSession``
   with ``TCPConnector(limit=concurrency)``, cold (no connection open yet): the token
   (``GET realm?service=...&scope=repository:NAME:pull``), then the tag list, then the rest
   of the plan through ``concurrency`` workers. The rest is ordered as a pipelined client
   would discover it: each tag's manifest, followed by its child and its config when they are
   first seen. The workers do not wait for a parent's answer before asking for what it
   names, so this is a bound no real client can beat. Every answer must be 200.
3. **the sweep**: one timed pass per concurrency of ``--concurrency`` (a comma-separated list,
   ``32,64,128,256,512`` by default; each pass cold, in a session of its own), after one
   discovery. A registry that is CPU-bound serves fewer requests per second at 256 in flight
   than at 64, so no single concurrency is the limit at every RTT: the limit is the fastest
   pass, and the concurrency that gave it is reported.

    python benchmarks/limit.py --registry 127.0.0.1:5000 --repository test/many \\
        --ca-file ca.pem [--plain-http] [--concurrency 32,64,128,256,512] [--registry-pid PID]

prints ``{"requests": N, "seconds": S, "token_requests": 1, "concurrency": C, "passes": [...]}``:
the fastest timed pass, its concurrency, and every pass (``concurrency``, ``seconds``, and with
``--registry-pid``, ``registry_cpu_seconds``: the registry process's user + system CPU over
that pass, from ``/proc/PID/stat``; see `cpu_seconds`).

``python benchmarks/limit.py --compare`` starts a token-auth TLS registry, pushes
``test/many`` (1,000 tags over 250 images by default), and runs this CLI and
``aioregistry scan HOST/test/many --what config --ca-file CA`` against it, checking that the
limit's requests are exactly the scan's minus its ping, against the scan's stderr summary and
the registry's access log (same method+path multiset), and prints a table.

`floor` is the latency floor of a request plan at a given round-trip time; `physical_floor`
is the larger of that floor (one round trip per dependency level) and the registry's own CPU
time for the requests spread over its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

# The comparison reuses the tests' registry setup; the load generator itself needs neither
# aioregistry nor tests/support.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

if TYPE_CHECKING:
    from support.registry import AccessLogEntry, RegistryProcess

__all__ = [
    "ACCEPT",
    "DEFAULT_CONCURRENCY",
    "SWEEP",
    "Discovery",
    "LimitResult",
    "RequestPlan",
    "compare",
    "cpu_seconds",
    "discover",
    "fire",
    "floor",
    "format_floors",
    "format_table",
    "main",
    "measure",
    "physical_floor",
    "rounds",
    "sweep",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
#: The Accept header of every manifest request: all four kinds, none converted.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
DEFAULT_CONCURRENCY = 256
#: The concurrencies the limit tries: its figure is the fastest of these passes.
SWEEP = (32, 64, 128, 256, 512)
DISCOVERY_CONCURRENCY = 32
SCAN_CONCURRENCY = 64  # aioregistry's default, for the floor of the scan's plan
USER_AGENT = "aioregistry-limit"
DISCOVERY_USER_AGENT = "aioregistry-limit-discovery"
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)


class LimitError(RuntimeError):
    """The registry did not answer as the plan expects."""


# -- the latency floor ---------------------------------------------------------------------


@dataclass(frozen=True)
class RequestPlan:
    """Requests of a job by dependency level, in dependency order.

    ``ping`` (``GET /v2/``) -> ``token`` -> ``tags`` (tag-list pages) -> ``manifests`` (one per
    tag) -> ``children`` (platform manifests of indexes) -> ``configs`` (config blobs).
    The limit makes no ping; ``aioregistry scan`` makes one (``with_ping()``).
    """

    ping: int = 0
    token: int = 0
    tags: int = 0
    manifests: int = 0
    children: int = 0
    configs: int = 0

    @property
    def total(self) -> int:
        return self.ping + self.token + self.tags + self.manifests + self.children + self.configs

    def with_ping(self, ping: int = 1) -> RequestPlan:
        return replace(self, ping=ping)

    def as_dict(self) -> dict[str, int]:
        return {
            "ping": self.ping,
            "token": self.token,
            "tags": self.tags,
            "manifests": self.manifests,
            "children": self.children,
            "configs": self.configs,
        }


def rounds(concurrency: int, plan: RequestPlan) -> int:
    """Round trips the plan needs at least, taken level by level.

    Each level present costs ``ceil(n / concurrency)`` rounds (one when it fits in the
    concurrency, more when it does not); tag-list pages cost one round each, since each page's
    URL comes from the previous page's ``Link``. Levels with no requests cost nothing.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    total = plan.tags  # pages are sequential
    for n in (plan.ping, plan.token, plan.manifests, plan.children, plan.configs):
        total += math.ceil(n / concurrency)
    return total


def floor(rtt: float, concurrency: int, plan: RequestPlan) -> float:
    """The latency floor in seconds: ``rounds(concurrency, plan) * rtt``.

    Each level waits for the one before it (the ping's challenge names the token realm, the
    token authorises the listing, the listing names the tags, a tag's manifest names its child
    and config), so a client needs one round trip per level, plus one per extra batch when a
    level has more requests than ``concurrency``. Server time, transfer time and connection
    set-up (TCP, TLS: one or two more rounds for each new connection) are left out, so real
    scans are slower. Example: ping + token + 1 page + 1,000 manifests + 250 configs at
    concurrency 64 is 1 + 1 + 1 + 16 + 4 = 23 rounds: 0.46 s at 20 ms.
    A client that overlaps levels (asks for a config while later manifests are still in
    flight) can save part of a level's last, partly-filled batch, so this is the floor of
    the level-by-level schedule, within (levels - 1) rounds of the absolute one.
    """
    return rounds(concurrency, plan) * rtt


def physical_floor(rtt: float, plan: RequestPlan, registry_cpu: float, cores: int = 1) -> float:
    """The larger of the plan's latency floor and the registry's CPU time for it, as wall time.

    The latency part is `floor` with every level sent at once (one round trip per dependency
    level, tag-list pages one each; connection set-up left out). The CPU part is what the
    registry process itself spent serving the requests (``registry_cpu``, see `cpu_seconds`)
    spread over the ``cores`` it may run on: a Go registry runs on all of them at once, so
    CPU seconds alone are no floor (on 2 cores it spends more CPU seconds than the fastest
    pass takes). The clients and the network need CPU too, so the true floor is higher.
    """
    widest = max(plan.ping, plan.token, plan.manifests, plan.children, plan.configs, 1)
    return max(floor(rtt, widest, plan), registry_cpu / cores)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads), from /proc.

    Fields 14 and 15 of ``/proc/PID/stat`` (``utime``, ``stime``) in clock ticks of
    ``os.sysconf("SC_CLK_TCK")`` (usually 100 a second, so 10 ms resolution). The process
    name, field 2, is in parentheses and may hold spaces: the fields are counted after it.
    """
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- discovery -----------------------------------------------------------------------------


@dataclass
class Discovery:
    """The URL plan of one repository, found by an untimed pass."""

    base: URL
    repository: str
    realm: URL | None  # None: the registry let anonymous requests in without a token
    service: str | None
    tag_pages: list[URL] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    requests: list[tuple[str, URL]] = field(default_factory=list)  # (kind, url), ordered

    @property
    def plan(self) -> RequestPlan:
        kinds = Counter(kind for kind, _ in self.requests)
        return RequestPlan(
            token=0 if self.realm is None else 1,
            tags=len(self.tag_pages),
            manifests=kinds["manifest"],
            children=kinds["child"],
            configs=kinds["config"],
        )

    @property
    def token_url(self) -> URL | None:
        if self.realm is None:
            return None
        query = dict(self.realm.query)
        if self.service:
            query["service"] = self.service
        query["scope"] = f"repository:{self.repository}:pull"
        return self.realm.with_query(query)


def _ssl(ca_file: str | None, *, plain_http: bool) -> ssl.SSLContext | bool:
    if plain_http:
        return False
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


async def _get(
    session: aiohttp.ClientSession, url: URL, headers: Mapping[str, str]
) -> tuple[int, bytes, aiohttp.ClientResponse]:
    async with session.get(url, headers=headers) as resp:
        body = await resp.read()
        return resp.status, body, resp


async def _token(session: aiohttp.ClientSession, url: URL) -> str:
    status, body, _ = await _get(session, url, {})
    if status != 200:
        raise LimitError(f"token request {url}: HTTP {status}: {body[:300]!r}")
    data = json.loads(body)
    token: str = data.get("token") or data["access_token"]
    return token


def _pick_amd64(index: Mapping[str, Any]) -> str:
    for entry in index.get("manifests", []):
        platform = entry.get("platform") or {}
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            digest: str = entry["digest"]
            return digest
    raise LimitError("an index has no linux/amd64 entry")


async def _challenge(session: aiohttp.ClientSession, found: Discovery) -> None:
    """``GET /v2/``: the realm and service of the bearer challenge, if there is one."""
    async with session.get(found.base / "v2/") as resp:
        await resp.read()
        challenge = resp.headers.get("WWW-Authenticate", "")
        status = resp.status
    if status == 401:
        scheme, _, params = challenge.partition(" ")
        values = dict(_CHALLENGE_PARAM.findall(params))
        if scheme.lower() != "bearer" or "realm" not in values:
            raise LimitError(f"{found.base} wants {challenge!r}, not an anonymous bearer token")
        found.realm, found.service = URL(values["realm"]), values.get("service")
    elif status != 200:
        raise LimitError(f"GET {found.base / 'v2/'}: HTTP {status}")


async def _list_tags(
    session: aiohttp.ClientSession, found: Discovery, headers: Mapping[str, str]
) -> None:
    """Every page of the tag list, following ``Link`` headers."""
    page: URL | None = found.base.with_path(f"/v2/{found.repository}/tags/list", encoded=True)
    while page is not None:
        found.tag_pages.append(page)
        status, body, resp = await _get(session, page, headers)
        if status != 200:
            raise LimitError(f"GET {page}: HTTP {status}: {body[:300]!r}")
        found.tags += json.loads(body).get("tags") or []
        links = [m[1] for h in resp.headers.getall("Link", []) if (m := _LINK_NEXT.search(h))]
        page = page.join(URL(links[0])) if links else None


def _order(
    found: Discovery, tops: Sequence[Mapping[str, Any]], children: Mapping[str, Mapping[str, Any]]
) -> None:
    """The timed plan: each tag's manifest, then its child and config when first seen."""
    seen_children: set[str] = set()
    seen_configs: set[str] = set()
    for tag, top in zip(found.tags, tops, strict=True):
        found.requests.append(("manifest", _manifest_url(found.base, found.repository, tag)))
        image = top
        if _is_index(top):
            child = _pick_amd64(top)
            image = children[child]
            if child not in seen_children:
                seen_children.add(child)
                url = _manifest_url(found.base, found.repository, child)
                found.requests.append(("child", url))
        config = image["config"]["digest"]
        if config not in seen_configs:
            seen_configs.add(config)
            url = found.base.with_path(f"/v2/{found.repository}/blobs/{config}", encoded=True)
            found.requests.append(("config", url))


def _is_index(document: Mapping[str, Any]) -> bool:
    return document.get("mediaType") in INDEX_TYPES or "manifests" in document


async def discover(
    registry: str,
    repository: str,
    *,
    ca_file: str | None = None,
    plain_http: bool = False,
    concurrency: int = DISCOVERY_CONCURRENCY,
) -> Discovery:
    """Find the URL plan for ``repository`` on ``registry`` (``HOST:PORT``), untimed."""
    base = URL.build(scheme="http" if plain_http else "https", authority=registry)
    found = Discovery(base, repository, None, None)
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=_ssl(ca_file, plain_http=plain_http))
    async with aiohttp.ClientSession(
        connector=connector, headers={"User-Agent": DISCOVERY_USER_AGENT}
    ) as session:
        await _challenge(session, found)
        headers: dict[str, str] = {}
        token_url = found.token_url
        if token_url is not None:
            headers["Authorization"] = f"Bearer {await _token(session, token_url)}"
        await _list_tags(session, found, headers)
        manifest_headers = {**headers, "Accept": ACCEPT}

        async def manifest(reference: str) -> dict[str, Any]:
            url = _manifest_url(base, repository, reference)
            status, body, _ = await _get(session, url, manifest_headers)
            if status != 200:
                raise LimitError(f"GET {url}: HTTP {status}: {body[:300]!r}")
            document: dict[str, Any] = json.loads(body)
            return document

        tops = await asyncio.gather(*(manifest(tag) for tag in found.tags))
        distinct = sorted({_pick_amd64(top) for top in tops if _is_index(top)})
        fetched = await asyncio.gather(*(manifest(digest) for digest in distinct))
    _order(found, tops, dict(zip(distinct, fetched, strict=True)))
    return found


def _manifest_url(base: URL, repository: str, reference: str) -> URL:
    return base.with_path(f"/v2/{repository}/manifests/{reference}", encoded=True)


# -- the timed pass ------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitResult:
    """What one timed pass did: requests (tokens included), seconds, token requests.

    ``concurrency`` is the pass's number of workers (and of connections at most);
    ``registry_cpu_seconds`` the registry's CPU over the pass, when its pid was given.
    """

    requests: int
    seconds: float
    token_requests: int
    concurrency: int = DEFAULT_CONCURRENCY
    registry_cpu_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requests": self.requests,
            "seconds": round(self.seconds, 4),
            "token_requests": self.token_requests,
            "concurrency": self.concurrency,
        }
        if self.registry_cpu_seconds is not None:
            out["registry_cpu_seconds"] = round(self.registry_cpu_seconds, 3)
        return out


async def fire(
    found: Discovery,
    *,
    ca_file: str | None = None,
    plain_http: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    cpu: Callable[[], float] | None = None,
) -> LimitResult:
    """The timed pass: token, tag list, then the plan through ``concurrency`` workers.

    ``cpu``, if given, is read just before the first request and just after the last answer
    (the registry's CPU seconds, say): the result carries the difference.
    """
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=_ssl(ca_file, plain_http=plain_http))
    async with aiohttp.ClientSession(
        connector=connector, headers={"User-Agent": USER_AGENT}
    ) as session:
        cpu_before = cpu() if cpu else 0.0
        started = time.perf_counter()
        requests = 0
        headers: dict[str, str] = {}
        token_url = found.token_url
        if token_url is not None:
            headers["Authorization"] = f"Bearer {await _token(session, token_url)}"
            requests += 1
        for page in found.tag_pages:
            status, body, _ = await _get(session, page, headers)
            if status != 200:
                raise LimitError(f"GET {page}: HTTP {status}: {body[:300]!r}")
            requests += 1
        by_kind = {
            "manifest": {**headers, "Accept": ACCEPT},
            "child": {**headers, "Accept": ACCEPT},
            "config": headers,
        }
        queue: Iterator[tuple[str, URL]] = iter(found.requests)

        async def worker() -> int:
            done = 0
            for kind, url in queue:  # one shared iterator: each request is taken once
                async with session.get(url, headers=by_kind[kind]) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise LimitError(f"GET {url}: HTTP {resp.status}")
                done += 1
            return done

        requests += sum(await asyncio.gather(*(worker() for _ in range(concurrency))))
        seconds = time.perf_counter() - started
        used = cpu() - cpu_before if cpu else None
    return LimitResult(requests, seconds, 0 if token_url is None else 1, concurrency, used)


async def measure(
    registry: str,
    repository: str,
    *,
    ca_file: str | None = None,
    plain_http: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> tuple[LimitResult, Discovery]:
    """Discover, then fire once; the timed result and the plan it fired."""
    found = await discover(registry, repository, ca_file=ca_file, plain_http=plain_http)
    result = await fire(found, ca_file=ca_file, plain_http=plain_http, concurrency=concurrency)
    if result.requests != found.plan.total:
        raise LimitError(f"made {result.requests} requests, planned {found.plan.total}")
    return result, found


async def sweep(
    found: Discovery,
    levels: Sequence[int] = SWEEP,
    *,
    ca_file: str | None = None,
    plain_http: bool = False,
    cpu: Callable[[], float] | None = None,
    pause: float = 0.2,
) -> list[LimitResult]:
    """One timed pass per concurrency of ``levels``, in order; the limit is the fastest.

    Each pass is cold (a session of its own) and checked to make the whole plan. ``pause``
    seconds between passes let the registry close the last pass's connections first, so
    that work is not counted in the next pass's time or CPU.
    """
    passes = []
    for i, level in enumerate(levels):
        if i and pause:
            await asyncio.sleep(pause)
        result = await fire(
            found, ca_file=ca_file, plain_http=plain_http, concurrency=level, cpu=cpu
        )
        if result.requests != found.plan.total:
            raise LimitError(f"made {result.requests} requests, planned {found.plan.total}")
        passes.append(result)
    return passes


def _best(passes: Sequence[LimitResult]) -> LimitResult:
    return min(passes, key=lambda result: result.seconds)


# -- the comparison with aioregistry scan --------------------------------------------------

_SUMMARY = re.compile(
    r"aioregistry: (\d+) results?, (\d+) errors?, (\d+) requests? \(([^)]*)\), (\d+) tokens?, "
    r"(\d+) retr(?:y|ies), (?:up to \d+ in flight, )?[\d.]+ MB, ([\d.]+) s"
)


def _scan_summary(stderr: str) -> dict[str, Any]:
    match = _SUMMARY.search(stderr)
    if match is None:
        raise LimitError(f"no summary line in {stderr!r}")
    kinds = {}
    for part in match[4].split(", "):
        kind, _, count = part.rpartition(" ")
        kinds[kind] = int(count)
    return {
        "results": int(match[1]),
        "errors": int(match[2]),
        "requests": int(match[3]),
        "by_kind": kinds,
        "tokens": int(match[5]),
        "seconds": float(match[7]),
    }


@dataclass
class _Run:
    """The best run of one client in `compare`, and what the registry saw of it."""

    requests: int = 0
    tokens: int = 0
    seconds: float = math.inf
    wall_seconds: float = math.inf
    registry_requests: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    paths: Counter[tuple[str, str]] = field(default_factory=Counter)
    concurrency: int = SCAN_CONCURRENCY  # the limit's: that of its fastest pass

    def keep_best(self, other: _Run) -> None:
        if other.seconds < self.seconds:
            self.__dict__.update(other.__dict__)


def _run_limit(registry: RegistryProcess, command: Sequence[str]) -> tuple[_Run, RequestPlan]:
    issuer = registry.issuer
    assert issuer is not None  # noqa: S101  (token mode)
    mark, tokens_before = registry.log_mark(), issuer.count
    wall = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - wall
    if done.returncode != 0:
        raise LimitError(f"limit failed: {done.stderr}")
    result = json.loads(done.stdout)
    plan = RequestPlan(**json.loads(done.stderr.strip().splitlines()[-1])["plan"])
    passes = result["passes"]
    # The access log holds every pass; each made the same requests.
    expected = sum(p["requests"] - p["token_requests"] for p in passes)
    timed = _log(registry, mark, expected, USER_AGENT)
    if len(timed) != expected or any(e["status"] != 200 for e in timed):
        raise LimitError(f"access log: {len(timed)} timed requests (not all 200?): {result}")
    if issuer.count - tokens_before != 1 + len(passes):  # discovery's and each pass's
        raise LimitError(
            f"{issuer.count - tokens_before} tokens issued, expected {1 + len(passes)}"
        )
    # One pass's requests, path by path: every pass requested each path as often.
    every = Counter((e["method"], e["path"]) for e in timed)
    if any(n % len(passes) for n in every.values()):
        raise LimitError("the limit's passes did not all make the same requests")
    paths = Counter({key: n // len(passes) for key, n in every.items()})
    return _Run(
        requests=result["requests"],
        tokens=result["token_requests"],
        seconds=result["seconds"],
        wall_seconds=wall,
        registry_requests=len(timed) // len(passes),
        paths=paths,
        concurrency=result["concurrency"],
    ), plan


def _run_scan(registry: RegistryProcess, command: Sequence[str], tags: int) -> _Run:
    issuer = registry.issuer
    assert issuer is not None  # noqa: S101  (token mode)
    mark, tokens_before = registry.log_mark(), issuer.count
    wall = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - wall
    if done.returncode != 0:
        raise LimitError(f"scan failed: {done.stderr}")
    summary = _scan_summary(done.stderr)
    lines = done.stdout.splitlines()
    if summary["errors"] or summary["results"] != tags or len(lines) != tags:
        raise LimitError(f"scan: {summary}, {len(lines)} lines")
    if any(json.loads(line)["error"] is not None for line in lines):
        raise LimitError("scan: a result has an error")
    expected = summary["requests"] - summary["tokens"]
    logged = _log(registry, mark, expected)
    if len(logged) != expected:
        raise LimitError(f"access log has {len(logged)} scan requests: {summary}")
    if issuer.count - tokens_before != summary["tokens"]:
        raise LimitError("the issuer's count differs from the scan's token count")
    return _Run(
        requests=summary["requests"],
        tokens=summary["tokens"],
        seconds=summary["seconds"],
        wall_seconds=wall,
        registry_requests=len(logged),
        by_kind=summary["by_kind"],
        paths=Counter((e["method"], e["path"]) for e in logged),
    )


def _check_accounting(limit: _Run, scan: _Run) -> None:
    """The limit's requests must be the scan's minus its ping, path by path."""
    pings = scan.by_kind.get("ping", 0)
    if limit.requests != scan.requests - pings:
        raise LimitError(f"limit made {limit.requests} requests, scan {scan.requests} - {pings}")
    without_ping = scan.paths - Counter({("GET", "/v2/"): pings})
    if without_ping != limit.paths:
        raise LimitError(
            f"different requests: {(without_ping - limit.paths).most_common(5)} vs "
            f"{(limit.paths - without_ping).most_common(5)}"
        )


def compare(
    *,
    tags: int = 1000,
    distinct: int = 250,
    concurrency: int | Sequence[int] = SWEEP,
    runs: int = 3,
) -> list[dict[str, Any]]:
    """Limit vs ``aioregistry scan --what config`` on one token-auth TLS registry.

    Starts the registry, pushes ``test/many`` (``tags`` over ``distinct`` images), runs each
    CLI ``runs`` times as a child process, alternating (the limit sweeps ``concurrency`` each
    time and keeps its fastest pass), and checks the request accounting
    (see the module doc). Rows: ``client``, ``command``, ``requests``,
    ``registry_requests`` (access log), ``token_requests``, ``seconds`` (best; the tool's own
    measure: the limit's timed pass, the scan's summary line, neither with interpreter
    start-up), ``wall_seconds`` (best, the whole process), ``plan`` (requests by level),
    ``by_kind`` (the scan's summary).
    """
    from support.certs import make_certs  # noqa: PLC0415  (only the comparison needs them)
    from support.registry import RegistryProcess  # noqa: PLC0415

    levels = _levels(concurrency)
    limit, scan, plan = _Run(), _Run(), RequestPlan()
    with tempfile.TemporaryDirectory(prefix="aioregistry-limit-") as tmp:
        certs = make_certs(Path(tmp) / "certs")
        with RegistryProcess("token", Path(tmp) / "r", certs=certs, tls=True) as registry:
            repository = registry.push_content(many_tags=tags, distinct=distinct).many_repository
            ca = str(certs.ca_file)
            limit_command = [
                *(sys.executable, str(Path(__file__).resolve())),
                *("--registry", registry.host, "--repository", repository),
                *("--ca-file", ca, "--concurrency", ",".join(map(str, levels))),
            ]
            scan_command = [
                *(sys.executable, "-m", "aioregistry", "scan", f"{registry.host}/{repository}"),
                *("--what", "config", "--format", "jsonl", "--ca-file", ca, "--no-cache"),
            ]
            for _ in range(runs):
                run, plan = _run_limit(registry, limit_command)
                limit.keep_best(run)
                scan.keep_best(_run_scan(registry, scan_command, tags))
            _check_accounting(limit, scan)
    common = {"tags": tags, "distinct": distinct}
    return [
        {
            "client": "limit",
            "command": f"python benchmarks/limit.py --registry HOST --repository {repository} "
            f"--ca-file CA --concurrency {','.join(map(str, levels))}",
            **_row(limit),
            "plan": plan.as_dict(),
            "concurrency": limit.concurrency,
            **common,
        },
        {
            "client": "aioregistry scan",
            "command": f"python -m aioregistry scan HOST/{repository} --what config --ca-file CA",
            **_row(scan),
            "plan": plan.with_ping(scan.by_kind.get("ping", 0)).as_dict(),
            "by_kind": scan.by_kind,
            "concurrency": SCAN_CONCURRENCY,
            **common,
        },
    ]


def _row(run: _Run) -> dict[str, Any]:
    return {
        "requests": run.requests,
        "registry_requests": run.registry_requests,
        "token_requests": run.tokens,
        "seconds": round(run.seconds, 3),
        "wall_seconds": round(run.wall_seconds, 3),
    }


def _log(
    registry: RegistryProcess, mark: int, count: int, user_agent: str | None = None
) -> list[AccessLogEntry]:
    """Access-log entries after ``mark`` (of ``user_agent``), once ``count`` are there."""
    deadline = time.monotonic() + 10
    while True:
        entries = [
            entry
            for entry in registry.access_log(mark)
            if user_agent is None or entry["user_agent"] == user_agent
        ]
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)  # the registry appends its access lines asynchronously


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: the comparison rows."""
    lines = [
        "| client | requests | at the registry | tokens | seconds | wall seconds | req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['client']} | {r['requests']:,} | {r['registry_requests']:,} | "
        f"{r['token_requests']} | {r['seconds']:.3f} | {r['wall_seconds']:.3f} | "
        f"{r['requests'] / r['seconds']:,.0f} |"
        for r in rows
    ]
    return "\n".join(lines)


def format_floors(
    rows: Sequence[Mapping[str, Any]], rtts: Sequence[float] = (0.001, 0.02, 0.1)
) -> str:
    """Markdown: each row's latency floor at a few RTTs (the scan at its default 64)."""
    header = " | ".join(f"{rtt * 1000:g} ms" for rtt in rtts)
    lines = [
        f"| plan | concurrency | rounds | {header} |",
        "| --- | ---: | ---: |" + " ---: |" * len(rtts),
    ]
    for row in rows:
        plan = RequestPlan(**row["plan"])
        concurrency = row["concurrency"]
        cells = " | ".join(f"{floor(rtt, concurrency, plan):.2f} s" for rtt in rtts)
        lines.append(f"| {row['client']} | {concurrency} | {rounds(concurrency, plan)} | {cells} |")
    return "\n".join(lines)


def _levels(concurrency: int | Sequence[int] | str) -> list[int]:
    """``256``, ``[64, 256]`` or ``"64,256"``: the concurrencies to try, each >= 1."""
    if isinstance(concurrency, int):
        levels = [concurrency]
    elif isinstance(concurrency, str):
        levels = [int(part) for part in concurrency.split(",") if part.strip()]
    else:
        levels = list(concurrency)
    if not levels or min(levels) < 1:
        raise ValueError(f"concurrency must be a list of numbers >= 1, not {concurrency!r}")
    return levels


async def _measure_sweep(
    args: argparse.Namespace, levels: Sequence[int]
) -> tuple[list[LimitResult], Discovery]:
    found = await discover(
        args.registry, args.repository, ca_file=args.ca_file, plain_http=args.plain_http
    )
    pid = args.registry_pid
    passes = await sweep(
        found,
        levels,
        ca_file=args.ca_file,
        plain_http=args.plain_http,
        cpu=(lambda: cpu_seconds(pid)) if pid else None,
    )
    return passes, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--registry", metavar="HOST:PORT")
    parser.add_argument("--repository", metavar="NAME")
    parser.add_argument("--ca-file", metavar="PEM")
    parser.add_argument("--plain-http", action="store_true")
    parser.add_argument(
        "--concurrency",
        type=_levels,
        default=list(SWEEP),
        metavar="N[,N...]",
        help="one timed pass per number; the fastest is the limit (default: %(default)s)",
    )
    parser.add_argument(
        "--registry-pid", type=int, metavar="PID", help="report this process's CPU per pass"
    )
    parser.add_argument(
        "--compare", action="store_true", help="start a registry and compare with aioregistry"
    )
    parser.add_argument("--tags", type=int, default=1000, help="with --compare")
    parser.add_argument("--distinct", type=int, default=250, help="with --compare")
    parser.add_argument("--runs", type=int, default=3, help="with --compare")
    args = parser.parse_args()
    if args.compare:
        rows = compare(
            tags=args.tags, distinct=args.distinct, concurrency=args.concurrency, runs=args.runs
        )
        print(format_table(rows))
        print()
        print(format_floors(rows))
        print()
        for row in rows:
            print(f"- {row['client']}: `{row['command']}`, plan {row['plan']}")
        return
    if not (args.registry and args.repository):
        parser.error("--registry and --repository are required (or --compare)")
    passes, found = asyncio.run(_measure_sweep(args, args.concurrency))
    # The fastest pass is the limit; every pass follows, for whoever wants the sweep.
    print(json.dumps({**_best(passes).as_dict(), "passes": [p.as_dict() for p in passes]}))
    # The plan, for whoever runs this by hand or compares (stderr: stdout is one JSON line).
    print(json.dumps({"plan": found.plan.as_dict()}), file=sys.stderr)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
