"""The benchmark's world: a token-auth registry over TLS, latency in front of it, known content.

- Debian's ``docker-registry`` (distribution 2.8) with ``auth: token`` and TLS, trusting the
  tests' token issuer (``tests/support``: one implementation of registry setup for the tests,
  the demo and the benchmarks).
- Two `latency_proxy.LatencyProxy` instances, one in front of the registry and one in front of
  the token realm (the registry advertises the proxied realm), both running in a background
  thread so contenders run as ordinary subprocesses; `BenchEnv.set_rtt` changes the delay.
- Content, generated and pushed through the API: ``bench/many`` (1,000 tags over 250 distinct
  images, 25 of them multi-arch indexes of three platforms) and ``bench/distinct`` (200 tags,
  200 distinct images). `Expected` holds, per tag, what a correct client must answer.
- `BenchEnv.registry_cpu`: the registry process's CPU seconds so far, for the CPU the registry
  spends on a contender's requests (`limit.cpu_seconds`).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE)]

from latency_proxy import LatencyProxy  # noqa: E402
from limit import cpu_seconds  # noqa: E402
from support.certs import make_certs  # noqa: E402
from support.content import (  # noqa: E402
    DOCKER_LIST,
    OCI_INDEX,
    PushedImage,
    PushedIndex,
    _image,
    _index,
    _Plan,
    apush_plan,
)
from support.registry import RegistryProcess  # noqa: E402
from support.tokens import TokenIssuer  # noqa: E402

__all__ = ["BenchEnv", "Expected", "bench_env", "build_plan", "targets_of"]

PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/arm/v7")


@dataclass(frozen=True)
class Expected:
    """What a tag must resolve to for linux/amd64."""

    digest: str  # what the tag points to (an index's own digest when multi-arch)
    manifest_digest: str
    config_digest: str


def no_cache(python: str | os.PathLike[str], cwd: Path | None = None) -> list[str]:
    """``["--no-cache"]`` when that interpreter's aioregistry has a cache (issue #14), so a
    timed scan fetches what a first scan does and no run is helped by the one before it;
    ``[]`` for a checkout from before the cache, which keeps none."""
    import subprocess  # noqa: PLC0415

    help_text = subprocess.run(
        [str(python), "-m", "aioregistry", "scan", "--help"],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    ).stdout
    return ["--no-cache"] if "--no-cache" in help_text else []


def targets_of(
    name: str, distinct: int, multi_every: int, plan: _Plan
) -> list[PushedImage | PushedIndex]:
    """The ``distinct`` images of repository ``name`` (the same bytes every time), added to
    ``plan``; every ``multi_every``-th is an index. Tag ``t`` points at image ``t % distinct``."""
    targets: list[PushedImage | PushedIndex] = []
    for i in range(distinct):
        if multi_every and i % multi_every == 0:
            oci = (i // multi_every) % 2 == 0
            children = tuple(
                _image(name, f"image{i:04d}-{p}", p, oci=oci, layer_sizes=(512,)) for p in PLATFORMS
            )
            for child in children:
                plan.add_image(child)
                plan.put_child(child)
            targets.append(_index(name, OCI_INDEX if oci else DOCKER_LIST, children))
        else:
            image = _image(name, f"image{i:04d}", "linux/amd64", layer_sizes=(512,))
            plan.add_image(image)
            targets.append(image)
    return targets


def _repository(
    name: str, tags: int, distinct: int, multi_every: int, plan: _Plan
) -> dict[str, Expected]:
    """``tags`` tags over ``distinct`` images; every ``multi_every``-th image is an index."""
    targets = targets_of(name, distinct, multi_every, plan)
    expected: dict[str, Expected] = {}
    width = len(str(tags - 1))
    for t in range(tags):
        tag = f"v{t:0{width}d}"
        target = targets[t % distinct]
        plan.put_tag(target, tag)
        if isinstance(target, PushedIndex):
            child = target.children[0]  # linux/amd64 is first
            expected[tag] = Expected(target.digest, child.digest, child.config_digest)
        else:
            expected[tag] = Expected(target.digest, target.digest, target.config_digest)
    return expected


def build_plan(
    many_tags: int = 1000, many_distinct: int = 250, distinct_tags: int = 200
) -> tuple[_Plan, dict[str, dict[str, Expected]]]:
    plan = _Plan()
    expected = {
        "bench/many": _repository("bench/many", many_tags, many_distinct, 10, plan),
        "bench/distinct": _repository("bench/distinct", distinct_tags, distinct_tags, 0, plan),
    }
    return plan, expected


class _ProxyThread:
    """Runs latency proxies on an event loop of their own, beside the benchmark's subprocesses."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxies", daemon=True)
        self.thread.start()

    def start(self, port: int) -> LatencyProxy:
        proxy = LatencyProxy("127.0.0.1", port, 0.0)
        asyncio.run_coroutine_threadsafe(proxy.__aenter__(), self.loop).result(10)
        return proxy

    def stop(self, proxies: list[LatencyProxy]) -> None:
        for proxy in proxies:
            asyncio.run_coroutine_threadsafe(proxy.__aexit__(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class BenchEnv:
    registry: RegistryProcess
    issuer: TokenIssuer
    registry_proxy: LatencyProxy
    realm_proxy: LatencyProxy
    ca_file: Path
    expected: dict[str, dict[str, Expected]]
    rtt: float = 0.0
    # Per repository, the concurrency that won the limit's sweep at this RTT.
    limit_concurrency: dict[str, int] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """The address contenders use: the registry behind the latency proxy."""
        return f"127.0.0.1:{self.registry_proxy.port}"

    @property
    def registry_pid(self) -> int:
        pid = self.registry.pid
        if pid is None:
            raise RuntimeError("the registry is not running")
        return pid

    def registry_cpu(self) -> float:
        """The registry process's user + system CPU seconds so far (all its threads)."""
        return cpu_seconds(self.registry_pid)

    @property
    def registry_cores(self) -> int:
        """The CPUs the registry may run on (its affinity): Go runs on all of them."""
        return len(os.sched_getaffinity(self.registry_pid))

    def set_rtt(self, rtt: float) -> None:
        self.rtt = rtt
        self.limit_concurrency.clear()  # a new RTT: the limit sweeps again
        for proxy in (self.registry_proxy, self.realm_proxy):
            proxy.delay = rtt / 2


@contextmanager
def bench_env(
    workdir: Path, *, many_tags: int = 1000, many_distinct: int = 250
) -> Iterator[BenchEnv]:
    """Start the issuer, the proxies and the registry; push the content; stop all at the end."""
    certs = make_certs(workdir / "certs")
    proxies = _ProxyThread()
    started: list[LatencyProxy] = []
    try:
        with TokenIssuer(certs.token_key, certs.token_cert) as issuer:
            realm_proxy = proxies.start(issuer.port)
            started.append(realm_proxy)
            realm = f"http://127.0.0.1:{realm_proxy.port}/token"
            with RegistryProcess(
                "token", workdir / "registry", certs=certs, issuer=issuer, tls=True, realm=realm
            ) as registry:
                plan, expected = build_plan(many_tags, many_distinct)
                asyncio.run(apush_plan(registry, plan))
                registry_proxy = proxies.start(registry.port)
                started.append(registry_proxy)
                yield BenchEnv(
                    registry, issuer, registry_proxy, realm_proxy, certs.ca_file, expected
                )
    finally:
        proxies.stop(started)
