"""Output formats of audit rows: ``table``, ``jsonl``, ``json``, ``csv`` and ``html``, each an
object with ``add(row)``, ``flush()`` and ``close()``, as `_output`'s scan writers.

`JsonLines` and `Csv` write each row as it comes (``csv``: a header row first, lists joined
with spaces, booleans ``true``/``false``, null empty); `Table` prints each row as it comes
in columns of fixed widths fitted to the terminal, then the summary; `Json` writes one object,
``{"summary": {...}, "rows": [...]}``, and `Html` the report of the same two, when closed: a
summary heads them, so they wait for the last row (``html`` is `_report`'s page, which needs
the extra ``report``, Jinja2: `_cli_audit` says so before any request when it is missing).
Every writer's ``close`` leaves its output whole, whenever it is called (an interrupted
audit's rows so far). The summary is the
audit's own (`Audit.summary`), asked for when the writer closes. Rows are written from their
JSON (`AuditRow.to_json`), so every format says the same.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # only annotations: `_cli` imports audit_formats for its parser
    from rich.table import Table as RichTable

    from ._audit_rows import AuditRow
    from ._audit_summary import AuditSummary

__all__ = [
    "COLUMNS",
    "REPORT_MODULE",
    "Csv",
    "Html",
    "Json",
    "JsonLines",
    "Table",
    "audit_formats",
    "audit_writer",
    "human_size",
    "summary_lines",
]

COLUMNS = (
    "reference", "repository", "tag", "digest", "platform", "platforms", "created", "age_days",
    "size", "layers", "same_digest", "signed", "sbom", "attestation", "referrers", "error",
)  # fmt: skip
REPORT_MODULE = "aioregistry._report"  # render_report(summary, rows) -> str

Summary = Callable[[], "AuditSummary"]


def audit_formats() -> tuple[str, ...]:
    """The formats ``audit --format`` takes (``html`` needs the extra ``report`` to write)."""
    return ("table", "jsonl", "json", "csv", "html")


class JsonLines:
    """One JSON object per line, per row."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def add(self, row: AuditRow) -> None:
        self._out.write(orjson.dumps(row.to_json()) + b"\n")

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self.flush()


class Json:
    """``{"summary": ..., "rows": [...]}``, written when closed."""

    def __init__(self, out: IO[bytes], summary: Summary) -> None:
        self._out = out
        self._summary = summary
        self._rows: list[dict[str, Any]] = []

    def add(self, row: AuditRow) -> None:
        self._rows.append(row.to_json())

    def flush(self) -> None:
        return None  # the summary comes first: nothing is written before the end

    def close(self) -> None:
        document = {"summary": self._summary().to_json(), "rows": self._rows}
        self._out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        self._out.flush()


class Html(Json):
    """The report (`REPORT_MODULE`'s ``render_report``) of the summary and rows, when closed."""

    def close(self) -> None:
        from ._report import render_report  # noqa: PLC0415 (only html needs it, and Jinja2)

        page = render_report(self._summary().to_json(), self._rows)
        self._out.write(page.encode())
        self._out.flush()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(item["digest"] if isinstance(item, dict) else str(item) for item in value)
    return str(value)


class Csv:
    """A header row (`COLUMNS`), then one row per audit row; ``referrers`` are their digests."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._text = io.StringIO()
        self._csv = csv.writer(self._text, lineterminator="\n")
        self._write(COLUMNS)

    def _write(self, cells: tuple[str, ...] | list[str]) -> None:
        self._csv.writerow(cells)
        self._out.write(self._text.getvalue().encode())
        self._text.seek(0)
        self._text.truncate()

    def add(self, row: AuditRow) -> None:
        data = row.to_json()
        self._write([_cell(data[name]) for name in COLUMNS])

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self.flush()


def human_size(size: int | None) -> str:
    """Bytes as docker shows them (decimal units): ``7.3 kB``, ``120 MB``; ``-`` for None."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _platforms(platforms: list[str]) -> str:
    # linux is what nearly every image runs: its architectures alone say it shorter.
    return " ".join(p.removeprefix("linux/") for p in platforms) or "-"


# (name, width, right-aligned): REFERENCE takes what the terminal has left.
_FIXED = {
    "PLATFORM": (11, False),
    "CREATED": (10, False),
    "AGE": (6, True),
    "SIZE": (8, True),
    "LAYERS": (6, True),
    "PLATFORMS": (13, False),
    "SAME DIGEST": (12, False),
    "SIGNED": (6, False),
    "SBOM": (4, False),
    "ATTEST": (6, False),
}
# Left out in this order while REFERENCE would get fewer than `_MIN_REFERENCE` cells (AGE
# says what CREATED does, roughly; an 80-column terminal keeps AGE, SIZE, SIGNED and SBOM).
_LEAVE_OUT = ("LAYERS", "PLATFORM", "ATTEST", "SAME DIGEST", "CREATED", "PLATFORMS")
_MIN_REFERENCE = 24
_GAP = 2  # between two columns


def _cells(data: dict[str, Any], reference: str) -> dict[str, str]:
    created, age = data["created"], data["age_days"]
    return {
        "REFERENCE": reference,
        "PLATFORM": data["platform"] or "-",
        "CREATED": created[:10] if created else "-",
        "AGE": "-" if age is None else f"{age}d",
        "SIZE": human_size(data["size"]),
        "LAYERS": "-" if data["layers"] is None else str(data["layers"]),
        "PLATFORMS": _platforms(data["platforms"]),
        "SAME DIGEST": " ".join(data["same_digest"]) or "-",
        "SIGNED": "yes" if data["signed"] else "-",
        "SBOM": "yes" if data["sbom"] else "-",
        "ATTEST": "yes" if data["attestation"] else "-",
    }


class Table:
    """Rows printed as they come, in columns of fixed widths (a row folds rather than
    widening its column, so the first rows need not wait for the last); on a narrow terminal
    the least telling columns are left out (`_LEAVE_OUT`, said under the rows); a failed
    row's error on a line of its own under it; the summary at the end. ``registry``, when
    every row is of that one registry, is named once in the title and cut from the
    references."""

    def __init__(self, text: IO[str], summary: Summary, *, registry: str | None) -> None:
        from rich.console import Console  # noqa: PLC0415  (only tables need rich)

        self._console = Console(file=text, width=None if text.isatty() else 160, soft_wrap=False)
        self._summary = summary
        self._registry = registry
        width = self._console.width
        self._columns = dict(_FIXED)
        self._left_out: list[str] = []

        def left() -> int:
            return width - sum(w + _GAP for w, _ in self._columns.values())

        for name in _LEAVE_OUT:
            if left() >= _MIN_REFERENCE:
                break
            del self._columns[name]
            self._left_out.append(name)
        self._reference = max(_MIN_REFERENCE, left())
        self._first = True

    def _table(self, *, header: bool) -> RichTable:
        from rich.table import Table as RichTable  # noqa: PLC0415

        table = RichTable(box=None, pad_edge=False, show_header=header, header_style="bold")
        table.add_column("REFERENCE", width=self._reference, overflow="fold")
        for name, (width, right) in self._columns.items():
            table.add_column(
                name, width=width, overflow="fold", justify="right" if right else "left"
            )
        return table

    def add(self, row: AuditRow) -> None:
        if self._first and self._registry is not None:
            self._console.print(f"[bold]registry {self._registry}[/bold]", highlight=False)
        table = self._table(header=self._first)
        self._first = False
        data = row.to_json()
        reference: str = data["reference"]
        if self._registry is not None:
            reference = reference.removeprefix(f"{self._registry}/")
        cells = _cells(data, reference)
        table.add_row(
            *(cells[name] for name in ("REFERENCE", *self._columns)),
            style="red" if data["error"] else None,
        )
        self._console.print(table)
        if data["error"]:
            self._console.print(f"  error: {data['error']}", style="red", highlight=False)

    def flush(self) -> None:
        self._console.file.flush()

    def close(self) -> None:
        if self._first:
            self._console.print("no tags", highlight=False)
        elif self._left_out:
            left_out = ", ".join(self._left_out)
            self._console.print(
                f"{left_out} left out at this width (--format json has them)", highlight=False
            )
        for line in summary_lines(self._summary()):
            self._console.print(line, highlight=False)
        self.flush()


def summary_lines(summary: AuditSummary) -> list[str]:
    """The summary as a person reads it, a few lines."""
    tags = f"{summary.tags} tag{'s' * (summary.tags != 1)}"
    repositories = f"{summary.repositories} repositor{'ies' if summary.repositories != 1 else 'y'}"
    lines = [
        f"{tags} in {repositories}: {summary.images} image{'s' * (summary.images != 1)}, "
        f"{human_size(summary.total_size)} ({human_size(summary.unique_size)} in distinct blobs)",
        f"{summary.unsigned} unsigned, {summary.without_sbom} without an SBOM",
    ]
    if summary.oldest is not None and summary.oldest.created is not None:
        data = summary.to_json()["oldest"]
        lines.append(
            f"oldest: {data['reference']} ({data['created'][:10]}, {data['age_days']} days)"
        )
    if summary.largest is not None:
        lines.append(f"largest: {summary.largest.reference} ({human_size(summary.largest.size)})")
    return lines


def audit_writer(
    fmt: str,
    out: IO[bytes],
    text: IO[str],
    summary: Summary,
    *,
    registry: str | None = None,
) -> JsonLines | Json | Csv | Table | Html:
    """The writer of format ``fmt`` (one of `audit_formats`) into ``out`` (``text`` for the
    table: the same file, as text); ``summary`` gives the audit's summary at the end."""
    if fmt == "table":
        return Table(text, summary, registry=registry)
    if fmt == "json":
        return Json(out, summary)
    if fmt == "csv":
        return Csv(out)
    if fmt == "html":
        return Html(out, summary)
    return JsonLines(out)
