"""``aioregistry audit`` beside ``aioregistry scan --what config --referrers``, in one run.

The repository is the other benchmarks' ``bench/many`` (`env.bench_env`: 1,000 tags over 250
distinct images, 25 of them multi-arch indexes of three platforms, on a token-auth registry
over TLS behind the latency proxy), and one image in five of it is signed as the tools do on
a registry without the referrers API (distribution 2.8): half of those by a notation
signature listed in the subject's fallback index ``sha256-<hex>``, half by a cosign 2
``sha256-<hex>.sig`` tag. Both commands run as whole processes, alternately, ``--runs``
times at each RTT; counted per run: wall time, the command's own time (its summary line),
HTTP requests (the registry's access log) and token requests. The audit's rows are checked
(every tag a row, its digest what was pushed, ``signed`` exactly for the signed images).

    python benchmarks/audit.py --rtt 0,0.02,0.1 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from bench import PYTHON, Contender, Run, run_once  # noqa: E402
from env import BenchEnv, bench_env, targets_of  # noqa: E402
from support.content import OCI_INDEX, PushedImage, PushedIndex, _Plan, apush_plan  # noqa: E402
from support.referrers import build_artifact, build_cosign, fallback_index  # noqa: E402

REPOSITORY = "bench/many"
DISTINCT = 250
MULTI_EVERY = 10  # as env.build_plan makes bench/many
SIGN_EVERY = 5
NOTATION = "application/vnd.cncf.notary.signature"


def sign(env: BenchEnv) -> set[str]:
    """Sign one image in `SIGN_EVERY` of the repository; the signed subjects' digests."""
    targets: list[PushedImage | PushedIndex] = targets_of(
        REPOSITORY, DISTINCT, MULTI_EVERY, _Plan()
    )
    plan = _Plan()
    blobs = plan.blobs.setdefault(REPOSITORY, {})
    signed: set[str] = set()
    for i, subject in enumerate(targets[::SIGN_EVERY]):
        signed.add(subject.digest)
        if i % 2 == 0:
            artifact = build_artifact(
                subject,
                artifact_type=NOTATION,
                layer_media_type="application/jose+json",
                payload=f'{{"signature":{i}}}'.encode(),
            )
            blobs.update(artifact.blobs)
            plan.stages[0].append((REPOSITORY, artifact.digest, artifact.media_type, artifact.raw))
            index = fallback_index([(artifact, NOTATION)])
            plan.stages[1].append((REPOSITORY, subject.digest.replace(":", "-"), OCI_INDEX, index))
        else:
            tag, artifact = build_cosign(subject, "sig")
            blobs.update(artifact.blobs)
            plan.stages[1].append((REPOSITORY, tag, artifact.media_type, artifact.raw))
    asyncio.run(apush_plan(env.registry, plan))
    return signed


def _argv(command: list[str]):
    def argv(env: BenchEnv, repo: str, _limit: int | None) -> list[str]:
        return [
            PYTHON, "-m", "aioregistry", *command, f"{env.host}/{repo}",
            "--ca-file", str(env.ca_file), "--format", "jsonl",
        ]  # fmt: skip

    return argv


AUDIT = Contender("audit", _argv(["audit"]), checks_config=False)
SCAN = Contender(
    "scan --what config --referrers", _argv(["scan", "--what", "config", "--referrers"])
)
COUNTED = re.compile(r"^aioregistry: .*?(\d+) requests \(([^)]*)\), .*?(\d+) hedges?", re.MULTILINE)


def counted(env: BenchEnv, contender: Contender) -> str:
    """The requests by kind that ``contender`` counts itself (its summary line), one run,
    and how many of them were hedges (a late request sent again: the count's spread)."""
    proc = subprocess.run(
        contender.argv(env, REPOSITORY, None),
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE.parent,
        env={**os.environ, "SSL_CERT_FILE": str(env.ca_file)},
    )
    match = COUNTED.search(proc.stderr)
    return f"{match[1]} ({match[2]}; {match[3]} of them hedges)" if match else "?"


def check_audit(env: BenchEnv, signed: set[str]) -> dict[str, int]:
    """One more audit run, its rows checked; what its summary says."""
    argv = [*AUDIT.argv(env, REPOSITORY, None)[:-2], "--format", "json"]
    out = subprocess.run(argv, capture_output=True, check=True, cwd=HERE.parent).stdout
    document = json.loads(out)
    rows = document["rows"]
    expected = env.expected[REPOSITORY]
    if sorted(row["tag"] for row in rows) != sorted(expected):
        raise SystemExit("audit: not one row per tag")
    for row in rows:
        if row["error"] or row["digest"] != expected[row["tag"]].digest:
            raise SystemExit(f"audit: {row['tag']} is not what was pushed: {row}")
        if row["signed"] != (row["digest"] in signed):
            raise SystemExit(f"audit: {row['tag']} signed={row['signed']}, pushed otherwise")
    summary: dict[str, int] = document["summary"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt", default="0,0.02,0.1")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the figures to this .json")
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    with (
        tempfile.TemporaryDirectory(prefix="aioregistry-audit-") as workdir,
        bench_env(Path(workdir)) as env,
    ):
        signed = sign(env)
        summary = check_audit(env, signed)
        print(
            f"{REPOSITORY}: {summary['tags']} tags, {summary['images']} images, "
            f"{len(signed)} signed subjects, {summary['unsigned']} unsigned tags",
            file=sys.stderr,
        )
        for rtt in (float(x) for x in args.rtt.split(",")):
            env.set_rtt(rtt)
            runs: dict[str, list[Run]] = {AUDIT.name: [], SCAN.name: []}
            for _ in range(args.runs):
                for contender in (AUDIT, SCAN):  # alternately: drift hits both alike
                    runs[contender.name].append(run_once(env, contender, REPOSITORY, None))
            for name, done in runs.items():
                row = {
                    "command": name,
                    "rtt_ms": rtt * 1000,
                    "seconds": statistics.median(r.seconds for r in done),
                    "work_seconds": statistics.median(
                        r.work_seconds for r in done if r.work_seconds is not None
                    ),
                    "requests": statistics.median(r.requests for r in done),
                    "tokens": statistics.median(r.tokens for r in done),
                    "runs": len(done),
                }
                results.append(row)
                print(
                    f"rtt={row['rtt_ms']:.0f}ms {name}: {row['seconds']:.2f} s wall "
                    f"({row['work_seconds']:.2f} s its own), {row['requests']:.0f} requests, "
                    f"{row['tokens']:.0f} tokens",
                    file=sys.stderr,
                )
            for contender in (AUDIT, SCAN):
                print(f"  {contender.name} counts {counted(env, contender)}", file=sys.stderr)
            audit, scan = results[-2], results[-1]
            print(
                f"rtt={rtt * 1000:.0f}ms audit / scan: "
                f"time {audit['seconds'] / scan['seconds']:.2f}x, "  # type: ignore[operator]
                f"requests {audit['requests'] / scan['requests']:.2f}x",  # type: ignore[operator]
                file=sys.stderr,
            )
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
