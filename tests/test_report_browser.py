"""The HTML report in a real browser: Debian's chromium, headless, driven by selenium.

One browser for the module; each test opens a report from a file, as a mailed report is
opened. 10,000 synthetic rows (tests/support/audit_rows.py) in the shapes of
``audit --format json``. These tests fail, not skip, without chromium: CI installs it
(``.ci/ensure-chromium``, run by ``.ci/run`` and the nox ``tests`` session).
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
from support.audit import REPOSITORY
from support.audit_rows import summarise, synthetic_rows
from support.browser import console_messages, missing, start_chromium

from aioregistry._report import render_report
from aioregistry._report_charts import AGE_BUCKETS, COVERAGE_REPOSITORIES, TOP_REPOSITORIES

ROWS = 10_000
PAGE_SIZE = 200  # the page's default
HOSTILE = '</script><img src=x onerror="window.pwned=1"><svg onload="window.pwned=2">'


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = missing()
    if problem:
        pytest.fail(problem)  # not a skip: CI installs chromium, so its absence is a failure
    driver = start_chromium()
    driver.set_script_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return synthetic_rows(ROWS)


@pytest.fixture(scope="module")
def report(rows, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "audit.html"
    path.write_text(render_report(summarise(rows), rows), encoding="utf-8")
    return path


def _open(browser, path: Path) -> None:
    console_messages(browser)  # drop what earlier pages said
    browser.get(path.as_uri())
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.querySelectorAll('#rows-body tr').length")
    )


def _column(browser, key: str) -> list[str]:
    """The text of one column's cells on the page shown, top to bottom."""
    return browser.execute_script(
        """
        const keys = [...document.querySelectorAll('#header-row th')].map(th => th.dataset.key);
        const index = keys.indexOf(arguments[0]);
        const rows = document.querySelectorAll('#rows-body tr');
        return [...rows].map(tr => tr.cells[index].textContent);
        """,
        key,
    )


def _count(browser) -> tuple[int, int, str]:
    element = browser.find_element(By.ID, "row-count")
    return (
        int(element.get_attribute("data-matching")),
        int(element.get_attribute("data-total")),
        element.text,
    )


def _problems(browser) -> list[dict[str, Any]]:
    return [m for m in console_messages(browser) if m["level"] in ("SEVERE", "WARNING")]


def test_the_page_loads_without_console_errors(browser, report):
    _open(browser, report)
    assert _problems(browser) == []
    timing = browser.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return [n.domContentLoadedEventEnd, n.loadEventEnd];"
    )
    size = report.stat().st_size
    loaded, done = timing
    shown = (
        f"{ROWS:,} rows, {size / 1e6:.1f} MB: DOMContentLoaded {loaded:.0f} ms, load {done:.0f} ms"
    )
    print(f"\n{shown}")  # noqa: T201 (the load time is reported, not asserted)


def test_every_row_is_in_the_data_block_and_reachable_through_the_pages(browser, report, rows):
    _open(browser, report)
    assert _count(browser) == (ROWS, ROWS, f"{ROWS:,} of {ROWS:,} rows")
    in_block = browser.execute_script(
        "return JSON.parse(document.getElementById('rows-data').textContent).map(r => r.reference)"
    )
    assert in_block == [row["reference"] for row in rows]
    seen: list[str] = []
    pages = 0
    while True:
        shown = _column(browser, "reference")
        assert 0 < len(shown) <= PAGE_SIZE
        seen += shown
        pages += 1
        assert pages <= ROWS // PAGE_SIZE + 1  # the pager moves on
        after = browser.find_element(By.ID, "next")
        if not after.is_enabled():
            break
        after.click()
    assert pages == -(-ROWS // PAGE_SIZE)
    assert seen == [row["reference"] for row in rows]  # each row once, in the data's order


def test_sorting_by_a_column_reorders_the_rows(browser, report, rows):
    _open(browser, report)
    header = browser.find_element(By.CSS_SELECTOR, "th[data-key='age_days']")
    ages = sorted(row["age_days"] for row in rows if row["age_days"] is not None)
    assert _column(browser, "age_days")[:5] != [str(age) for age in ages[:5]]  # unsorted first
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert _column(browser, "age_days") == [str(age) for age in ages[:PAGE_SIZE]]
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert _column(browser, "age_days") == [str(age) for age in ages[::-1][:PAGE_SIZE]]
    browser.find_element(By.ID, "last").click()
    assert _column(browser, "age_days")[-1] == ""  # unknown ages last, either way

    browser.find_element(By.CSS_SELECTOR, "th[data-key='reference']").click()
    expected = sorted((row["reference"] for row in rows), key=str.lower)
    assert _column(browser, "reference") == expected[:PAGE_SIZE]
    assert header.get_attribute("aria-sort") is None


def test_filtering_shows_the_matching_rows_only(browser, report, rows):
    _open(browser, report)
    per_repository = Counter(row["repository"] for row in rows)
    needle = min(per_repository, key=lambda name: (per_repository[name] < 5, per_repository[name]))
    needle = f"/{needle}:"
    expected = [row["reference"] for row in rows if needle in row["reference"]]
    assert 0 < len(expected) < PAGE_SIZE  # one page holds them all
    browser.find_element(By.ID, "filter").send_keys(needle)
    WebDriverWait(browser, 10).until(lambda d: _count(d)[0] != ROWS)
    assert _count(browser) == (len(expected), ROWS, f"{len(expected):,} of {ROWS:,} rows")
    assert _column(browser, "reference") == expected

    browser.find_element(By.ID, "filter").clear()
    browser.find_element(By.ID, "filter").send_keys("no such row at all")
    WebDriverWait(browser, 10).until(lambda d: _count(d)[0] == 0)
    assert browser.find_element(By.ID, "page-info").text == "no rows match"

    browser.find_element(By.ID, "filter").clear()
    browser.find_element(By.ID, "filter").send_keys(" ")  # clearing fires no input event
    WebDriverWait(browser, 10).until(lambda d: _count(d)[0] == ROWS)
    Select(browser.find_element(By.ID, "only")).select_by_value("errors")
    errors = [row["reference"] for row in rows if row["error"]]
    assert _count(browser)[0] == len(errors)
    assert _column(browser, "reference") == errors
    assert all(text.startswith("NotFound: ") for text in _column(browser, "error"))


def _bars(browser, selector: str) -> list[dict[str, Any]]:
    return browser.execute_script(
        """
        return [...document.querySelectorAll(arguments[0])].map(g => {
            const rect = g.querySelector('rect');
            const bbox = rect.getBBox();
            return {label: g.dataset.label, value: Number(g.dataset.value),
                    box: rect.getBoundingClientRect().toJSON(),
                    bbox: {height: bbox.height, width: bbox.width}};
        });
        """,
        selector,
    )


def _bucket(age: int | None) -> str:
    if age is None:
        return "unknown"
    return next(
        label for label, low, high in AGE_BUCKETS if low <= age and (high is None or age < high)
    )


def test_the_charts_are_drawn_from_the_rows(browser, report, rows):
    _open(browser, report)
    ages = Counter(_bucket(row["age_days"]) for row in rows)
    bars = _bars(browser, "#chart-age g.bar")
    assert [bar["label"] for bar in bars] == [label for label, _, _ in AGE_BUCKETS] + ["unknown"]
    assert {bar["label"]: bar["value"] for bar in bars} == {label: ages[label] for label in ages}
    tallest = max(bars, key=lambda bar: bar["value"])
    for bar in bars:
        assert bar["box"]["height"] > 0  # drawn, on screen
        ratio = bar["bbox"]["height"] / tallest["bbox"]["height"]
        assert ratio == pytest.approx(bar["value"] / tallest["value"], abs=0.01)

    sizes: Counter[str] = Counter()
    for repository, digest in {(r["repository"], r["digest"]) for r in rows if r["size"]}:
        sizes[repository] += next(r["size"] for r in rows if r["digest"] == digest)
    bars = _bars(browser, "#chart-size g.bar")
    top = sizes.most_common(TOP_REPOSITORIES)
    assert len(sizes) > TOP_REPOSITORIES
    assert [(bar["label"], bar["value"]) for bar in bars[:-1]] == top
    assert bars[-1]["value"] == sum(sizes.values()) - sum(size for _, size in top)
    assert all(bar["box"]["width"] > 0 for bar in bars)

    cells = browser.execute_script(
        """
        const row = document.querySelector('#chart-coverage g.coverage-row');
        return [row.dataset.label, [...row.querySelectorAll('g.cell')].map(
            c => [c.dataset.platform, Number(c.dataset.count)])];
        """
    )
    offered = Counter(p for row in rows for p in row["platforms"])
    assert cells[0] == "all repositories"
    assert dict(cells[1]) == dict(offered)
    repositories = len({row["repository"] for row in rows})
    drawn = browser.find_elements(By.CSS_SELECTOR, "#chart-coverage g.cell rect")
    shown = min(repositories, COVERAGE_REPOSITORIES) + (repositories > COVERAGE_REPOSITORIES)
    assert len(drawn) == len(offered) * (1 + shown)

    read = [row for row in rows if not row["error"]]
    shares = browser.execute_script(
        "return [...document.querySelectorAll('#chart-shares g.share')].map(g => "
        "[Number(g.dataset.count), Number(g.dataset.total),"
        " g.querySelector('rect.yes').getBBox().width, g.querySelector('rect.no').getBBox().width])"
    )
    for (count, total, yes, whole), key in zip(
        shares, ("signed", "sbom", "attestation"), strict=True
    ):
        assert (count, total) == (sum(1 for row in read if row[key]), len(read))
        assert yes / whole == pytest.approx(count / total, abs=0.001)


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self):
        self.requests.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_nothing_is_fetched_and_the_csp_refuses_what_a_page_might_try(browser, report):
    _open(browser, report)
    entries = browser.execute_script(
        "return [performance.getEntriesByType('resource').map(e => e.name),"
        " performance.getEntriesByType('navigation').map(e => e.name)]"
    )
    assert entries == [[], [report.as_uri()]]  # the page, and no other resource

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        # What an injection would try: an image, a fetch, a stylesheet, an inline script.
        violations = browser.execute_async_script(
            """
            const [url, done] = arguments;
            const seen = [];
            document.addEventListener('securitypolicyviolation', e => {
                seen.push(e.effectiveDirective);
                if (seen.length === 4) { done(seen.sort()); }
            });
            const img = document.createElement('img'); img.src = url + '/img';
            document.body.append(img);
            fetch(url + '/fetch').catch(() => {});
            const link = document.createElement('link');
            link.rel = 'stylesheet'; link.href = url + '/css'; document.head.append(link);
            const script = document.createElement('script');
            script.textContent = 'window.ran = true'; document.body.append(script);
            """,
            url,
        )
        ran = browser.execute_script("return window.ran === true")
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert violations == ["connect-src", "img-src", "script-src-elem", "style-src-elem"]
    assert not ran
    assert _Recorder.requests == []


def test_a_hostile_row_cannot_inject_markup_or_script(browser, tmp_path):
    rows = synthetic_rows(3)
    rows[0]["reference"] = rows[0]["tag"] = HOSTILE
    rows[0]["error"] = HOSTILE
    rows[1]["referrers"] = [{"kind": "other", "annotations": {"note": HOSTILE}}]
    rows[1]["repository"] = HOSTILE
    rows[1]["platforms"] = [HOSTILE]
    summary = summarise(rows)
    summary["oldest"] = {"reference": HOSTILE, "created": HOSTILE, "age_days": 1}
    path = tmp_path / "hostile.html"
    path.write_text(render_report(summary, rows), encoding="utf-8")
    _open(browser, path)
    assert _problems(browser) == []  # nothing even tried to run (no CSP violation either)
    state = browser.execute_script(
        "return [window.pwned, document.querySelectorAll('img, svg [onload], [onerror]').length,"
        " document.scripts.length]"
    )
    assert state == [None, 0, 2]
    assert _column(browser, "reference")[0] == HOSTILE  # shown as text, whole
    assert _column(browser, "error")[0] == HOSTILE
    assert HOSTILE in browser.find_element(By.ID, "summary").text


@pytest.mark.parametrize("how", ["-o", "stdout"])
def test_an_audit_of_a_real_registry_as_html_shows_every_tag(
    browser, registry_audit, tmp_path, how
):
    registry, content = registry_audit
    path = tmp_path / "audit.html"
    command = [sys.executable, "-m", "aioregistry", "audit", f"{registry.host}/{REPOSITORY}"]
    if how == "-o":  # the format from the file's suffix
        result = subprocess.run(
            [*command, "-o", str(path)], capture_output=True, timeout=60, check=False
        )
    else:  # into a pipe
        result = subprocess.run(
            [*command, "--format", "html"], capture_output=True, timeout=60, check=False
        )
        path.write_bytes(result.stdout)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    _open(browser, path)
    assert _problems(browser) == []
    tags = sorted(content.tags)
    assert _count(browser)[:2] == (len(tags), len(tags))
    shown = _column(browser, "reference")
    assert sorted(shown) == sorted(f"{registry.host}/{REPOSITORY}:{tag}" for tag in tags)
    signed = dict(zip(shown, _column(browser, "signed"), strict=True))
    for tag in tags:  # what the audit found is what the page says
        kinds = {kind for _, kind in content.referrers.get(content.tags[tag].digest, [])}
        expected = "yes" if "signature" in kinds else "no"
        assert signed[f"{registry.host}/{REPOSITORY}:{tag}"] == expected, tag
    bars = _bars(browser, "#chart-age g.bar")
    assert sum(bar["value"] for bar in bars) == len(tags)
