"""A/B: the same scans by two checkouts of aioregistry, alternated in one run.

For a change's before/after figures on a shared, noisy machine: both sides meet the same
registry, the same latency and the same load, run after run (A, B, A, B, ...), so what the
machine does meanwhile weighs on both alike. Each side is a checkout with its own
interpreter that has that checkout installed (``nox -s bench`` leaves one in
``CHECKOUT/.nox/bench/bin/python``); the scan runs with the checkout as its working
directory, so ``python -m aioregistry`` imports that checkout's package (`bench.run_once`,
which checks every answer against what was pushed).

    git worktree add /tmp/before HEAD~3 && (cd /tmp/before && python3 -m nox -s bench -- --help)
    python benchmarks/ab.py --a /tmp/before --b . --rtt 0,0.02 --runs 5

prints, per RTT and repository, each side's median and min-max whole-process seconds and the
scan's own seconds (its summary line), and B's median as a ratio to A's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

from bench import Contender, run_once  # noqa: E402
from env import BenchEnv, bench_env  # noqa: E402

REPOS = ("bench/many", "bench/distinct")


def _python(checkout: Path) -> Path:
    python = checkout / ".nox" / "bench" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing: run `python3 -m nox -s bench` in {checkout}")
    return python


def _scan(env: BenchEnv, checkout: Path, repo: str) -> tuple[float, float]:
    """One whole-process config scan of ``repo``: (wall seconds, the scan's own seconds)."""

    def argv(env: BenchEnv, repo: str, _limit: int | None) -> list[str]:
        return [
            str(_python(checkout)), "-m", "aioregistry", "scan", f"{env.host}/{repo}",
            "--what", "config", "--ca-file", str(env.ca_file), "--format", "jsonl",
        ]  # fmt: skip

    run = run_once(env, Contender(str(checkout), argv), repo, None, cwd=checkout)
    return run.seconds, run.work_seconds if run.work_seconds is not None else run.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="the checkout before")
    parser.add_argument("--b", type=Path, required=True, help="the checkout after")
    parser.add_argument("--rtt", default="0,0.02")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--label", help="ignored: a name for the process list (pgrep -f)")
    args = parser.parse_args()
    sides = {"A": args.a.resolve(), "B": args.b.resolve()}
    print(f"A = {sides['A']}\nB = {sides['B']}")
    with (
        tempfile.TemporaryDirectory(prefix="aioregistry-ab-") as workdir,
        bench_env(Path(workdir)) as env,
    ):
        for rtt in (float(x) for x in args.rtt.split(",")):
            env.set_rtt(rtt)
            for repo in REPOS:
                for checkout in sides.values():
                    _scan(env, checkout, repo)  # warm: connections, caches, page cache
                times: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
                for _ in range(args.runs):
                    for side, checkout in sides.items():
                        times[side].append(_scan(env, checkout, repo))
                medians = {}
                for side, runs in times.items():
                    walls = [wall for wall, _ in runs]
                    medians[side] = statistics.median(walls)
                    own = statistics.median(scan for _, scan in runs)
                    print(
                        f"rtt={rtt * 1000:.0f}ms {repo} {side}: {medians[side]:.2f} s "
                        f"({min(walls):.2f}-{max(walls):.2f}), scan {own:.2f} s",
                        flush=True,
                    )
                print(f"rtt={rtt * 1000:.0f}ms {repo} B/A: {medians['B'] / medians['A']:.2f}")


if __name__ == "__main__":
    main()
