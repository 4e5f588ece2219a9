"""Output formats of scan results, one object per format, all written the same way.

``writer(fmt, out)`` gives an object with ``add(result)``, ``flush()`` and ``close()``:
`JsonLines` writes one JSON object per result as it arrives; `JsonArray` streams one array
(``[]`` when there was nothing); `Table` keeps the rows and prints an aligned table (rich)
when closed.
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING, Protocol

import orjson

if TYPE_CHECKING:  # only annotations: `_cli` imports FORMATS for its parser, and stays light
    from ._scan_results import ScanResult

__all__ = ["FORMATS", "JsonArray", "JsonLines", "Table", "Writer", "writer"]

FORMATS = ("jsonl", "json", "table")


class Writer(Protocol):
    def add(self, result: ScanResult) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class JsonLines:
    """One JSON object per line, per result (``manifest`` only with ``include_manifest``)."""

    def __init__(self, out: IO[bytes], *, include_manifest: bool) -> None:
        self._out = out
        self._include_manifest = include_manifest

    def add(self, result: ScanResult) -> None:
        self._out.write(_json(result, self._include_manifest) + b"\n")

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self.flush()


class JsonArray:
    """One JSON array of results, written as they arrive."""

    def __init__(self, out: IO[bytes], *, include_manifest: bool) -> None:
        self._out = out
        self._include_manifest = include_manifest
        self._first = True

    def add(self, result: ScanResult) -> None:
        self._out.write((b"[\n" if self._first else b",\n") + _json(result, self._include_manifest))
        self._first = False

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self._out.write(b"[]\n" if self._first else b"\n]\n")
        self._out.flush()


class Table:
    """An aligned table of every result, printed when closed (to stdout, through rich)."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, ...]] = []

    def add(self, result: ScanResult) -> None:
        self._rows.append(_row(result))

    def flush(self) -> None:
        return None  # a table is printed whole, at the end

    def close(self) -> None:
        _print_table(self._rows)


def writer(fmt: str, out: IO[bytes], *, include_manifest: bool) -> Writer:
    """The writer of format ``fmt`` (one of `FORMATS`) into ``out``."""
    if fmt == "table":
        return Table()
    if fmt == "json":
        return JsonArray(out, include_manifest=include_manifest)
    return JsonLines(out, include_manifest=include_manifest)


def _json(result: ScanResult, include_manifest: bool) -> bytes:
    return orjson.dumps(result.to_json(include_manifest=include_manifest))


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
