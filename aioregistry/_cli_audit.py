"""``aioregistry audit``: the answers bulk audits ask for, on the command line.

It is ``scan`` (`_cli_scan.write_stream`: the progress bar, Ctrl-C and SIGTERM, a closed
pipe, the one-line summary on stderr and the exit status are scan's) over
`RegistryClient.audit`'s rows, in `_audit_output`'s formats. Without ``--sort`` rows are
written as they come (a repository's once each of its tags is scanned: ``same_digest``
needs them); with it they are kept and written sorted at the end, which is also when
``json`` and ``html`` are written, their summary first. ``-o FILE`` writes there instead
of stdout; its suffix chooses the format when ``--format`` does not. A bad filter is a usage
error (exit 2) named before any request, and so are ``html`` without Jinja2 (the extra
``report``) and ``html`` onto a terminal (a page is for a file or a pipe).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ._audit_filter import SortKey, sort_rows
from ._audit_output import audit_formats, audit_writer
from ._cli_hints import check_scan_target
from ._cli_scan import Output, write_stream
from ._exceptions import UsageError
from ._references import parse_reference, parse_registry, parse_repository
from ._report import require_jinja2
from ._scan_results import is_image_reference

if TYPE_CHECKING:
    from ._audit_rows import AuditRow
    from ._client import RegistryClient

__all__ = ["run_audit"]

_SUFFIXES = {".json": "json", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".html": "html"}


class _Sorted:
    """Rows kept, and given to ``output`` sorted when closed."""

    def __init__(self, output: Output[AuditRow], key: SortKey, *, reverse: bool) -> None:
        self._output = output
        self._key: SortKey = key
        self._reverse = reverse
        self._rows: list[AuditRow] = []

    def add(self, row: AuditRow) -> None:
        self._rows.append(row)

    def flush(self) -> None:
        return None  # nothing can be written before the last row

    def close(self) -> None:
        for row in sort_rows(self._rows, self._key, reverse=self._reverse):
            self._output.add(row)
        self._output.close()


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output:
        fmt = _SUFFIXES.get(Path(args.output).suffix.lower(), "jsonl")
        return fmt if fmt in audit_formats() else "jsonl"
    return "table" if sys.stdout.isatty() else "jsonl"


def _one_registry(targets: list[str], catalog: str | None) -> str | None:
    """The registry every target names, when it is one (the table then names it once)."""
    registries = {
        (
            parse_reference(t).repository.registry
            if is_image_reference(t)
            else parse_repository(t).registry
        )
        for t in targets
    }
    if catalog is not None:
        registries.add(parse_registry(catalog))
    return registries.pop() if len(registries) == 1 else None


async def run_audit(args: argparse.Namespace, client: RegistryClient) -> int:
    """Run the audit the arguments describe; returns the exit status."""
    if args.reverse and not args.sort:
        raise UsageError("--reverse needs --sort (created, size or tag)")
    targets = [check_scan_target(target, "audit") for target in args.targets]
    audit = client.audit(
        *targets,
        catalog=args.catalog,
        platform=args.platform,
        concurrency=args.concurrency,
        repo_type=args.repo_type,
        include=args.include,
        exclude=args.exclude,
        older_than=args.older_than,
        newer_than=args.newer_than,
        missing_platform=args.missing_platform,
        unsigned=args.unsigned,
    )
    fmt = _format(args)
    if fmt == "html":
        require_jinja2()
        if not args.output and sys.stdout.isatty():
            raise UsageError(
                "--format html writes a whole page: give -o FILE.html, or redirect stdout"
            )
    out: IO[bytes] = sys.stdout.buffer
    text: IO[str] = sys.stdout
    if args.output:
        try:
            # A local file opened once, before any request: nothing waits on it.
            out = Path(args.output).open("wb")  # noqa: SIM115, ASYNC230  (closed below)
        except OSError as exc:
            raise UsageError(f"cannot write --output {args.output!r}: {exc.strerror}") from None
        text = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    try:
        writer = audit_writer(
            fmt, out, text, lambda: audit.summary, registry=_one_registry(targets, args.catalog)
        )
        output: Output[AuditRow] = writer
        if args.sort:
            output = _Sorted(writer, args.sort, reverse=args.reverse)
        streamed = fmt == "table" and not args.sort and text.isatty()
        return await write_stream(audit, output, debug=args.debug, on_terminal=streamed)
    finally:
        if args.output:
            text.close()
