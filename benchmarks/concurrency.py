"""Time a 1,000-tag config scan against concurrency and round-trip time.

Starts Debian's ``docker-registry`` on loopback (plain HTTP, no auth), pushes 1,000 tags over
250 distinct images with the tests' content builder, then runs ``RegistryClient.scan`` through
`latency_proxy.LatencyProxy` for each RTT and concurrency and prints a markdown table of
seconds (the best of ``--runs`` runs). Every result is checked for errors.

    python benchmarks/concurrency.py --rtt 0,0.02,0.1 --concurrency 1,8,16,32,64,128,auto

``auto`` is the default adaptive bound; its cell also shows the peak it reached.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# One implementation of registry setup for the tests, the demo and the benchmarks.
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE)]

from latency_proxy import LatencyProxy  # noqa: E402
from support.registry import RegistryProcess  # noqa: E402

from aioregistry import RegistryClient  # noqa: E402


async def scan_once(
    port: int, rtt: float, concurrency: int | None, tags: int
) -> tuple[float, int, int]:
    async with (
        LatencyProxy("127.0.0.1", port, rtt) as proxy,
        RegistryClient(plain_http=True, use_env_credentials=False) as client,
    ):
        started = time.perf_counter()
        results = 0
        repository = f"127.0.0.1:{proxy.port}/test/many"
        async with client.scan(repository, what="config", concurrency=concurrency) as scan:
            async for result in scan:
                if result.error is not None:
                    raise SystemExit(f"scan failed: {result.reference}: {result.error}")
                results += 1
        elapsed = time.perf_counter() - started
    if results != tags:
        raise SystemExit(f"expected {tags} results, got {results}")
    return elapsed, scan.stats.total_requests, max(scan.stats.concurrency.values())


async def measure(port: int, args: argparse.Namespace) -> None:
    rtts = [float(x) for x in args.rtt.split(",")]
    levels = [None if x == "auto" else int(x) for x in args.concurrency.split(",")]
    print("| RTT \\ concurrency | " + " | ".join(str(c or "auto") for c in levels) + " |")
    print("| --- |" + " --- |" * len(levels))
    requests = 0
    for rtt in rtts:
        cells = []
        for level in levels:
            times, peaks = [], []
            for _ in range(args.runs):
                elapsed, requests, peak = await scan_once(port, rtt, level, args.tags)
                times.append(elapsed)
                peaks.append(peak)
            best = min(times)
            peak = peaks[times.index(best)]
            cells.append(f"{best:.2f}" + (f" (peak {peak})" if level is None else ""))
        label = "0 (proxy, no delay)" if rtt == 0 else f"{rtt * 1000:.0f} ms"
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{args.tags} tags, {args.distinct} distinct images, {requests} requests per scan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt", default="0,0.02,0.1", help="comma-separated seconds")
    parser.add_argument("--concurrency", default="1,8,16,32,64,128,auto")
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--distinct", type=int, default=250)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as workdir,
        RegistryProcess("http", Path(workdir)) as registry,
    ):
        registry.push_content(many_tags=args.tags, distinct=args.distinct)
        asyncio.run(measure(registry.port, args))


if __name__ == "__main__":
    main()
