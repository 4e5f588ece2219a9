"""The HTML report's charts as numbers and shapes: what each bar, cell and share is.

Each chart is computed here from the audit's rows (the dicts of ``audit --format json``),
with its geometry in SVG user units, and drawn by the report's template as inline SVG: no
chart library, nothing fetched, and a page that shows its charts even where scripts are
off (a mail client). Every chart aggregates, so that it reads the same for 10 rows as for
10,000: tags fall into fixed age buckets, repositories beyond the largest `TOP_REPOSITORIES`
share one "others" bar, platform coverage is per repository rather than per tag. No I/O and
no markup here: the template escapes every label.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AGE_BUCKETS",
    "COVERAGE_REPOSITORIES",
    "TOP_PLATFORMS",
    "TOP_REPOSITORIES",
    "AgeChart",
    "Bar",
    "CoverageCell",
    "CoverageChart",
    "CoverageRow",
    "Share",
    "SizeChart",
    "age_chart",
    "coverage_chart",
    "format_bytes",
    "format_number",
    "row_platforms",
    "shares",
    "size_chart",
]

# (label, lowest age in days, first age past the bucket); None: no upper bound.
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("< 1 wk", 0, 7),
    ("1–4 wks", 7, 30),
    ("1–3 mo", 30, 91),
    ("3–6 mo", 91, 182),
    ("6–12 mo", 182, 365),
    ("1–2 yrs", 365, 730),
    ("> 2 yrs", 730, None),
)
UNKNOWN_AGE = "unknown"
TOP_REPOSITORIES = 10
TOP_PLATFORMS = 12
COVERAGE_REPOSITORIES = 10

# Geometry (SVG user units; the SVGs scale to their box with a viewBox).
AGE_WIDTH, AGE_HEIGHT = 560, 190
AGE_TOP, AGE_BOTTOM, AGE_LEFT = 24, 40, 8
SIZE_WIDTH, SIZE_ROW, SIZE_LABEL, SIZE_VALUE = 560, 22, 200, 80
CELL_WIDTH, CELL_HEIGHT, COVERAGE_LABEL, COVERAGE_HEADER = 56, 22, 200, 90
COVERAGE_RIGHT = 60  # room for the last platform's slanted name


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its label, the value it stands for, its box and the text shown beside it."""

    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    text: str


@dataclass(frozen=True, slots=True)
class AgeChart:
    """Tags by age: one vertical bar per bucket of `AGE_BUCKETS` (empty ones of height 0),
    then one for tags whose age is not known (no ``created``, or an error), if any."""

    bars: tuple[Bar, ...]
    width: int
    height: int
    baseline: float


@dataclass(frozen=True, slots=True)
class SizeChart:
    """Compressed size of the distinct images of each repository, largest first: one
    horizontal bar each for the `TOP_REPOSITORIES` largest, one for the rest together."""

    bars: tuple[Bar, ...]
    width: int
    height: int
    label_width: int


@dataclass(frozen=True, slots=True)
class CoverageCell:
    """How many of a repository's tags offer a platform, and that as a share of its tags."""

    platform: str
    count: int
    share: float
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class CoverageRow:
    label: str
    tags: int
    cells: tuple[CoverageCell, ...]
    y: float


@dataclass(frozen=True, slots=True)
class CoverageChart:
    """Platform coverage, tags × platforms: a row for all tags, then one per repository (the
    `COVERAGE_REPOSITORIES` with most tags, the rest together); a column per platform (the
    `TOP_PLATFORMS` most offered; ``hidden_platforms`` counts the others)."""

    platforms: tuple[str, ...]
    rows: tuple[CoverageRow, ...]
    hidden_platforms: int
    width: int
    height: int
    cell_width: int
    cell_height: int
    label_width: int
    header_height: int


@dataclass(frozen=True, slots=True)
class Share:
    """How many of the images (rows without an error) have a property: signed, SBOM..."""

    label: str
    count: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.count / self.total if self.total else 0.0


def format_bytes(size: int | None) -> str:
    """``1536`` → ``1.5 KiB``; None → ``–``."""
    if size is None:
        return "–"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_number(value: int | None) -> str:
    """``12345`` → ``12,345``; None → ``–``."""
    return "–" if value is None else f"{value:,}"


def _int(value: object) -> int | None:
    # bool is an int in Python, and never a size or an age
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _age_bucket(age: int | None) -> str:
    if age is None or age < 0:
        return UNKNOWN_AGE
    for label, low, high in AGE_BUCKETS:
        if age >= low and (high is None or age < high):
            return label
    raise AssertionError("unreachable")  # pragma: no cover


def age_chart(rows: Iterable[Mapping[str, Any]]) -> AgeChart:
    counts = Counter(_age_bucket(_int(row.get("age_days"))) for row in rows)
    labels = [label for label, _, _ in AGE_BUCKETS]
    if counts[UNKNOWN_AGE]:
        labels.append(UNKNOWN_AGE)
    peak = max((counts[label] for label in labels), default=0) or 1
    plot_height = AGE_HEIGHT - AGE_TOP - AGE_BOTTOM
    step = (AGE_WIDTH - 2 * AGE_LEFT) / len(labels)
    baseline = float(AGE_HEIGHT - AGE_BOTTOM)
    bars = []
    for index, label in enumerate(labels):
        height = plot_height * counts[label] / peak
        bars.append(
            Bar(
                label=label,
                value=counts[label],
                x=AGE_LEFT + index * step + step * 0.1,
                y=baseline - height,
                width=step * 0.8,
                height=height,
                text=f"{counts[label]:,}",
            )
        )
    return AgeChart(tuple(bars), AGE_WIDTH, AGE_HEIGHT, baseline)


def size_chart(rows: Iterable[Mapping[str, Any]]) -> SizeChart:
    # An image pushed under several tags is stored once: count each digest once per repository.
    sizes: dict[str, int] = defaultdict(int)
    seen: set[tuple[str, str]] = set()
    for row in rows:
        size = _int(row.get("size"))
        repository = row.get("repository")
        if size is None or not isinstance(repository, str):
            continue
        key = (repository, str(row.get("digest") or row.get("reference")))
        if key not in seen:
            seen.add(key)
            sizes[repository] += size
    ranked = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
    entries = ranked[:TOP_REPOSITORIES]
    rest = ranked[TOP_REPOSITORIES:]
    if rest:
        entries.append((f"{len(rest):,} other repositories", sum(size for _, size in rest)))
    peak = max((size for _, size in entries), default=0) or 1
    plot_width = SIZE_WIDTH - SIZE_LABEL - SIZE_VALUE
    bars = tuple(
        Bar(
            label=label,
            value=size,
            x=float(SIZE_LABEL),
            y=index * SIZE_ROW + 3.0,
            width=plot_width * size / peak,
            height=SIZE_ROW - 6.0,
            text=format_bytes(size),
        )
        for index, (label, size) in enumerate(entries)
    )
    return SizeChart(bars, SIZE_WIDTH, max(len(bars), 1) * SIZE_ROW, SIZE_LABEL)


def row_platforms(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The platforms a row's tag offers: ``platforms``, else its one ``platform``."""
    platforms = row.get("platforms")
    if isinstance(platforms, Sequence) and not isinstance(platforms, str) and platforms:
        return tuple(dict.fromkeys(str(p) for p in platforms))
    platform = row.get("platform")
    return (platform,) if isinstance(platform, str) and platform else ()


def coverage_chart(rows: Sequence[Mapping[str, Any]]) -> CoverageChart:
    tags_by_repository: Counter[str] = Counter()
    offered: dict[str, Counter[str]] = defaultdict(Counter)
    everywhere: Counter[str] = Counter()
    for row in rows:
        repository = str(row.get("repository") or "?")
        tags_by_repository[repository] += 1
        for platform in row_platforms(row):
            offered[repository][platform] += 1
            everywhere[platform] += 1
    ranked_platforms = sorted(everywhere, key=lambda p: (-everywhere[p], p))
    platforms = tuple(ranked_platforms[:TOP_PLATFORMS])
    ranked = sorted(tags_by_repository, key=lambda r: (-tags_by_repository[r], r))
    groups: list[tuple[str, list[str]]] = [("all repositories", ranked)]
    groups += [(name, [name]) for name in ranked[:COVERAGE_REPOSITORIES]]
    rest = ranked[COVERAGE_REPOSITORIES:]
    if rest:
        groups.append((f"{len(rest):,} other repositories", rest))
    coverage_rows = []
    for index, (label, members) in enumerate(groups):
        tags = sum(tags_by_repository[member] for member in members)
        y = COVERAGE_HEADER + index * CELL_HEIGHT
        cells = []
        for column, platform in enumerate(platforms):
            count = sum(offered[member][platform] for member in members)
            cells.append(
                CoverageCell(
                    platform=platform,
                    count=count,
                    share=count / tags if tags else 0.0,
                    x=COVERAGE_LABEL + column * CELL_WIDTH,
                    y=y,
                )
            )
        coverage_rows.append(CoverageRow(label, tags, tuple(cells), y))
    return CoverageChart(
        platforms=platforms,
        rows=tuple(coverage_rows),
        hidden_platforms=len(ranked_platforms) - len(platforms),
        width=COVERAGE_LABEL + max(len(platforms), 1) * CELL_WIDTH + COVERAGE_RIGHT,
        height=COVERAGE_HEADER + len(coverage_rows) * CELL_HEIGHT,
        cell_width=CELL_WIDTH,
        cell_height=CELL_HEIGHT,
        label_width=COVERAGE_LABEL,
        header_height=COVERAGE_HEADER,
    )


def shares(rows: Iterable[Mapping[str, Any]]) -> tuple[Share, ...]:
    """Signed, with an SBOM, with an attestation: each among the rows without an error (a
    tag that could not be read is neither signed nor unsigned)."""
    images = [row for row in rows if not row.get("error")]
    return tuple(
        Share(label, sum(1 for row in images if row.get(key) is True), len(images))
        for key, label in (
            ("signed", "signed"),
            ("sbom", "with an SBOM"),
            ("attestation", "with an attestation"),
        )
    )
