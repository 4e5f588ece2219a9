"""The benchmark of the cache (issue #14): a first scan and a warm re-scan, side by side.

The job is the benchmark's own row (a config scan of the 1,000 tags of ``bench/many``, 250
distinct images, 25 of them multi-arch; every answer checked against what was pushed, as
`bench.run_once` does), run as a whole process at each round-trip time three ways, round by
round:

- ``--no-cache``: what a scan costs without the cache (every run a first run);
- first scan: ``--cache DIR`` with DIR fresh and empty (what the first run of a cached CLI
  costs: the cache is filled as it goes);
- warm re-scan: the same command again on that DIR (the repository unchanged).

Counted per run: wall time, the scan's own time (its summary line), the registry's requests
(its access log): GETs of manifests and blobs, HEADs, and the rest (ping, token-free
listing). The goal: a warm re-scan at most 0.6x the first scan's time at RTT 20 ms and
100 ms. Run alone or from ``benchmarks/bench.py --only-cache``:

    python benchmarks/cache.py --rtt 0.02,0.1 --runs 3
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "peers")]

from bench import PYTHON, Contender, machine, run_once  # noqa: E402
from env import BenchEnv, bench_env  # noqa: E402

__all__ = ["GOAL", "markdown", "run", "write"]

REPOSITORY = "bench/many"
GOAL = 0.6  # warm re-scan / first scan, at most
KINDS = ("no cache", "first scan", "warm re-scan")
_CONTENT = re.compile(r"^/v2/.+/(manifests|blobs)/[^/?]+$")


def _contender(name: str, cache: list[str]) -> Contender:
    def argv(env: BenchEnv, repo: str, _limit: int | None) -> list[str]:
        return [
            PYTHON, "-m", "aioregistry", "scan", f"{env.host}/{repo}", "--what", "config",
            "--ca-file", str(env.ca_file), "--format", "jsonl", *cache,
        ]  # fmt: skip

    return Contender(name, argv)


def _scan(env: BenchEnv, name: str, cache: list[str]) -> dict[str, Any]:
    mark = env.registry.log_mark()
    result = run_once(env, _contender(name, cache), REPOSITORY, None)  # checked, settled
    log = env.registry.access_log(since=mark)
    gets = sum(1 for e in log if e["method"] == "GET" and _CONTENT.match(e["path"]))
    heads = sum(1 for e in log if e["method"] == "HEAD")
    return {
        "seconds": result.seconds,
        "work_seconds": result.work_seconds,
        "requests": len(log),
        "content_gets": gets,
        "heads": heads,
        # The registry's CPU over the run: on two shared cores it, not the round trips, is
        # what a re-scan of one HEAD per tag is left waiting for.
        "registry_cpu": result.registry_cpu_seconds,
    }


def run(env: BenchEnv, rtts: list[float], runs: int) -> dict[str, Any]:
    """Each kind ``runs`` times at each RTT, round by round; what `markdown` reads."""
    measured: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rtt in rtts:
        env.set_rtt(rtt)
        by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for round_ in range(runs):
            by_kind["no cache"].append(_scan(env, "no cache", ["--no-cache"]))
            with tempfile.TemporaryDirectory(prefix="aioregistry-cache-bench-") as workdir:
                cache = ["--cache", str(Path(workdir) / "cache")]
                by_kind["first scan"].append(_scan(env, "first scan", cache))
                by_kind["warm re-scan"].append(_scan(env, "warm re-scan", cache))
            print(
                f"cache bench: RTT {rtt * 1000:.0f} ms, round {round_ + 1}/{runs}: "
                + ", ".join(f"{k} {v[-1]['seconds']:.2f} s" for k, v in by_kind.items()),
                file=sys.stderr,
            )
        measured[f"{rtt}"] = by_kind
    return {"repository": REPOSITORY, "runs": runs, "goal": GOAL, "measured": measured}


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _count(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def markdown(data: dict[str, Any]) -> list[str]:
    lines = [
        f"## The cache: first scan and warm re-scan ({data['repository']})",
        "",
        f"Medians of {data['runs']} runs, whole process (`python -m aioregistry scan "
        f"HOST/{data['repository']} --what config`); the scan's own time from its summary; "
        "requests from the registry's access log; the registry process's CPU seconds. "
        "*first scan*: `--cache DIR` with DIR empty; "
        "*warm re-scan*: the same again; *no cache*: `--no-cache`. "
        f"Goal: warm ≤ {data['goal']}× first.",
        "",
        "| RTT | run | time | scan's own | requests | GET manifest/blob | HEAD | registry CPU "
        "| warm/first |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rtt, by_kind in data["measured"].items():
        first = _median(by_kind["first scan"], "seconds")
        warm = _median(by_kind["warm re-scan"], "seconds")
        for kind in KINDS:
            runs = by_kind[kind]
            ratio = ""
            if kind == "warm re-scan" and first and warm is not None:
                ratio = f"{warm / first:.2f}× {'✓' if warm / first <= data['goal'] else '✗'}"
            lines.append(
                f"| {float(rtt) * 1000:.0f} ms | {kind} | {_seconds(_median(runs, 'seconds'))} "
                f"| {_seconds(_median(runs, 'work_seconds'))} "
                f"| {_count(_median(runs, 'requests'))} "
                f"| {_count(_median(runs, 'content_gets'))} | {_count(_median(runs, 'heads'))} "
                f"| {_seconds(_median(runs, 'registry_cpu'))} | {ratio} |"
            )
    return lines


def write(stem: Path, data: dict[str, Any]) -> Path:
    stem.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    path = stem.with_suffix(".md")
    path.write_text("\n".join(["# aioregistry: the cache", "", *markdown(data), ""]))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt", default="0.02,0.1")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    rtts = [float(x) for x in args.rtt.split(",")]
    with (
        tempfile.TemporaryDirectory(prefix="aioregistry-bench-") as workdir,
        bench_env(Path(workdir)) as env,
    ):
        data = run(env, rtts, args.runs)
    print("\n".join(markdown(data)))
    args.out.mkdir(parents=True, exist_ok=True)
    path = write(args.out / f"{date.today().isoformat()}-{machine()}-cache", data)
    print(f"report: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
