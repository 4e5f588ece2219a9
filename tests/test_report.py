"""The HTML report without a browser: its charts' numbers, its escaping, its CSP, its extra.

The browser's view of the same page is tests/test_report_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from html.parser import HTMLParser

import pytest
from support.audit_rows import synthetic_rows

from aioregistry import UsageError, _report
from aioregistry._report import MISSING_JINJA2, render_report, rows_json
from aioregistry._report_charts import (
    AGE_BUCKETS,
    TOP_PLATFORMS,
    TOP_REPOSITORIES,
    age_chart,
    coverage_chart,
    format_bytes,
    shares,
    size_chart,
)

HOSTILE = '</script><img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
SUMMARY = {
    "repositories": 1,
    "tags": 1,
    "images": 1,
    "total_size": 10,
    "unique_size": 10,
    "unsigned": 1,
    "without_sbom": 1,
    "oldest": None,
    "largest": None,
}


def _row(repository="r", tag="t", **fields):
    row = {
        "reference": f"h/{repository}:{tag}",
        "repository": repository,
        "tag": tag,
        "digest": f"sha256:{repository}-{tag}",
        "platform": "linux/amd64",
        "platforms": ["linux/amd64"],
        "created": None,
        "age_days": None,
        "size": None,
        "layers": 1,
        "same_digest": [],
        "signed": False,
        "sbom": False,
        "attestation": False,
        "referrers": [],
        "error": None,
    }
    row.update(fields)
    return row


class _Page(HTMLParser):
    """Every element's attributes, and the text of each <script> and <style>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.raw: list[tuple[str, dict[str, str | None], str]] = []
        self._open: tuple[str, dict[str, str | None]] | None = None

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._open = (tag, dict(attrs))
            self.raw.append((tag, dict(attrs), ""))

    def handle_data(self, data):
        if self._open is not None:
            tag, attrs, text = self.raw[-1]
            self.raw[-1] = (tag, attrs, text + data)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._open = None


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def test_tags_fall_into_age_buckets_with_bars_as_tall_as_their_counts():
    ages = [0, 6, 7, 29, 30, 30, 30, 400, 800, 10_000, None]
    rows = [_row(tag=str(i), age_days=age) for i, age in enumerate(ages)]
    rows.append(_row(tag="broken", error="NotFound: no", age_days=None))
    chart = age_chart(rows)
    labels = [label for label, _, _ in AGE_BUCKETS]
    assert [bar.label for bar in chart.bars] == [*labels, "unknown"]
    assert [bar.value for bar in chart.bars] == [2, 2, 3, 0, 0, 1, 2, 2]
    assert sum(bar.value for bar in chart.bars) == len(rows)
    tallest = max(bar.height for bar in chart.bars)
    for bar in chart.bars:
        assert bar.height == pytest.approx(tallest * bar.value / 3)
        assert bar.y + bar.height == pytest.approx(chart.baseline)  # standing on the axis
    xs = [bar.x for bar in chart.bars]
    assert xs == sorted(xs)
    assert all(a.x + a.width < b.x for a, b in zip(chart.bars, chart.bars[1:], strict=False))


def test_the_unknown_bar_is_there_only_when_some_age_is_unknown():
    chart = age_chart([_row(age_days=3)])
    assert "unknown" not in [bar.label for bar in chart.bars]
    assert len(chart.bars) == len(AGE_BUCKETS)
    assert age_chart([]).bars[0].height == 0  # no rows: empty bars, no division by zero


def test_size_by_repository_counts_each_image_once_and_groups_the_smallest():
    rows = [
        _row("a", "1", digest="sha256:x", size=100),
        _row("a", "2", digest="sha256:x", size=100),  # same image, another tag
        _row("a", "3", digest="sha256:y", size=50),
        _row("b", "1", digest="sha256:x", size=100),  # the same digest in another repository
        _row("c", "1", size=None),  # size unknown: no bar
    ]
    chart = size_chart(rows)
    assert [(bar.label, bar.value) for bar in chart.bars] == [("a", 150), ("b", 100)]
    assert chart.bars[1].width == pytest.approx(chart.bars[0].width * 100 / 150)
    assert [bar.text for bar in chart.bars] == ["150 B", "100 B"]

    many = [_row(f"r{i:02}", digest=f"sha256:{i}", size=1000 + i) for i in range(20)]
    chart = size_chart(many)
    assert len(chart.bars) == TOP_REPOSITORIES + 1
    assert [bar.label for bar in chart.bars[:3]] == ["r19", "r18", "r17"]
    rest = 20 - TOP_REPOSITORIES
    assert chart.bars[-1].label == f"{rest} other repositories"
    assert chart.bars[-1].value == sum(1000 + i for i in range(rest))


def test_platform_coverage_counts_the_tags_of_each_repository_offering_each_platform():
    rows = [
        _row("a", "1", platforms=["linux/amd64", "linux/arm64"]),
        _row("a", "2", platforms=["linux/amd64"]),
        _row("b", "1", platforms=[], platform="linux/arm64"),  # one platform, no list
        _row("b", "2", platforms=[], platform=None, error="NotFound: gone"),
    ]
    chart = coverage_chart(rows)
    assert chart.platforms == ("linux/amd64", "linux/arm64")  # ties broken by name
    table = {
        row.label: (row.tags, [(cell.platform, cell.count) for cell in row.cells])
        for row in chart.rows
    }
    assert table == {
        "all repositories": (4, [("linux/amd64", 2), ("linux/arm64", 2)]),
        "a": (2, [("linux/amd64", 2), ("linux/arm64", 1)]),
        "b": (2, [("linux/amd64", 0), ("linux/arm64", 1)]),
    }
    assert chart.rows[1].cells[1].share == pytest.approx(0.5)
    assert chart.hidden_platforms == 0


def test_platform_coverage_shows_the_most_offered_platforms_and_counts_the_rest():
    rows = [
        _row(tag=str(i), platforms=[f"linux/arch{j}" for j in range(i + 1)])
        for i in range(TOP_PLATFORMS + 3)
    ]
    chart = coverage_chart(rows)
    assert len(chart.platforms) == TOP_PLATFORMS
    assert chart.platforms[0] == "linux/arch0"  # offered by every tag
    assert chart.hidden_platforms == 3
    assert all(len(row.cells) == TOP_PLATFORMS for row in chart.rows)


def test_shares_count_only_the_rows_that_were_read():
    rows = [
        _row(tag="1", signed=True, sbom=True),
        _row(tag="2", signed=True),
        _row(tag="3"),
        _row(tag="4", error="Unauthorized: no", signed=False),
    ]
    assert [(s.label, s.count, s.total) for s in shares(rows)] == [
        ("signed", 2, 3),
        ("with an SBOM", 1, 3),
        ("with an attestation", 0, 3),
    ]
    assert shares(rows)[0].percent == pytest.approx(200 / 3)
    assert shares([])[0].percent == 0


def test_format_bytes():
    assert format_bytes(None) == "–"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(5 * 1024**3) == "5.0 GiB"
    assert format_bytes(3 * 1024**5) == "3072.0 TiB"


def test_the_data_block_holds_no_markup_characters_and_reads_back_as_the_rows():
    rows = [_row(tag=HOSTILE, error="a & b < c > d", referrers=[{"annotations": {"x": HOSTILE}}])]
    text = rows_json(rows)
    assert not set(text) & set("<>&")
    assert json.loads(text) == rows


def test_a_hostile_row_cannot_end_the_data_block_or_add_markup():
    row = _row(
        tag=HOSTILE, error=HOSTILE, referrers=[{"kind": "other", "annotations": {"a": HOSTILE}}]
    )
    summary = {**SUMMARY, "oldest": {"reference": HOSTILE, "created": HOSTILE, "age_days": 3}}
    summary["largest"] = {"reference": HOSTILE, "size": 10}
    html = render_report(summary, [_row(repository=HOSTILE, size=5, platforms=[HOSTILE]), row])
    page = _parse(html)
    assert [tag for tag, _ in page.elements].count("script") == 2  # the data and the code
    assert "img" not in [tag for tag, _ in page.elements]
    scripts = [(attrs, text) for tag, attrs, text in page.raw if tag == "script"]
    data = next(text for attrs, text in scripts if attrs.get("type") == "application/json")
    assert json.loads(data)[1]["tag"] == HOSTILE  # the block holds the row, whole
    assert "window.pwned" not in next(text for attrs, text in scripts if "type" not in attrs)
    assert "&lt;/script&gt;&lt;img" in html  # the summary and the charts show it escaped


def test_the_csp_allows_exactly_the_inline_style_and_script_and_nothing_else():
    html = render_report(SUMMARY, [_row(size=1, age_days=1)])
    page = _parse(html)
    csp = next(
        attrs["content"]
        for tag, attrs in page.elements
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    )
    assert csp is not None
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert "unsafe-inline" not in csp

    def allowed(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    style = [text for tag, _, text in page.raw if tag == "style"]
    code = [text for tag, attrs, text in page.raw if tag == "script" and "type" not in attrs]
    assert len(style) == 1
    assert len(code) == 1
    assert directives["style-src"] == allowed(style[0])
    assert directives["script-src"] == allowed(code[0])


def test_the_page_names_no_other_resource():
    rows = synthetic_rows(300)
    html = render_report(SUMMARY, rows)
    for tag, attrs in _parse(html).elements:
        assert not {"src", "href", "srcset", "action", "background", "poster"} & set(attrs), tag
        assert tag not in ("link", "iframe", "object", "embed", "img", "base"), tag
        for name, value in attrs.items():
            assert not re.search(r"(?i)(https?|ftp|file|data|javascript):", value or ""), name
            assert not name.startswith("on"), name  # no inline handlers (the CSP refuses them)
            assert name != "style", tag  # the CSP refuses style attributes too


def test_without_jinja2_the_report_names_the_extra_to_install(monkeypatch):
    _report._environment.cache_clear()
    monkeypatch.setitem(sys.modules, "jinja2", None)  # as if not installed
    try:
        with pytest.raises(UsageError) as caught:
            render_report(SUMMARY, [])
    finally:
        _report._environment.cache_clear()
    assert str(caught.value) == MISSING_JINJA2
    assert "pip install 'aioregistry[report]'" in MISSING_JINJA2


def test_an_empty_audit_renders():
    html = render_report({**SUMMARY, "repositories": 0, "tags": 0, "images": 0}, [])
    assert "no sizes known" in html
    assert "no platforms known" in html
    assert 'data-total="0"' in html
