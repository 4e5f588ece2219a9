"""The benchmark "under adversity": our scan through a registry that fails, holds and throttles.

Six scenarios, each the same whole-process job as the benchmark's own row (a config scan of the
1,000 tags of ``bench/many``, default settings, every result checked against what was pushed)
through `support.faultproxy.FaultProxy` in front of the benchmark's registry, and each against
a reference measured in the same run through the same proxy:

- 1% / 10% of answers 503, singly or in bursts of up to 8 consecutive answers; 3% of answers
  held 2 s (then answered in full): against the clean scan through the proxy (no faults);
- a token bucket of 300 requests/s (30 tokens) answering 429 without ``Retry-After``, and with
  ``Retry-After: 1``: against a scan told the rate (``--max-rps 290``) through that bucket;
- a registry answering 503 to any request beyond 8 in flight: against a scan told
  ``--concurrency 8`` through that cap.

The proxy runs in a process of its own (``python benchmarks/adversity.py --serve OPTIONS``),
fresh for every scan, serving TLS with the registry's certificate and forwarding to the
registry through the benchmark's latency proxy (so ``BenchEnv.set_rtt`` applies); the token
realm is not behind it. Run by ``benchmarks/bench.py`` (``--no-adversity`` skips it,
``--only-adversity`` runs nothing else):

    python benchmarks/bench.py --only-adversity --rtt 0 --runs 1
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests"), str(HERE)]

from support.faultproxy import FaultProxy, rate_for_share  # noqa: E402

__all__ = ["REFERENCES", "SCENARIOS", "markdown", "run", "write"]

PYTHON = sys.executable
REPOSITORY = "bench/many"
BURST = (1, 8)  # a 503 comes alone or starts a run of up to 8 consecutive 503 answers
RPS = 300
RETRIES = re.compile(r"^aioregistry: \d+ results?, .*, (\d+) retr(?:y|ies), ", re.MULTILINE)
PEAK = re.compile(r"^aioregistry: \d+ results?, .*, up to (\d+) in flight,", re.MULTILINE)
WORK = re.compile(r"^aioregistry: \d+ results?, .*, ([0-9.]+) s$", re.MULTILINE)
SCAN_TIMEOUT = 600.0


@dataclass(frozen=True)
class Setup:
    """A proxy configuration (`FaultProxy` options) and the scan's own extra arguments."""

    key: str
    title: str
    proxy: dict[str, Any] = field(default_factory=dict)
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    setup: Setup
    reference: str  # a key of REFERENCES
    goal: float  # the most time allowed, as a multiple of the reference's
    goal_text: str
    throttling: bool = False  # report refused / admitted (goal: at most REFUSED_GOAL)
    fault: str | None = None  # the fault whose measured share of answers is reported


REFUSED_GOAL = 0.15


def _503(share: float) -> dict[str, Any]:
    return {"rate": rate_for_share(share, BURST), "weights": {"503": 1.0}, "burst": BURST}


BUCKET = {"rps": RPS}
REFERENCES = {
    "clean": Setup("clean", "the clean scan through the proxy (no faults)"),
    "max-rps": Setup(
        "max-rps", f"`--max-rps 290` through the {RPS}/s bucket (no Retry-After)", BUCKET,
        ("--max-rps", "290"),
    ),
    "concurrency-8": Setup(
        "concurrency-8", "`--concurrency 8` through the cap of 8 in flight", {"max_in_flight": 8},
        ("--concurrency", "8"),
    ),
}  # fmt: skip
SCENARIOS = [
    Scenario(
        Setup("503-1", "1% of answers 503 (alone or in bursts of up to 8)", _503(0.01)),
        "clean", 1.3, "≤1.3×", fault="503",
    ),
    Scenario(
        Setup("503-10", "10% of answers 503 (alone or in bursts of up to 8)", _503(0.10)),
        "clean", 2.0, "≤2×", fault="503",
    ),
    Scenario(
        Setup("hold-3", "3% of answers held 2 s, then answered", {
            "rate": 0.03, "weights": {"hold": 1.0}, "hold": 2.0,
        }),
        "clean", 1.5, "≤1.5×", fault="hold",
    ),
    Scenario(
        Setup("bucket", f"token bucket {RPS} req/s, 429 without Retry-After", BUCKET),
        "max-rps", 1.3, "≤1.3×", throttling=True,
    ),
    Scenario(
        Setup("bucket-retry-after", f"token bucket {RPS} req/s, 429 with `Retry-After: 1`", {
            **BUCKET, "rps_retry_after": "1",
        }),
        "max-rps", 1.0, "~0.92× (≤1.0)", throttling=True,
    ),
    Scenario(
        Setup("cap-8", "503 to any request beyond 8 in flight", {"max_in_flight": 8}),
        "concurrency-8", 1.5, "≤1.5×", throttling=True,
    ),
]  # fmt: skip
# The order of each round: a scenario right after its reference, so drift hits both alike.
ORDER = [
    REFERENCES["clean"], *(s.setup for s in SCENARIOS[:3]),
    REFERENCES["max-rps"], *(s.setup for s in SCENARIOS[3:5]),
    REFERENCES["concurrency-8"], SCENARIOS[5].setup,
]  # fmt: skip


# -- the proxy, in a process of its own ------------------------------------------------------


def _serve(options: dict[str, Any]) -> None:
    """Run one FaultProxy: print ``{"host"}``, and its counts once stdin closes."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(options.pop("cert"), options.pop("key"))
    upstream = ssl.create_default_context(cafile=options.pop("ca"))
    if "burst" in options:
        options["burst"] = tuple(options["burst"])

    async def main() -> None:
        async with FaultProxy(
            options.pop("upstream"),
            ssl_context=server,
            upstream_ssl=upstream,
            connections=0,
            **options,
        ) as proxy:
            print(json.dumps({"host": proxy.host}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            print(json.dumps(proxy.counts()), flush=True)

    asyncio.run(main())


class _Proxy:
    """``with _Proxy(env, setup, seed) as proxy:`` ``proxy.host``; ``proxy.counts`` after."""

    def __init__(self, env: Any, setup: Setup, seed: int) -> None:
        certs = env.registry.certs
        self.options = {
            **setup.proxy,
            "seed": seed,
            "upstream": f"https://{env.host}",
            "cert": str(certs.server_cert_file),
            "key": str(certs.server_key_file),
            "ca": str(env.ca_file),
        }
        self.host = ""
        self.counts: dict[str, Any] = {}

    def __enter__(self) -> _Proxy:
        self._proc = subprocess.Popen(
            [PYTHON, str(Path(__file__)), "--serve", json.dumps(self.options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self._stdin: IO[str] = self._proc.stdin  # type: ignore[assignment]
        self._stdout: IO[str] = self._proc.stdout  # type: ignore[assignment]
        self.host = json.loads(self._stdout.readline())["host"]
        return self

    def __exit__(self, *exc: object) -> None:
        self._stdin.close()  # the proxy prints its counts and stops
        line = self._stdout.readline()
        self.counts = json.loads(line) if line else {}
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# -- one scan --------------------------------------------------------------------------------


def _check(out: str, expected: dict[str, Any]) -> dict[str, Any]:
    """How many tags are missing, failed, or answered other than pushed (as bench.py checks),
    and the first few failures' errors."""
    got: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        record = json.loads(line)
        got[record["tag"]] = record
    missing = failed = wrong = 0
    errors: list[str] = []
    for tag, exp in expected.items():
        rec = got.get(tag)
        if rec is None:
            missing += 1
        elif rec.get("error"):
            failed += 1
            if len(errors) < 3:
                errors.append(f"{tag}: {rec['error']['type']}: {rec['error']['message']}")
        elif (rec["digest"], rec["manifest_digest"], rec["config_digest"]) != (
            exp.digest,
            exp.manifest_digest,
            exp.config_digest,
        ):
            wrong += 1
    return {"missing": missing, "failed": failed, "wrong": wrong, "errors": errors}


def _number(pattern: re.Pattern[str], text: str) -> float | None:
    found = pattern.search(text)
    return float(found.group(1)) if found else None


def scan_once(env: Any, setup: Setup, seed: int) -> dict[str, Any]:
    """One whole-process scan through a fresh proxy configured as ``setup`` says."""
    expected = env.expected[REPOSITORY]
    with _Proxy(env, setup, seed) as proxy:
        argv = [
            PYTHON, "-m", "aioregistry", "scan", f"{proxy.host}/{REPOSITORY}", "--what", "config",
            "--ca-file", str(env.ca_file), "--format", "jsonl", "--no-cache", *setup.args,
        ]  # fmt: skip
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=False,
                timeout=SCAN_TIMEOUT,
                env={**os.environ, "SSL_CERT_FILE": str(env.ca_file)},
            )
        except subprocess.TimeoutExpired:
            proc = subprocess.CompletedProcess(argv, -1, "", f"timed out after {SCAN_TIMEOUT} s")
        seconds = time.perf_counter() - started
    run: dict[str, Any] = {
        "seconds": seconds,
        "status": proc.returncode,
        "retries": _number(RETRIES, proc.stderr),
        "peak_concurrency": _number(PEAK, proc.stderr),
        "work_seconds": _number(WORK, proc.stderr),
        **proxy.counts,
    }
    if proc.returncode in (0, 1):  # 1: some tags failed, the rest were printed
        run.update(_check(proc.stdout, expected))
    else:
        run.update(missing=len(expected), failed=0, wrong=0, errors=[proc.stderr[-500:]])
    return run


# -- the section -----------------------------------------------------------------------------


def run(env: Any, rtts: list[float], runs: int) -> dict[str, Any]:
    """Every setup ``runs`` times at each RTT, round by round; returns what `markdown` reads."""
    measured: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rtt in rtts:
        env.set_rtt(rtt)
        by_setup: dict[str, list[dict[str, Any]]] = {setup.key: [] for setup in ORDER}
        for round_ in range(runs):
            for setup in ORDER:
                result = scan_once(env, setup, seed=round_)
                by_setup[setup.key].append(result)
                bad = result["missing"] + result["failed"] + result["wrong"]
                print(
                    f"adversity rtt={rtt * 1000:.0f}ms {setup.key}: {result['seconds']:.2f} s, "
                    f"{result['retries']} retries, {result.get('refused', '?')} refused / "
                    f"{result.get('admitted', '?')} admitted"
                    f"{f', {bad} tags missing, failed or wrong' if bad else ''}",
                    file=sys.stderr,
                    flush=True,
                )
        measured[str(rtt)] = by_setup
    return {"runs": runs, "measured": measured}


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def _refused_share(runs: list[dict[str, Any]]) -> float | None:
    shares = [r["refused"] / r["admitted"] for r in runs if r.get("admitted")]
    return statistics.median(shares) if shares else None


def _fault_share(runs: list[dict[str, Any]], fault: str) -> float | None:
    shares = [r["faults"].get(fault, 0) / r["requests"] for r in runs if r.get("requests")]
    return statistics.median(shares) if shares else None


def _bad(runs: list[dict[str, Any]]) -> str:
    worst = max(runs, key=lambda r: r["missing"] + r["failed"] + r["wrong"])
    total = worst["missing"] + worst["failed"] + worst["wrong"]
    if not total:
        return "0"
    parts = [f"{worst[k]} {k}" for k in ("missing", "failed", "wrong") if worst[k]]
    return f"**{total}** ({', '.join(parts)}, worst run)"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def markdown(data: dict[str, Any]) -> list[str]:
    runs = data["runs"]
    lines = [
        "## Under adversity (aioregistry scan, bench/many)",
        "",
        "Each figure is the whole-process time of `python -m aioregistry scan "
        f"HOST/{REPOSITORY} --what config --ca-file CA --format jsonl` (default settings unless "
        "the reference's own arguments), median of "
        f"{runs} run{'s' if runs != 1 else ''}, through the tests' fault proxy "
        "(`tests/support/faultproxy.py`, a process of its own, TLS, fresh for every scan, "
        "seeded with the run's number) in front of the registry's latency proxy; the token "
        "realm is not behind it. `× reference` is the scenario's median over its reference's, "
        "measured in the same rounds through the same proxy configuration. Every result was "
        "checked against what was pushed: `bad` counts tags missing, failed or answered "
        "wrong (worst run). `retries` is the scan's own count (its summary line), median. "
        "`faulted` is the proxy's share of all answers with that fault, median. "
        f"`refused / admitted` is the proxy's count of requests the throttle turned away over "
        f"those it let through, median (goal ≤ {REFUSED_GOAL:.0%}).",
        "",
        "How the proxy misbehaves: a 503 comes alone or starts a run of up to 8 consecutive "
        f"503 answers (lengths uniform in {BURST[0]}–{BURST[1]}), the start rate chosen "
        "(`rate_for_share`) so that the share of *all* answers is 1% or 10%; no path is "
        "answered 503 more than twice (the proxy's `max_faults_per_path`), so the measured "
        "share can be a little lower. A held answer waits 2 s, then is forwarded and given in "
        f"full. The bucket holds {RPS // 10} tokens, refilled at {RPS}/s, full at the start; "
        "an empty bucket answers 429 (without `Retry-After`, or with `Retry-After: 1`). The "
        "cap answers 503 (no `Retry-After`) to a request arriving while 8 admitted requests "
        "are being answered. A refused request consumes no token.",
        "",
    ]
    for rtt, by_setup in data["measured"].items():
        lines += [
            f"### RTT {float(rtt) * 1000:.0f} ms",
            "",
            "| scenario | reference | seconds | reference s | × reference | goal | retries "
            "| faulted | refused / admitted | bad |",
            "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for scenario in SCENARIOS:
            own, ref = by_setup[scenario.setup.key], by_setup[scenario.reference]
            seconds, ref_seconds = _median(own, "seconds"), _median(ref, "seconds")
            ratio = seconds / ref_seconds if seconds and ref_seconds else None
            met = "met" if ratio is not None and ratio <= scenario.goal else "**not met**"
            refused = _refused_share(own) if scenario.throttling else None
            refused_text = _pct(refused) if scenario.throttling else "–"
            if refused is not None:
                refused_text += "" if refused <= REFUSED_GOAL else " (**not met**)"
            fault = _pct(_fault_share(own, scenario.fault)) if scenario.fault else "–"
            lines.append(
                f"| {scenario.setup.title} | {scenario.reference} | {_fmt(seconds)} | "
                f"{_fmt(ref_seconds)} | {'–' if ratio is None else f'{ratio:.2f}×'} | "
                f"{scenario.goal_text} ({met}) | {_num(_median(own, 'retries'))} | {fault} | "
                f"{refused_text} | {_bad(own)} |"
            )
        lines += [
            "",
            "| reference | seconds | retries | refused / admitted | most in flight (scan) | bad |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for key, setup in REFERENCES.items():
            ref = by_setup[key]
            refused = _pct(_refused_share(ref)) if setup.proxy else "–"
            lines.append(
                f"| {key}: {setup.title} | {_fmt(_median(ref, 'seconds'))} | "
                f"{_num(_median(ref, 'retries'))} | {refused} | "
                f"{_num(_median(ref, 'peak_concurrency'))} | {_bad(ref)} |"
            )
        lines.append("")
        failures = [
            f"- {key}, run {i + 1}: {error}"
            for key, runs_ in by_setup.items()
            for i, r in enumerate(runs_)
            for error in r.get("errors", [])
        ]
        if failures:
            lines += ["Failed tags (the first three of a run):", "", *failures, ""]
    return lines


def _fmt(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.2f}"


def write(stem: Path, data: dict[str, Any]) -> Path:
    """The section alone: ``STEM.md`` and ``STEM.json``; returns the markdown's path."""
    stem.with_suffix(".json").write_text(json.dumps({"adversity": data}, indent=1))
    path = stem.with_suffix(".md")
    path.write_text("\n".join([f"# aioregistry benchmark — {stem.name}", "", *markdown(data)]))
    return path


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        _serve(json.loads(sys.argv[2]))
    else:
        raise SystemExit("run by benchmarks/bench.py (--only-adversity runs it alone)")
