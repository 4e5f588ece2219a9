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
scan's own seconds (its summary line), and B's median as a ratio to A's. ``--peer`` adds PyPI's
aioregistry 0.7.3 (the bench's contender, from its venv under ``.bench/``) as a third side in
the same rotation, and both checkouts' medians as ratios to its; ``--repo bench/distinct``
runs one repository only.

    python benchmarks/ab.py --a /tmp/before --b . --rtt 0,0.1 --repo bench/distinct --peer
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

from bench import Contender, contenders, run_once  # noqa: E402
from env import BenchEnv, bench_env, no_cache  # noqa: E402

REPOS = ("bench/many", "bench/distinct")
PEER = "aioregistry 0.7.3 from PyPI (all tags at once)"  # bench.contenders' name for it


def _python(checkout: Path) -> Path:
    python = checkout / ".nox" / "bench" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing: run `python3 -m nox -s bench` in {checkout}")
    return python


@functools.cache
def _no_cache(checkout: Path) -> tuple[str, ...]:
    """``--no-cache`` for a checkout with a cache: both sides scan as a first scan does."""
    return tuple(no_cache(_python(checkout), cwd=checkout))


def _scan(env: BenchEnv, repo: str, *, checkout: Path) -> tuple[float, float]:
    """One whole-process config scan of ``repo``: (wall seconds, the scan's own seconds)."""

    uncached = _no_cache(checkout)

    def argv(env: BenchEnv, repo: str, _limit: int | None) -> list[str]:
        return [
            str(_python(checkout)), "-m", "aioregistry", "scan", f"{env.host}/{repo}",
            "--what", "config", "--ca-file", str(env.ca_file), "--format", "jsonl", *uncached,
        ]  # fmt: skip

    run = run_once(env, Contender(str(checkout), argv), repo, None, cwd=checkout)
    return run.seconds, run.work_seconds if run.work_seconds is not None else run.seconds


def _peer() -> Callable[[BenchEnv, str], tuple[float, float]]:
    """One whole-process scan by 0.7.3, as the bench runs it: (wall seconds, wall seconds)."""
    import venvs  # noqa: PLC0415  (benchmarks/peers/venvs.py, on the path bench.py set)

    contender = next(c for c in contenders(venvs.python_for) if c.name == PEER)
    if not venvs.python_for("aioregistry073").exists():
        raise SystemExit("0.7.3's venv is missing: run `python3 -m nox -s bench` once")

    def scan(env: BenchEnv, repo: str) -> tuple[float, float]:
        run = run_once(env, contender, repo, None)
        return run.seconds, run.seconds

    return scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="the checkout before")
    parser.add_argument("--b", type=Path, required=True, help="the checkout after")
    parser.add_argument("--rtt", default="0,0.02")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repo", choices=REPOS, help="only this repository (default: both)")
    parser.add_argument("--peer", action="store_true", help="also PyPI's 0.7.3, in the rotation")
    parser.add_argument("--label", help="ignored: a name for the process list (pgrep -f)")
    args = parser.parse_args()
    checkouts = {"A": args.a.resolve(), "B": args.b.resolve()}
    print(f"A = {checkouts['A']}\nB = {checkouts['B']}")
    sides: dict[str, Callable[[BenchEnv, str], tuple[float, float]]] = {
        side: functools.partial(_scan, checkout=checkout) for side, checkout in checkouts.items()
    }
    if args.peer:
        sides["0.7.3"] = _peer()
        print("0.7.3 = PyPI's aioregistry 0.7.3 (benchmarks/peers/aioregistry073_scan.py)")
    with (
        tempfile.TemporaryDirectory(prefix="aioregistry-ab-") as workdir,
        bench_env(Path(workdir)) as env,
    ):
        for rtt in (float(x) for x in args.rtt.split(",")):
            env.set_rtt(rtt)
            for repo in [args.repo] if args.repo else REPOS:
                for scan in sides.values():
                    scan(env, repo)  # warm: connections, caches, page cache
                times: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
                for _ in range(args.runs):
                    for side, scan in sides.items():
                        times[side].append(scan(env, repo))
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
                if "0.7.3" in medians:
                    print(
                        f"rtt={rtt * 1000:.0f}ms {repo} A/0.7.3: "
                        f"{medians['A'] / medians['0.7.3']:.2f}, "
                        f"B/0.7.3: {medians['B'] / medians['0.7.3']:.2f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
