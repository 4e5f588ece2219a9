"""Output formats of scan results, one object per format, all written the same way.

``writer(fmt, out)`` gives an object with ``add(result)``, ``flush()`` and ``close()``:
`JsonLines` writes one JSON object per result as it arrives; `JsonArray` streams one array
(``[]`` when there was nothing); `Table` keeps the rows and prints an aligned table (rich)
when closed, fitted to the terminal without cutting a reference (`_fit`).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import IO, TYPE_CHECKING, Literal, Protocol

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
        _referrers(result),
        error,
    )


def _referrers(result: ScanResult) -> str:
    """What refers to the tag, by kind (``2 signature, sbom``); ``none`` when listed and
    there were none, empty when not asked (the column is then left out)."""
    if result.referrers is None:
        return ""
    counts: Counter[str] = Counter(referrer.kind for referrer in result.referrers)
    kinds = [kind for kind in ("signature", "sbom", "attestation", "other") if kind in counts]
    return ", ".join(f"{counts[k]} {k}" if counts[k] > 1 else k for k in kinds) or "none"


# How each column gives way on a terminal too narrow for the table: REFERENCE, PLATFORM and
# ERROR fold (every character is still shown), the others are ellipsised ("…" marks the
# cut), down to the narrowest they get in `_fit`.
_NAMES = (
    "REFERENCE",
    "PLATFORM",
    "DIGEST",
    "MANIFEST",
    "CONFIG",
    "CREATED",
    "REFERRERS",
    "ERROR",
)
_FOLDED = frozenset({"REFERENCE", "PLATFORM", "REFERRERS", "ERROR"})
_GAP = 2  # the padding between two columns


def _fit(natural: dict[str, int], width: int) -> tuple[dict[str, int], list[str]]:
    """The widths of the columns (``natural``: each one's widest cell) in a table at most
    ``width`` cells wide, and the columns left out.

    Each step gives way only as far as needed, in this order: ERROR folds to 30 cells, the
    digests shorten to 8 ("0123abc…") and CREATED to 11 (its date), REFERRERS folds to 11;
    CONFIG, MANIFEST and CREATED are left out; the reference folds to 30; ERROR folds to 16,
    PLATFORM to 8, the reference to 12; then the reference and ERROR fold further, never
    below their headers. Room left over goes back to ERROR first. The reference and the tag
    are never cut, only folded: a reference cut short can read as another, real one
    (``org/team/app:1``).
    """
    widths = dict(natural)
    left_out: list[str] = []

    def excess() -> int:
        return sum(widths.values()) + _GAP * (len(widths) - 1) - width

    def shrink(names: tuple[str, ...], floor: int) -> None:
        names = tuple(name for name in names if name in widths)
        while names and excess() > 0:
            widest = max(names, key=lambda name: widths[name])
            if widths[widest] <= max(floor, len(widest)):  # the header stays whole
                return
            widths[widest] -= 1  # the widest of the group first: they end up alike

    shrink(("ERROR",), 30)
    shrink(("DIGEST", "MANIFEST", "CONFIG"), 8)
    shrink(("CREATED",), 11)
    shrink(("REFERRERS",), 11)
    for name in ("CONFIG", "MANIFEST", "CREATED"):
        if excess() > 0 and name in widths:
            del widths[name]
            left_out.append(name)
    for names, floor in (
        (("REFERENCE",), 30),
        (("ERROR",), 16),
        (("PLATFORM",), 8),
        (("REFERENCE",), 12),
        (("ERROR",), 8),
        (("REFERENCE",), 1),
    ):
        shrink(names, floor)
    for name in ("ERROR", "CREATED", "DIGEST", "MANIFEST", "CONFIG"):
        if name in widths and excess() < 0:
            widths[name] = min(natural[name], widths[name] - excess())
    return widths, left_out


def _print_table(rows: list[tuple[str, ...]]) -> None:
    from rich.cells import cell_len  # noqa: PLC0415  (only tables and progress need rich)
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    # One registry (the usual case): name it once in the title, not on every row.
    registries = {row[0].split("/", 1)[0] for row in rows}
    title = None
    if len(registries) == 1:
        title = f"registry {registries.pop()}"
        rows = [(row[0].split("/", 1)[1], *row[1:]) for row in rows]
    # Columns with nothing to show (no config fetched, no errors) are left out.
    natural = {
        name: max(cell_len(cell) for cell in [name, *(row[i] for row in rows)])
        for i, name in enumerate(_NAMES)
        if i < 2 or any(row[i] not in ("", "-") for row in rows)
    }
    # On a terminal the table fits its width; into a file or pipe, rows are never wrapped.
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 100_000)
    widths, left_out = _fit(natural, console.width)
    caption = None
    if left_out:
        caption = f"{', '.join(left_out)} left out at this width (--format json has them)"
    table = Table(
        box=None,
        header_style="bold",
        pad_edge=False,
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    keep = [i for i, name in enumerate(_NAMES) if name in widths]
    for i in keep:
        name = _NAMES[i]
        folded = name in _FOLDED
        overflow: Literal["fold", "ellipsis"] = "fold" if folded else "ellipsis"
        table.add_column(name, width=widths[name], no_wrap=not folded, overflow=overflow)
    for row in sorted(rows):
        table.add_row(*(row[i] for i in keep), style="red" if row[-1] else None)
    console.print(table)
