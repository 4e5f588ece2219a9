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
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio

from ._cli_hints import check_scan_target
from ._exceptions import TransportError
from ._output import writer

if TYPE_CHECKING:
    from ._client import RegistryClient
    from ._scan_results import ScanError, ScanStats

__all__ = [
    "EXIT_OK",
    "EXIT_PIPE",
    "EXIT_SOME_FAILED",
    "EXIT_USAGE",
    "Item",
    "Output",
    "Stream",
    "run_scan",
    "write_stream",
]

T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)
ItemT = TypeVar("ItemT", bound="Item")

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
    cached = f"{stats.from_cache} from the cache, " if stats.from_cache else ""
    if stats.cache_dropped:
        corrupt = _count(stats.cache_dropped, "corrupt cache entry", "corrupt cache entries")
        cached += f"{corrupt} fetched anew, "
    return (
        f"aioregistry: {f'interrupted ({interrupted}): ' if interrupted else ''}"
        f"{_count(stats.results, 'result')}, {_count(stats.errors, 'error')}, {hidden}"
        f"{_count(stats.total_requests, 'request')} ({requests or 'none'}), {cached}"
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
    return await write_stream(scan, output, debug=args.debug)


class Item(Protocol):
    """What a stream yields (a `ScanResult`, an `AuditRow`): its repository and error."""

    @property
    def repository(self) -> str: ...
    @property
    def error(self) -> ScanError | None: ...


class Stream(Protocol[T_co]):
    """A `Scan` or an `Audit`: iterated once, with the scan's progress and stats."""

    def __aiter__(self) -> AsyncIterator[T_co]: ...
    async def aclose(self) -> None: ...
    @property
    def total(self) -> int: ...
    @property
    def listed(self) -> bool: ...
    @property
    def ready(self) -> int: ...
    @property
    def stats(self) -> ScanStats: ...


class Output(Protocol[T_contra]):
    """Where a stream's items are written: `_output`'s writers and `_audit_output`'s."""

    def add(self, item: T_contra) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


async def write_stream(
    stream: Stream[ItemT], output: Output[ItemT], *, debug: bool, on_terminal: bool = False
) -> int:
    """Write every item of ``stream`` to ``output`` as it comes, with a progress bar on a
    terminal and the one-line summary on stderr at the end (see the module doc: signals,
    a closed pipe); returns the exit status. ``on_terminal``: the output writes to the
    terminal as items come (the bar gives way to it)."""
    reach = _Reach()
    bar = _Bar(gives_way=on_terminal)
    closed = False
    with anyio.CancelScope() as scope, _stopped_by_signals(scope) as caught:
        try:
            try:
                async for item in stream:
                    bar.before_write()
                    output.add(item)
                    if not stream.ready:
                        # A reader downstream sees each item as soon as no other is waiting;
                        # a burst of items costs one write, not one each.
                        output.flush()
                        bar.after_flush()
                    reach.note(item)
                    bar.advance(stream.total, stream.listed)
            finally:
                await stream.aclose()
        except BrokenPipeError:
            closed = True  # not a failed tag: the scan is over (its requests cancelled), quietly
            raise
        finally:
            bar.stop()
            if not closed:
                # Whatever else ended the scan, what it printed is whole (a JSON array
                # closed), and the table comes before the summary.
                output.close()
                interrupted = signal.Signals(caught[0]).name if caught else None
                print(_summary(stream.stats, interrupted), file=sys.stderr)  # noqa: T201
    if caught:
        return 128 + caught[0]  # as the shell reports a process the signal ended
    if reach.failed(debug=debug):
        return EXIT_USAGE
    return EXIT_SOME_FAILED if stream.stats.errors else EXIT_OK


class _Reach:
    """Which registries answered, and why the others did not (`_connection_failure`)."""

    def __init__(self) -> None:
        self._unreached: dict[str, ScanError] = {}  # registry -> why, until one answered
        self._answered: set[str] = set()

    def note(self, item: Item) -> None:
        registry = item.repository.split("/", 1)[0]
        failure = _connection_failure(item.error)
        if failure is None:
            self._answered.add(registry)
        else:
            self._unreached.setdefault(registry, failure)

    def failed(self, *, debug: bool) -> bool:
        """Whether a registry never answered; if so, says which on stderr."""
        down = [(n, e) for n, e in self._unreached.items() if n not in self._answered]
        if not down:
            return False
        name, error = down[0]
        if debug:
            traceback.print_exception(error.exception)
        more = f" (and {len(down) - 1} more registries)" if len(down) > 1 else ""
        message = f"{name} could not be reached{more}: {error.message}"
        print(f"aioregistry: error: {message}", file=sys.stderr)  # noqa: T201
        return True


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


def _connection_failure(error: ScanError | None) -> ScanError | None:
    """The error of a tag or a repository that failed for want of an answer (connection, TLS,
    timeout): exit 2 when none of its registry's requests got one (a tag that timed out in a
    scan of a registry that answers the others is a failed tag: exit 1)."""
    return error if error is not None and isinstance(error.exception, TransportError) else None


class _Bar:
    """The progress bar on stderr, when it is a terminal. With ``gives_way`` (an output that
    writes to the same terminal as it goes: the audit's table) the bar is taken down while a
    burst of items is written, and put back after, so the two do not draw over each other."""

    def __init__(self, *, gives_way: bool) -> None:
        self._progress: Any = None
        self._gives_way = gives_way
        self._down = False
        if not sys.stderr.isatty():
            return
        from rich.console import Console  # noqa: PLC0415
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task("scan", total=None)
        self._progress.start()

    def before_write(self) -> None:
        if self._progress is not None and self._gives_way and not self._down:
            self._progress.stop()
            self._down = True

    def after_flush(self) -> None:
        if self._down:
            self._progress.start()
            self._down = False

    def advance(self, total: int, listed: bool) -> None:
        if self._progress is not None:
            # The total grows while repositories are listed; unknown (pulsing) until then.
            self._progress.update(self._task, advance=1, total=total if listed else None)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
