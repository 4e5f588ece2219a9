"""``nox -s bench``: aioregistry beside its peers and the limit, on one registry, in one run.

The job, for every tag of ``bench/many`` (1,000 tags over 250 distinct images, 25 of them
multi-arch) and ``bench/distinct`` (200 tags, 200 images): the tag's digest, the linux/amd64
manifest, and the config blob. Each contender is a whole process (see `contenders`), run
several times at each added round-trip time; every answer is checked against what was pushed.
Slow peers are timed on the first N tags and extrapolated to the whole repository (said so in
the report). Counted per run: wall time, peak RSS (``/usr/bin/time``), HTTP requests (the
registry's access log), token requests (the issuer's count), the registry's CPU seconds
(``/proc/PID/stat``). The limit sweeps its concurrency once per RTT and repository
(`sweep_limit`) and then runs at the winner.

    python benchmarks/bench.py --rtt 0,0.02,0.1 --runs 3 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(HERE / "peers")]

from env import BenchEnv, Expected, bench_env  # noqa: E402

PYTHON = sys.executable
SUMMARY = re.compile(r"^aioregistry: \d+ results?, .*, ([0-9.]+) s$", re.MULTILINE)
PEAK = re.compile(r"^aioregistry: \d+ results?, .*, up to (\d+) in flight,", re.MULTILINE)
TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Contender:
    name: str
    argv: Callable[[BenchEnv, str, int | None], list[str]]
    # Tags timed per RTT (None: all); the rest is extrapolated linearly.
    sample: Callable[[float], int | None] = lambda _rtt: None
    runs: Callable[[float, int], int] = lambda _rtt, runs: runs
    checks_config: bool = True  # whether its output carries manifest/config digests
    is_limit: bool = False


def _ours(extra: list[str]) -> Callable[[BenchEnv, str, int | None], list[str]]:
    # --no-cache: every run scans as a first scan does, as the peers' runs do
    def argv(env: BenchEnv, repo: str, _limit: int | None) -> list[str]:
        return [
            PYTHON, "-m", "aioregistry", "scan", f"{env.host}/{repo}", "--what", "config",
            "--ca-file", str(env.ca_file), "--format", "jsonl", "--no-cache", *extra,
        ]  # fmt: skip

    return argv


def _peer(
    program: list[str], *, platform: bool = True
) -> Callable[[BenchEnv, str, int | None], list[str]]:
    def argv(env: BenchEnv, repo: str, limit: int | None) -> list[str]:
        args = [
            *program, "--registry", env.host, "--repository", repo, "--ca-file", str(env.ca_file),
        ]  # fmt: skip
        if platform:
            args += ["--platform", "linux/amd64"]
        return [*args, "--limit", str(limit)] if limit else args

    return argv


def contenders(venv_python: Callable[[str], Path]) -> list[Contender]:
    peers = HERE / "peers"
    return [
        Contender("aioregistry scan (default)", _ours([])),
        Contender(
            "aioregistry scan --concurrency 1",
            _ours(["--concurrency", "1"]),
            runs=lambda rtt, runs: 1 if rtt >= 0.1 else runs,
        ),
        Contender(
            "old bash functions (curl + jq, token per call)",
            _peer(["bash", str(peers / "old_bash.sh")]),
            sample=lambda rtt: 100 if rtt == 0 else 20,
            runs=lambda rtt, runs: min(runs, 2),
        ),
        Contender(
            "skopeo inspect per tag",
            _peer(["bash", str(peers / "skopeo_loop.sh")]),
            sample=lambda rtt: 50 if rtt == 0 else 10,
            runs=lambda rtt, runs: min(runs, 2),
            checks_config=False,
        ),
        Contender(
            "python-dxf (sequential)",
            _peer([str(venv_python("dxf")), str(peers / "dxf_scan.py")]),
            sample=lambda rtt: None if rtt == 0 else 100,
            runs=lambda rtt, runs: min(runs, 2),
        ),
        Contender(
            "aioregistry 0.7.3 from PyPI (all tags at once)",
            _peer([str(venv_python("aioregistry073")), str(peers / "aioregistry073_scan.py")]),
        ),
        Contender(
            "limit: load generator (aiohttp, no parsing, best concurrency of a sweep)",
            _limit_argv,
            checks_config=False,
            is_limit=True,
        ),
    ]


def _limit_argv(env: BenchEnv, repo: str, _limit: int | None, levels: str = "") -> list[str]:
    """The limit at ``levels`` (default: the winner of this RTT's sweep), counting CPU."""
    import limit  # noqa: PLC0415

    levels = levels or str(env.limit_concurrency.get(repo, limit.DEFAULT_CONCURRENCY))
    return [
        PYTHON, str(HERE / "limit.py"), "--registry", env.host, "--repository", repo,
        "--ca-file", str(env.ca_file), "--concurrency", levels,
        "--registry-pid", str(env.registry_pid),
    ]  # fmt: skip


def sweep_limit(env: BenchEnv, repo: str) -> dict[str, Any]:
    """One timed pass of the limit per level of `limit.SWEEP` (one process, one discovery).

    Sets ``env.limit_concurrency[repo]`` to the level of the fastest pass, at which the limit's
    normal runs follow. Returns the plan, every pass (seconds, registry CPU, concurrency) and
    the registry's cores (for the physical floor).
    """
    import limit  # noqa: PLC0415

    levels = ",".join(str(level) for level in limit.SWEEP)
    proc = subprocess.run(
        _limit_argv(env, repo, None, levels), capture_output=True, text=True, cwd=ROOT, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"the limit's sweep failed ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    plan = json.loads(proc.stderr.strip().splitlines()[-1])["plan"]
    env.limit_concurrency[repo] = report["concurrency"]
    passes = ", ".join(f"{p['concurrency']}: {p['seconds']:.2f} s" for p in report["passes"])
    print(f"rtt={env.rtt * 1000:.0f}ms {repo} limit sweep: {passes}", file=sys.stderr, flush=True)
    return {"plan": plan, "passes": report["passes"], "registry_cores": env.registry_cores}


@dataclass
class Run:
    seconds: float  # the whole process, start-up included
    peak_rss_mb: float
    requests: int
    tokens: int
    tags: int
    # The tool's own measure of its work, where it reports one: our scan's summary line (no
    # interpreter start-up), the limit's timed pass (no start-up, no URL discovery).
    work_seconds: float | None = None
    # Our scan's most requests in flight (its adaptive concurrency's peak), from its summary.
    peak_concurrency: int | None = None
    # The registry process's CPU seconds over the run (the limit: over its timed pass).
    registry_cpu_seconds: float | None = None
    concurrency: int | None = None  # the limit's


@dataclass
class Row:
    contender: str
    repository: str
    rtt: float
    total_tags: int
    runs: list[Run] = field(default_factory=list)
    is_limit: bool = False
    # The limit's sweep at this RTT: {"plan": requests by level, "passes": one per level}.
    limit_sweep: dict[str, Any] | None = None

    @property
    def sampled(self) -> bool:
        return bool(self.runs) and self.runs[0].tags < self.total_tags

    def _scale(self, value: float) -> float:
        run = self.runs[0]
        return value * self.total_tags / run.tags if run.tags else value

    @property
    def median(self) -> float:
        return self._scale(statistics.median(r.seconds for r in self.runs))

    @property
    def work_median(self) -> float | None:
        works = [r.work_seconds for r in self.runs if r.work_seconds is not None]
        return self._scale(statistics.median(works)) if works else None

    @property
    def spread(self) -> tuple[float, float]:
        return (
            self._scale(min(r.seconds for r in self.runs)),
            self._scale(max(r.seconds for r in self.runs)),
        )

    @property
    def requests(self) -> float:
        """As measured (on the sample, for a sampled row: one-time costs do not scale)."""
        return statistics.median(r.requests for r in self.runs)

    @property
    def tokens(self) -> float:
        return statistics.median(r.tokens for r in self.runs)

    @property
    def rss(self) -> float:
        return max(r.peak_rss_mb for r in self.runs)


def _verify(
    name: str, out: str, expected: dict[str, Expected], tags: int, checks_config: bool
) -> None:
    got: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        record = json.loads(line)
        got[record["tag"]] = record
    want = sorted(expected)[:tags]
    missing = [t for t in want if t not in got]
    if missing:
        raise SystemExit(f"{name}: {len(missing)} tags missing, e.g. {missing[:3]}")
    for tag in want:
        exp, rec = expected[tag], got[tag]
        if rec.get("error"):
            raise SystemExit(f"{name}: {tag} failed: {rec['error']}")
        if rec["digest"] != exp.digest:
            raise SystemExit(f"{name}: {tag} digest {rec['digest']} != {exp.digest}")
        if checks_config and (rec["manifest_digest"], rec["config_digest"]) != (
            exp.manifest_digest,
            exp.config_digest,
        ):
            raise SystemExit(f"{name}: {tag} manifest/config digests differ from what was pushed")


def run_once(
    env: BenchEnv, contender: Contender, repo: str, limit: int | None, *, cwd: Path = ROOT
) -> Run:
    """One whole-process run of ``contender`` on ``repo``, checked; ``cwd`` is where it runs
    (a checkout, for ``python -m aioregistry`` to import that checkout's package)."""
    expected = env.expected[repo]
    argv = contender.argv(env, repo, limit)
    mark, tokens_before = env.registry.log_mark(), env.issuer.count
    cpu_before = env.registry_cpu()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        started = time.perf_counter()
        proc = subprocess.run(
            [TIME, "-f", "%M", "-o", timing.name, *argv],
            capture_output=True,
            text=True,
            cwd=cwd,
            check=False,
            env={**os.environ, "SSL_CERT_FILE": str(env.ca_file)},
        )
        seconds = time.perf_counter() - started
        registry_cpu = env.registry_cpu() - cpu_before
        rss_kb = int(timing.read().strip().splitlines()[-1] or 0)
    if proc.returncode != 0:
        raise SystemExit(f"{contender.name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    tags = limit or len(expected)
    requests = _settled_count(env, mark)
    tokens = env.issuer.count - tokens_before
    work: float | None = None
    peak: int | None = None
    level: int | None = None
    if contender.is_limit:
        # Its untimed discovery pass (finding the URLs) is not the work: take its own count,
        # time and registry CPU of the timed pass.
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        work, requests, tokens = report["seconds"], report["requests"], report["token_requests"]
        registry_cpu, level = report["registry_cpu_seconds"], report["concurrency"]
    else:
        _verify(contender.name, proc.stdout, expected, tags, contender.checks_config)
        summary = SUMMARY.search(proc.stderr)
        if summary:
            work = float(summary.group(1))
        in_flight = PEAK.search(proc.stderr)
        if in_flight:
            peak = int(in_flight.group(1))
    return Run(seconds, rss_kb / 1024, requests, tokens, tags, work, peak, registry_cpu, level)


def _settled_count(env: BenchEnv, mark: int) -> int:
    """Requests logged since ``mark``, once the registry has written the last of them."""
    count = -1
    while True:
        now = len(env.registry.access_log(since=mark))
        if now == count:
            return count
        count = now
        time.sleep(0.1)


def measure(env: BenchEnv, rtts: list[float], runs: int, only: set[str] | None) -> list[Row]:
    import venvs  # noqa: PLC0415  (benchmarks/peers/venvs.py: the peers' own virtualenvs)

    rows: list[Row] = []
    chosen = [c for c in contenders(venvs.python_for) if not only or c.name in only]
    for rtt in rtts:
        env.set_rtt(rtt)
        for repo in ("bench/many", "bench/distinct"):
            for contender in chosen:
                limit = contender.sample(rtt)
                row = Row(
                    contender.name, repo, rtt, len(env.expected[repo]), is_limit=contender.is_limit
                )
                if contender.is_limit:
                    row.limit_sweep = sweep_limit(env, repo)
                for _ in range(contender.runs(rtt, runs)):
                    row.runs.append(run_once(env, contender, repo, limit))
                rows.append(row)
                print(
                    f"rtt={rtt * 1000:.0f}ms {repo} {contender.name}: {row.median:.2f} s"
                    f"{' (extrapolated)' if row.sampled else ''}, {row.requests:.0f} requests, "
                    f"{row.tokens:.0f} tokens, {row.rss:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
    return rows


SWEEP_LEVELS = ["8", "16", "32", "64", "128", "256", "auto"]


def concurrency_sweep(
    env: BenchEnv, rtts: list[float], levels: list[str]
) -> dict[float, dict[str, float]]:
    """Whole-process seconds of our scan per RTT and ``--concurrency`` (``auto``: default)."""
    table: dict[float, dict[str, float]] = {}
    for rtt in rtts:
        env.set_rtt(rtt)
        table[rtt] = {}
        for level in levels:
            args = [] if level == "auto" else ["--concurrency", level]
            contender = Contender(f"c={level}", _ours(args))
            table[rtt][level] = run_once(env, contender, "bench/many", None).seconds
    return table


def _adversity_options(parser: argparse.ArgumentParser) -> None:
    """benchmarks/adversity.py's flags (its section is part of the extras, after the sweep)."""
    parser.add_argument(
        "--no-adversity",
        action="store_true",
        help="skip the adversity section (so does --no-extras)",
    )
    parser.add_argument(
        "--only-adversity",
        action="store_true",
        help="run the adversity section alone (writes DATE-MACHINE-adversity.md/.json)",
    )
    parser.add_argument("--adversity-rtt", help="its RTTs (default: the first of --rtt)")


def _adversity(env: BenchEnv, args: argparse.Namespace, rtts: list[float]) -> dict[str, Any]:
    """benchmarks/adversity.py's section, unless skipped ({} then)."""
    if args.no_adversity or (args.no_extras and not args.only_adversity):
        return {}
    import adversity  # noqa: PLC0415

    chosen = [float(x) for x in args.adversity_rtt.split(",")] if args.adversity_rtt else rtts[:1]
    data = adversity.run(env, chosen, args.runs)
    print("\n".join(adversity.markdown(data)))
    if args.only_adversity:  # a report of its own, beside (not over) the day's full report
        args.out.mkdir(parents=True, exist_ok=True)
        path = adversity.write(args.out / f"{date.today().isoformat()}-{machine()}-adversity", data)
        print(f"report: {path}", file=sys.stderr)
    return data


def _cache_options(parser: argparse.ArgumentParser) -> None:
    """benchmarks/cache.py's flags (its section is part of the extras, after adversity)."""
    parser.add_argument(
        "--no-cache-section",
        action="store_true",
        help="skip the cache section (so does --no-extras)",
    )
    parser.add_argument(
        "--only-cache",
        action="store_true",
        help="run the cache section alone (first scan vs warm re-scan; DATE-MACHINE-cache.md)",
    )
    parser.add_argument("--cache-rtt", help="its RTTs (default: those of --rtt above 0)")


def _cache(env: BenchEnv, args: argparse.Namespace, rtts: list[float]) -> dict[str, Any]:
    """benchmarks/cache.py's section, unless skipped ({} then); its own report file."""
    if args.no_cache_section or (args.no_extras and not args.only_cache):
        return {}
    import cache  # noqa: PLC0415

    chosen = (
        [float(x) for x in args.cache_rtt.split(",")]
        if args.cache_rtt
        else [rtt for rtt in rtts if rtt > 0] or rtts
    )
    data = cache.run(env, chosen, args.runs)
    print("\n".join(cache.markdown(data)))
    args.out.mkdir(parents=True, exist_ok=True)
    path = cache.write(args.out / f"{date.today().isoformat()}-{machine()}-cache", data)
    print(f"report: {path}", file=sys.stderr)
    return data


def machine() -> str:
    return f"{platform.machine()}-{os.cpu_count()}cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt", default="0,0.02,0.1")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--only", action="append", help="run only this contender (repeatable)")
    parser.add_argument("--no-extras", action="store_true", help="skip memory/startup/sweep")
    parser.add_argument(
        "--rewrite", type=Path, help="only rewrite the report from a results .json of a run"
    )
    _adversity_options(parser)
    _cache_options(parser)
    args = parser.parse_args()
    rtts = [float(x) for x in args.rtt.split(",")]
    import report  # noqa: PLC0415

    if args.rewrite:
        saved = json.loads(args.rewrite.read_text())
        rows = [Row(**{**r, "runs": [Run(**run) for run in r["runs"]]}) for r in saved["rows"]]
        sweep = {float(k): dict(v) for k, v in saved["sweep"].items()}
        rtts = sorted({row.rtt for row in rows})
        report.write(args.rewrite.with_suffix(""), rows, sweep, saved["extras"], rtts)
        print("\n".join(report.summary(rows)), file=sys.stderr)
        return

    with (
        tempfile.TemporaryDirectory(prefix="aioregistry-bench-") as workdir,
        bench_env(Path(workdir)) as env,
    ):
        if args.only_adversity:
            _adversity(env, args, rtts)
            return
        if args.only_cache:
            _cache(env, args, rtts)
            return
        rows = measure(env, rtts, args.runs, set(args.only) if args.only else None)
        sweep = {} if args.no_extras else concurrency_sweep(env, rtts, SWEEP_LEVELS)
        adversity = _adversity(env, args, rtts)
        _cache(env, args, rtts)
    extras: dict[str, Any] = {"adversity": adversity} if adversity else {}
    if not args.no_extras:
        import memory  # noqa: PLC0415
        import startup  # noqa: PLC0415

        extras["memory"] = memory.run()
        extras["startup"] = startup.run()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{date.today().isoformat()}-{machine()}"
    report.write(stem, rows, sweep, extras, rtts)
    print("\n".join(report.summary(rows)), file=sys.stderr)
    print(f"report: {stem}.md", file=sys.stderr)


if __name__ == "__main__":
    main()
