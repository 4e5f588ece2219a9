"""``aioregistry scan``: the bulk scan on the command line, with output made for pipes.

``jsonl`` (the default when stdout is not a terminal) writes one JSON object per result as it
arrives; ``json`` streams one array; ``table`` (the default on a terminal) shows a table
once the scan is done. A rich progress bar goes to stderr when stderr is a terminal, and a
one-line summary always ends the run there, after the table, unless stdout's reader went away
(``| head``): then the scan stops at once and quietly (exit 141, `_cli_commands`).

SIGINT (Ctrl-C) and SIGTERM stop the scan, not the process: what was fetched is still
written out whole (a JSON array closed, the table of the results so far), the progress bar
gives the terminal its cursor back, the summary says the scan was interrupted, and the exit
status is the shell's for the signal (130, 143).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio

from ._cli_hints import check_scan_target
from ._exceptions import TransportError
from ._output import writer

if TYPE_CHECKING:
    from ._client import RegistryClient
    from ._scan_results import ScanError, ScanResult, ScanStats

__all__ = ["EXIT_OK", "EXIT_PIPE", "EXIT_SOME_FAILED", "EXIT_USAGE", "run_scan"]

# Exit statuses shared with the other subcommands (_cli_commands.py adds 1 for a registry's
# refusal and 130 for Ctrl-C).
EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_PIPE = 141  # stdout's reader went away: 128 + SIGPIPE, as a shell reports `yes | head`


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _summary(stats: ScanStats, interrupted: str | None = None) -> str:
    requests = ", ".join(f"{kind} {n}" for kind, n in sorted(stats.requests.items()))
    peak = max(stats.concurrency.values(), default=0)
    limits = "".join(
        f"{host} pulls left {limit.remaining}/{limit.limit}, "
        for host, limit in sorted(stats.rate_limits.items())
        if limit.remaining is not None
    )
    hidden = (
        f"{_count(stats.hidden_tags, 'digest tag')} hidden (--include-digest-tags shows them), "
        if stats.hidden_tags
        else ""
    )
    return (
        f"aioregistry: {f'interrupted ({interrupted}): ' if interrupted else ''}"
        f"{_count(stats.results, 'result')}, {_count(stats.errors, 'error')}, {hidden}"
        f"{_count(stats.total_requests, 'request')} ({requests or 'none'}), "
        f"{_count(stats.tokens_fetched, 'token')}, {_count(stats.retries, 'retry', 'retries')}, "
        f"{_count(stats.hedges, 'hedge')}, {stats.refused} refused, "
        f"up to {peak} in flight, {limits}"
        f"{stats.bytes_received / 1e6:.1f} MB, {stats.seconds:.2f} s"
    )


async def run_scan(args: argparse.Namespace, client: RegistryClient) -> int:
    """Run the scan the arguments describe; returns the exit status."""
    fmt = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    scan = client.scan(
        *map(check_scan_target, args.targets),
        catalog=args.catalog,
        what=args.what,
        platform=args.platform,
        concurrency=args.concurrency,
        fail_fast=args.fail_fast,
        repo_type=args.repo_type,
        include_digest_tags=args.include_digest_tags,
        referrers=args.referrers,
    )
    output = writer(fmt, sys.stdout.buffer, include_manifest=args.what == "manifest")
    unreached: dict[str, ScanError] = {}  # registry -> why, until one of its answers came
    answered: set[str] = set()
    progress, advance = _progress() if sys.stderr.isatty() else (None, None)
    closed = False
    with anyio.CancelScope() as scope, _stopped_by_signals(scope) as caught:
        try:
            async with scan:
                async for result in scan:
                    output.add(result)
                    if not scan.ready:
                        # A reader downstream sees each result as soon as no other is waiting;
                        # a burst of results costs one write, not one each.
                        output.flush()
                    registry = result.repository.split("/", 1)[0]
                    failure = _connection_failure(result)
                    if failure is None:
                        answered.add(registry)
                    else:
                        unreached.setdefault(registry, failure)
                    if advance is not None:
                        advance(scan.total, scan.listed)
        except BrokenPipeError:
            closed = True  # not a failed tag: the scan is over (its requests cancelled), quietly
            raise
        finally:
            if progress is not None:
                progress.stop()
            if not closed:
                # Whatever else ended the scan, what it printed is whole (a JSON array
                # closed), and the table comes before the summary.
                output.close()
                interrupted = signal.Signals(caught[0]).name if caught else None
                print(_summary(scan.stats, interrupted), file=sys.stderr)  # noqa: T201
    if caught:
        return 128 + caught[0]  # as the shell reports a process the signal ended
    down = [(name, error) for name, error in unreached.items() if name not in answered]
    if down:
        name, error = down[0]
        if args.debug:
            traceback.print_exception(error.exception)
        more = f" (and {len(down) - 1} more registries)" if len(down) > 1 else ""
        message = f"{name} could not be reached{more}: {error.message}"
        print(f"aioregistry: error: {message}", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    return EXIT_SOME_FAILED if scan.stats.errors else EXIT_OK


@contextmanager
def _stopped_by_signals(scope: anyio.CancelScope) -> Iterator[list[int]]:
    """While in the block, SIGINT and SIGTERM cancel ``scope`` (the scan) instead of ending the
    process; the list yielded gets the first signal caught. Signals after the first are
    ignored until the block is left: stopping the scan is prompt (in-flight requests are
    cancelled), and what has been fetched is then still written out whole."""
    loop = asyncio.get_running_loop()
    caught: list[int] = []

    def stop(signum: int) -> None:
        if not caught:
            caught.append(signum)
        scope.cancel()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        loop.add_signal_handler(sig, stop, sig)
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            # asyncio's own Ctrl-C handling again, and the default SIGTERM
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def _connection_failure(result: ScanResult) -> ScanError | None:
    """The error of a tag or a repository that failed for want of an answer (connection, TLS,
    timeout): exit 2 when none of its registry's requests got one (a tag that timed out in a
    scan of a registry that answers the others is a failed tag: exit 1)."""
    error = result.error
    return error if error is not None and isinstance(error.exception, TransportError) else None


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
