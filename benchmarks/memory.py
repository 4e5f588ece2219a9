"""Peak RSS of ``aioregistry scan`` at 1,000, 10,000 and 100,000 tags (issue #4).

Starts Debian's ``docker-registry`` on loopback (plain HTTP, no auth, access log off so its
logging costs neither CPU nor disk), pushes ``DISTINCT`` (500) distinct single-arch images
with the tests' content builder, and makes three repositories, ``memory/t1000``,
``memory/t10000`` and ``memory/t100000``, whose tags point at those images in turn
(tag ``i`` -> image ``i % 500``: tags share images, as the issue allows).

**The tags are written to the registry's storage directly, for speed**: pushing 100,000 tags
costs 100,000 manifest PUTs (about 1.3 ms of registry CPU each on 2 cores), while writing
the files takes seconds. The layout is exactly what a real push by distribution 2.8 wrote
(checked against ``test/many`` after ``push_content``): the repository's ``_layers`` and
``_manifests/revisions`` links are copied from ``test/many``, and each tag gets
``_manifests/tags/<tag>/current/link`` and ``_manifests/tags/<tag>/index/sha256/<hex>/link``,
both holding ``sha256:<hex>`` with no newline. Distribution's filesystem driver reads these
files on every request (no tag cache is configured), so no restart is needed. Before
measuring, :func:`verify_storage` checks with plain ``http.client`` that
``GET /v2/<name>/tags/list`` returns exactly the expected tags of each repository and that
``HEAD`` (and ``GET``) of the first, a middle and the last generated tag answer 200 with the
expected ``Docker-Content-Digest`` (and bytes of that digest); every scan's output is then
checked tag by tag against the expected digests too.

Each measurement runs the whole CLI as a child process under ``/usr/bin/time -f "%M %e"``::

    python -m aioregistry scan --plain-http --what digest --format jsonl \\
        127.0.0.1:PORT/memory/t100000 > out.jsonl

(and ``--what config``). The ``tags`` rows run ``python -m aioregistry tags --plain-http -r
127.0.0.1:PORT/memory/t100000``: the listing alone, no scan, to show how much of a scan's
memory the tag list takes.

``%M`` is the child's peak resident set (ru_maxrss, KiB; reported here in MB of 10^6 bytes).
``/usr/bin/time`` rather than ``os.wait4`` from this script: a child started by a large
process can inherit that process's RSS high-water mark through ``vfork``/``exec``, and
``time`` is small. The baseline is ``python -c "import aioregistry"`` measured the same way.
Every scan must exit 0, write exactly one JSON line per tag with no error and the right
digest (config scans: the right config digest too), and its stderr summary must report
0 errors.

    python benchmarks/memory.py                 # 1,000 / 10,000 / 100,000 tags
    python benchmarks/memory.py --sizes 1000,10000

``run()`` returns the rows as data for a report generator.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# One implementation of registry setup for the tests, the demo and the benchmarks.
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE)]

from support.content import MANIFEST_ACCEPT, PushedImage  # noqa: E402
from support.registry import RegistryProcess  # noqa: E402

__all__ = [
    "DISTINCT",
    "SIZES",
    "WHATS",
    "Measured",
    "format_table",
    "main",
    "measure",
    "run",
    "tag_name",
    "verify_storage",
    "write_tags",
]

SIZES: tuple[int, ...] = (1_000, 10_000, 100_000)
#: ``tags`` is no scan: ``aioregistry tags -r REPO`` lists the tags only, which shows how much
#: of a scan's memory the listing alone takes.
WHATS: tuple[str, ...] = ("tags", "digest", "config")
DISTINCT = 500
TIME_BINARY = "/usr/bin/time"
SOURCE_REPOSITORY = "test/many"
_SUMMARY = re.compile(r"aioregistry: (\d+) results?, (\d+) errors?, (\d+) requests?")


@dataclass(frozen=True)
class Measured:
    """One child process: exit status, wall-clock seconds, peak RSS in KiB."""

    returncode: int
    seconds: float
    max_rss_kib: int


def measure(command: Sequence[str], *, stdout: Path, stderr: Path) -> Measured:
    """Run ``command`` under ``/usr/bin/time``; its stdout and stderr go to files."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        with stdout.open("wb") as out, stderr.open("wb") as err:
            started = time.perf_counter()
            returncode = subprocess.call(
                [TIME_BINARY, "-q", "-f", "%M %e", "-o", report.name, *command],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=_child_env(),
            )
            seconds = time.perf_counter() - started
        fields = Path(report.name).read_text().split()
    return Measured(returncode, seconds, int(fields[0]))


def _child_env() -> dict[str, str]:
    # No credentials, proxies or SSL overrides from the caller's environment.
    drop = ("DOCKER_USER", "DOCKER_PASSWORD", "SSL_CERT_FILE", "HTTP_PROXY", "HTTPS_PROXY")
    env = {k: v for k, v in os.environ.items() if k.upper() not in drop}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _mb(kib: int) -> float:
    return kib * 1024 / 1e6


# -- the registry's storage ----------------------------------------------------------------


def _repository_dir(registry: RegistryProcess, name: str) -> Path:
    return registry.storage_path / "docker/registry/v2/repositories" / name


def _write_link(path: Path, digest: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "link").write_text(digest)  # distribution writes the digest with no newline


def tag_name(index: int, tags: int) -> str:
    """The name of tag ``index`` of a repository of ``tags`` tags: ``t0000042``."""
    return f"t{index:0{max(4, len(str(tags - 1)))}d}"


def write_tags(registry: RegistryProcess, name: str, tags: int, images: Sequence[str]) -> None:
    """Make repository ``name`` with ``tags`` tags over ``images`` (manifest digests).

    The images' blobs and manifests must be in ``test/many`` already: its ``_layers`` and
    ``_manifests/revisions`` links are copied, then each tag's two link files are written.
    """
    source = _repository_dir(registry, SOURCE_REPOSITORY)
    target = _repository_dir(registry, name)
    shutil.copytree(source / "_layers", target / "_layers")
    shutil.copytree(source / "_manifests/revisions", target / "_manifests/revisions")
    tag_root = target / "_manifests/tags"
    for i in range(tags):
        digest = images[i % len(images)]
        tag_dir = tag_root / tag_name(i, tags)
        _write_link(tag_dir / "current", digest)
        _write_link(tag_dir / "index/sha256" / digest.removeprefix("sha256:"), digest)


def _request(
    registry: RegistryProcess, method: str, path: str
) -> tuple[int, Mapping[str, str], bytes]:
    conn = http.client.HTTPConnection(registry.listen_host, registry.port, timeout=60)
    try:
        conn.request(method, path, headers={"Accept": MANIFEST_ACCEPT})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def verify_storage(registry: RegistryProcess, name: str, tags: int, images: Sequence[str]) -> None:
    """Check through the HTTP API that ``name`` serves exactly the tags written to storage."""
    status, _, body = _request(registry, "GET", f"/v2/{name}/tags/list")
    if status != 200:
        raise RuntimeError(f"tags/list of {name}: HTTP {status}: {body[:300]!r}")
    listed = json.loads(body)["tags"]
    expected = {tag_name(i, tags) for i in range(tags)}
    if len(listed) != tags or set(listed) != expected:
        raise RuntimeError(f"{name}: tags/list returned {len(listed)} tags, expected {tags}")
    for i in sorted({0, tags // 2, tags - 1}):
        digest = images[i % len(images)]
        path = f"/v2/{name}/manifests/{tag_name(i, tags)}"
        status, headers, _ = _request(registry, "HEAD", path)
        if status != 200 or headers.get("Docker-Content-Digest") != digest:
            raise RuntimeError(f"HEAD {path}: {status} {headers.get('Docker-Content-Digest')}")
        status, headers, body = _request(registry, "GET", path)
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if status != 200 or actual != digest or headers.get("Docker-Content-Digest") != digest:
            raise RuntimeError(f"GET {path}: {status}, body digest {actual}, expected {digest}")


# -- the scans -----------------------------------------------------------------------------


def _repository_name(tags: int) -> str:
    return f"memory/t{tags}"


def _check_output(
    out: Path,
    err: Path,
    measured: Measured,
    *,
    tags: int,
    what: str,
    images: Sequence[PushedImage],
) -> int:
    """Check one scan's output; return the request count from its summary line."""
    stderr = err.read_text(errors="replace")
    if measured.returncode != 0:
        raise RuntimeError(f"scan of {tags} tags ({what}) exited {measured.returncode}: {stderr}")
    lines = out.read_bytes().splitlines()
    if len(lines) != tags:
        raise RuntimeError(f"scan of {tags} tags ({what}): {len(lines)} lines, expected {tags}")
    seen: set[str] = set()
    for line in lines:
        result: dict[str, Any] = json.loads(line)
        tag = result["tag"]
        image = images[int(tag[1:]) % len(images)]
        if result["error"] is not None or result["digest"] != image.digest:
            raise RuntimeError(f"scan of {tags} tags ({what}): wrong result {result}")
        if what == "config" and result["config_digest"] != image.config_digest:
            raise RuntimeError(f"scan of {tags} tags ({what}): wrong config {result}")
        seen.add(tag)
    if len(seen) != tags:
        raise RuntimeError(f"scan of {tags} tags ({what}): {len(seen)} distinct tags")
    summary = _SUMMARY.search(stderr)
    if summary is None or int(summary[1]) != tags or int(summary[2]) != 0:
        raise RuntimeError(f"scan of {tags} tags ({what}): unexpected summary {stderr!r}")
    return int(summary[3])


def _check_listing(out: Path, err: Path, measured: Measured, *, tags: int) -> int:
    """Check ``aioregistry tags`` output; return its requests (a ping and one listing)."""
    if measured.returncode != 0:
        raise RuntimeError(f"listing {tags} tags exited {measured.returncode}: {err.read_text()}")
    listed = json.loads(out.read_bytes())["tags"]
    if sorted(listed) != [tag_name(i, tags) for i in range(tags)]:
        raise RuntimeError(f"listing {tags} tags: got {len(listed)}")
    return 2


def _no_cache(python: str) -> list[str]:
    help_text = subprocess.run(
        [python, "-m", "aioregistry", "scan", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return ["--no-cache"] if "--no-cache" in help_text else []


def _baseline(python: str, workdir: Path, runs: int) -> dict[str, Any]:
    best: Measured | None = None
    for _ in range(runs):
        measured = measure(
            [python, "-c", "import aioregistry"],
            stdout=workdir / "import.out",
            stderr=workdir / "import.err",
        )
        if measured.returncode != 0:
            raise RuntimeError((workdir / "import.err").read_text())
        if best is None or measured.seconds < best.seconds:
            best = measured
    assert best is not None  # noqa: S101  (runs >= 1)
    return {
        "tags": 0,
        "what": "import aioregistry",
        "seconds": round(best.seconds, 3),
        "peak_rss_mb": round(_mb(best.max_rss_kib), 1),
        "requests": 0,
        "command": f'{python} -c "import aioregistry"',
    }


def run(
    sizes: Iterable[int] = SIZES,
    whats: Iterable[str] = WHATS,
    *,
    distinct: int = DISTINCT,
    runs: int = 1,
    python: str | None = None,
) -> list[dict[str, Any]]:
    """Measure every (size, what) scan; one row each, after the ``import aioregistry`` row.

    A row: ``tags``, ``what``, ``seconds`` (wall clock, the best of ``runs``),
    ``peak_rss_mb`` (the highest of ``runs``, MB = 10^6 bytes), ``requests`` (from the
    scan's summary line) and the ``command`` (with the registry's port of this run).
    """
    sizes = sorted(sizes)
    whats = list(whats)
    python = python or sys.executable
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aioregistry-memory-") as tmp:
        workdir = Path(tmp)
        quiet = {"log": {"level": "error", "accesslog": {"disabled": True}}}
        with RegistryProcess("http", workdir / "registry", extra_config=quiet) as registry:
            content = registry.push_content(many_tags=distinct, distinct=distinct)
            by_digest = {image.digest: image for image in content.many_tags.values()}
            images = sorted(by_digest.values(), key=lambda image: image.digest)
            digests = [image.digest for image in images]
            if len(digests) != distinct:
                raise RuntimeError(f"pushed {len(digests)} distinct images, not {distinct}")
            for size in sizes:
                write_tags(registry, _repository_name(size), size, digests)
                verify_storage(registry, _repository_name(size), size, digests)
            rows.append(_baseline(python, workdir, runs))
            for size in sizes:
                for what in whats:
                    rows.append(
                        _scan_row(
                            registry,
                            workdir,
                            python,
                            size=size,
                            what=what,
                            images=images,
                            runs=runs,
                        )
                    )
    return rows


def _scan_row(
    registry: RegistryProcess,
    workdir: Path,
    python: str,
    *,
    size: int,
    what: str,
    images: Sequence[PushedImage],
    runs: int,
) -> dict[str, Any]:
    target = f"{registry.host}/{_repository_name(size)}"
    command = [python, "-m", "aioregistry"]
    if what == "tags":
        command += ["tags", "--plain-http", "-r", target]
    else:
        # --no-cache (where the checkout has a cache): the same work on every run
        uncached = _no_cache(python)
        command += ["scan", "--plain-http", "--what", what, "--format", "jsonl", *uncached, target]
    seconds: list[float] = []
    rss: list[int] = []
    requests = 0
    for _ in range(runs):
        out, err = workdir / "scan.jsonl", workdir / "scan.err"
        measured = measure(command, stdout=out, stderr=err)
        if what == "tags":
            requests = _check_listing(out, err, measured, tags=size)
        else:
            requests = _check_output(out, err, measured, tags=size, what=what, images=images)
        seconds.append(measured.seconds)
        rss.append(measured.max_rss_kib)
    return {
        "tags": size,
        "what": what,
        "seconds": round(min(seconds), 2),
        "peak_rss_mb": round(_mb(max(rss)), 1),
        "requests": requests,
        "command": " ".join(command) + (" > out.json" if what == "tags" else " > out.jsonl"),
    }


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a markdown table, with each row's RSS above the import baseline."""
    base = next((r["peak_rss_mb"] for r in rows if r["tags"] == 0), 0.0)
    lines = [
        "| tags | what | seconds | peak RSS MB | above import MB | requests |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        above = row["peak_rss_mb"] - base if row["tags"] else 0.0
        lines.append(
            f"| {row['tags']:,} | {row['what']} | {row['seconds']:.2f} | "
            f"{row['peak_rss_mb']:.1f} | {above:.1f} | {row['requests']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--what", default=",".join(WHATS), help="tags,digest,config")
    parser.add_argument("--distinct", type=int, default=DISTINCT)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    rows = run(
        [int(s) for s in args.sizes.split(",")],
        args.what.split(","),
        distinct=args.distinct,
        runs=args.runs,
    )
    print(format_table(rows))
    print()
    for row in rows:
        print(f"- `{row['command']}`")


if __name__ == "__main__":
    main()
