"""``aioregistry scan``: the bulk scan on the command line, with output made for pipes.

``jsonl`` (the default when stdout is not a terminal) writes one JSON object per result as it
arrives; ``json`` streams one array; ``table`` (the default on a terminal) shows a table
once the scan is done. A rich progress bar goes to stderr when stderr is a terminal, and a
one-line summary always ends the run there.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import IO, Any

import orjson

from ._bulk import (
    DEFAULT_SCAN_CONCURRENCY,
    MAX_SCAN_CONCURRENCY,
    ScanResult,
    ScanStats,
    is_connection_failure,
)
from ._client import RegistryClient

__all__ = ["EXIT_OK", "EXIT_SOME_FAILED", "EXIT_USAGE", "add_scan_arguments", "run_scan"]

# Exit statuses shared with the other subcommands (_cli.py adds 1 for a registry's refusal
# and 130 for Ctrl-C).
EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2


def _concurrency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid concurrency {text!r}: expected an integer >= 1")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid rate {text!r}: expected a number > 0")
    return value


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="REPO_OR_IMAGE",
        help="a repository (every tag is scanned) or an image with a :tag or @digest",
    )
    parser.add_argument(
        "--catalog", metavar="REGISTRY", help="also scan every repository of this registry"
    )
    parser.add_argument(
        "--what",
        choices=("digest", "manifest", "config"),
        default="config",
        help="what to fetch for each tag (default config; digest uses HEAD only)",
    )
    parser.add_argument(
        "--platform",
        metavar="OS/ARCH[/VARIANT]|all",
        help="platform of multi-arch tags (default linux/amd64); all: one result per platform",
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        default=None,
        metavar="N",
        help=f"at most N requests in flight per registry (default: adaptive, from "
        f"{DEFAULT_SCAN_CONCURRENCY} up to {MAX_SCAN_CONCURRENCY}, halved when throttled)",
    )
    parser.add_argument(
        "--max-rps",
        type=_rate,
        metavar="RPS",
        help="start at most RPS requests per second to each registry (default: no cap)",
    )
    parser.add_argument(
        "--format",
        choices=("jsonl", "json", "table"),
        help="output format (default: table on a terminal, jsonl otherwise)",
    )
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first tag that fails")


class _Output:
    """Writes results in the chosen format; jsonl and json stream, table waits for the end."""

    def __init__(self, fmt: str, out: IO[bytes], *, include_manifest: bool) -> None:
        self.fmt = fmt
        self.include_manifest = include_manifest
        self.out = out
        self.rows: list[tuple[str, ...]] = []
        self.first = True

    def add(self, result: ScanResult) -> None:
        if self.fmt == "table":
            self.rows.append(_row(result))
            return
        data = orjson.dumps(result.to_json(include_manifest=self.include_manifest))
        if self.fmt == "jsonl":
            self.out.write(data + b"\n")
        else:
            self.out.write((b"[\n" if self.first else b",\n") + data)
        self.first = False

    def flush(self) -> None:
        if self.fmt != "table":
            self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write(b"[]\n" if self.first else b"\n]\n")
            self.out.flush()
        elif self.fmt == "table":
            _print_table(self.rows)


def _short(digest: str | None) -> str:
    # Twelve hex digits, as docker shows image IDs; the full digests are in jsonl and json.
    return digest.partition(":")[2][:12] if digest else "-"


def _row(result: ScanResult) -> tuple[str, ...]:
    created = ""
    if result.config is not None:
        value = result.config.data.get("created")
        created = value[:19] if isinstance(value, str) else ""
    error = f"{result.error.type}: {result.error.message}" if result.error else ""
    return (
        result.reference,
        result.platform or "-",
        _short(result.digest),
        _short(result.manifest_digest),
        _short(result.config_digest),
        created,
        error,
    )


def _print_table(rows: list[tuple[str, ...]]) -> None:
    from rich.console import Console  # noqa: PLC0415  (only tables and progress need rich)
    from rich.table import Table  # noqa: PLC0415

    # One registry (the usual case): name it once in the title, not on every row.
    registries = {row[0].split("/", 1)[0] for row in rows}
    title = None
    if len(registries) == 1:
        title = f"registry {registries.pop()}"
        rows = [(row[0].split("/", 1)[1], *row[1:]) for row in rows]
    table = Table(box=None, header_style="bold", pad_edge=False, title=title, title_justify="left")
    names = ["REFERENCE", "PLATFORM", "DIGEST", "MANIFEST", "CONFIG", "CREATED", "ERROR"]
    # Columns with nothing to show (no config fetched, no errors) are left out.
    keep = [
        i for i, name in enumerate(names) if i < 2 or any(row[i] not in ("", "-") for row in rows)
    ]
    for i in keep:
        name = names[i]
        if name == "REFERENCE":
            table.add_column(name, no_wrap=True, overflow="fold", ratio=3)
        elif name == "ERROR":
            table.add_column(name, overflow="fold", ratio=2, min_width=30)
        else:
            table.add_column(name, no_wrap=True, min_width=len(rows[0][i]) if rows else 0)
    for row in sorted(rows):
        table.add_row(*(row[i] for i in keep), style="red" if row[-1] else None)
    # On a terminal rich fits the table to its width; into a file or pipe, never wrap rows.
    width = None if sys.stdout.isatty() else 100_000
    Console(file=sys.stdout, width=width).print(table)


def _summary(stats: ScanStats) -> str:
    requests = ", ".join(f"{kind} {n}" for kind, n in sorted(stats.requests.items()))
    peak = max(stats.concurrency.values(), default=0)
    limits = "".join(
        f"{host} pulls left {limit.remaining}/{limit.limit}, "
        for host, limit in sorted(stats.rate_limits.items())
        if limit.remaining is not None
    )
    return (
        f"aioregistry: {stats.results} results, {stats.errors} errors, "
        f"{stats.total_requests} requests ({requests or 'none'}), "
        f"{stats.tokens_fetched} tokens, {stats.retries} retries, "
        f"up to {peak} in flight, {limits}"
        f"{stats.bytes_received / 1e6:.1f} MB, {stats.seconds:.2f} s"
    )


async def run_scan(args: argparse.Namespace, client: RegistryClient) -> int:
    """Run the scan the arguments describe; returns the exit status."""
    fmt = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    scan = client.scan(
        *args.targets,
        catalog=args.catalog,
        what=args.what,
        platform=args.platform,
        concurrency=args.concurrency,
        fail_fast=args.fail_fast,
        repo_type=args.repo_type,
    )
    output = _Output(fmt, sys.stdout.buffer, include_manifest=args.what == "manifest")
    unreachable = False
    progress, advance = _progress() if sys.stderr.isatty() else (None, None)
    try:
        async with scan:
            async for result in scan:
                output.add(result)
                if not scan.ready:
                    # A reader downstream sees each result as soon as no other is waiting;
                    # a burst of results costs one write, not one each.
                    output.flush()
                unreachable = unreachable or is_connection_failure(result)
                if advance is not None:
                    advance(scan.total, scan.listed)
    finally:
        if progress is not None:
            progress.stop()
        print(_summary(scan.stats), file=sys.stderr)  # noqa: T201
    output.close()
    if unreachable:
        for_error = "a registry could not be reached"
        print(f"aioregistry: error: {for_error}", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    return EXIT_SOME_FAILED if scan.stats.errors else EXIT_OK


def _progress() -> tuple[Any, Callable[[int, bool], None]]:
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    )
    task = progress.add_task("scan", total=None)
    progress.start()

    def advance(total: int, listed: bool) -> None:
        # The total grows while repositories are listed; unknown (pulsing) until then.
        progress.update(task, advance=1, total=total if listed else None)

    return progress, advance
