"""``aioregistry audit`` end to end: ``python -m aioregistry`` against a real registry.

The registry (``registry_audit``) holds ``support.audit``'s images; every format is read back
with its own parser (CSV with ``csv``, JSON with orjson) and compared with what was pushed;
every filter, the sort orders and the bad values are checked through the command line.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from aiohttp import web
from support.audit import REPOSITORY, answers
from support.content import sha
from support.fakes import DOCKER_V2, FakeServer, docker_manifest
from support.terminal import ANSI, Terminal, interrupt

from aioregistry._audit_output import COLUMNS


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aioregistry", "audit", *args],
        capture_output=True,
        env=dict(os.environ),
        timeout=60,
        check=False,
    )


def ok(*args: str) -> bytes:
    result = run(*args)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    return result.stdout


def jsonl(*args: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in ok(*args).splitlines()]


@pytest.fixture
def repo(registry_audit) -> str:
    registry, _ = registry_audit
    return f"{registry.host}/{REPOSITORY}"


def _check_rows(rows: list[dict[str, Any]], content, before: datetime, platforms: dict[str, str]):
    """Every row is what was pushed, at a time during the run (ages count from its start)."""
    after = datetime.now(timezone.utc)
    assert sorted(row["tag"] for row in rows) == sorted(platforms)
    for row in rows:
        assert list(row) == list(COLUMNS)
        tag = row["tag"]
        assert row["reference"].endswith(f"/{REPOSITORY}:{tag}")
        assert answers(row) in (
            content.expected(tag, platforms[tag], before),
            content.expected(tag, platforms[tag], after),
        ), tag


DEFAULT = {"v1.0": "linux/amd64", "stable": "linux/amd64", "v2.0": "linux/amd64"}
DEFAULT |= {"v3.0": "linux/amd64", "edge": "linux/arm64"}


def test_jsonl_when_piped(registry_audit, repo):
    _, content = registry_audit
    before = datetime.now(timezone.utc)
    _check_rows(jsonl(repo), content, before, DEFAULT)


def test_json_is_the_summary_and_the_rows(registry_audit, repo):
    _, content = registry_audit
    before = datetime.now(timezone.utc)
    document = orjson.loads(ok(repo, "--format", "json"))
    assert list(document) == ["summary", "rows"]
    _check_rows(document["rows"], content, before, DEFAULT)
    summary = document["summary"]
    assert summary["repositories"] == 1
    assert summary["tags"] == 5
    assert summary["images"] == 4  # v1.0 and stable are one
    sizes = {row["digest"]: row["size"] for row in document["rows"]}
    assert summary["total_size"] == sum(sizes.values())
    assert summary["unique_size"] < summary["total_size"]  # the shared layer, once
    assert summary["unsigned"] == 1
    assert summary["without_sbom"] == 4
    assert summary["oldest"]["created"] == "2020-01-01T00:00:00Z"
    assert summary["largest"]["reference"] == f"{repo}:v3.0"


def test_csv_has_a_header_and_lists_joined_with_spaces(registry_audit, repo):
    _, content = registry_audit
    before = datetime.now(timezone.utc)
    table = list(csv.reader(io.StringIO(ok(repo, "--format", "csv", "--platform", "all").decode())))
    assert table[0] == list(COLUMNS)
    rows = [dict(zip(COLUMNS, line, strict=True)) for line in table[1:]]
    by_key = {(row["tag"], row["platform"]): row for row in rows}
    assert by_key[("v2.0", "linux/arm64")]["platforms"] == "linux/amd64 linux/arm64"
    assert by_key[("v1.0", "linux/amd64")]["same_digest"] == "stable"
    assert by_key[("edge", "linux/arm64")]["signed"] == "false"
    assert by_key[("edge", "linux/arm64")]["referrers"] == ""
    # The same answers as the JSON, cell by cell.
    document = orjson.loads(ok(repo, "--format", "json", "--platform", "all"))
    assert len(rows) == len(document["rows"]) == 6
    for data in document["rows"]:
        row = by_key[(data["tag"], data["platform"])]
        assert row["size"] == str(data["size"])
        assert row["age_days"] == str(data["age_days"])
        assert row["created"] == data["created"]
        assert row["referrers"].split() == [r["digest"] for r in data["referrers"]]
        assert row["error"] == ""
        for key in ("signed", "sbom", "attestation"):
            assert row[key] == ("true" if data[key] else "false")
    amd64 = [d for d in document["rows"] if d["platform"] == "linux/amd64" or d["tag"] == "edge"]
    _check_rows(amd64, content, before, DEFAULT)


def test_the_table_and_its_summary(repo, registry_audit):
    registry, _ = registry_audit
    out = ok(repo, "--format", "table").decode()
    lines = out.splitlines()
    assert lines[0] == f"registry {registry.host}"  # named once, cut from the references
    assert lines[1].split()[:3] == ["REFERENCE", "PLATFORM", "CREATED"]
    row = next(line for line in lines if line.startswith(f"{REPOSITORY}:v1.0 "))
    assert row.split()[1:6] == ["linux/amd64", "2020-01-01", row.split()[3], "7.3", "kB"]
    assert "stable" in row.split()
    assert "5 tags in 1 repository: 4 images" in out
    assert "1 unsigned, 4 without an SBOM" in out
    assert f"largest: {repo}:v3.0" in out


@pytest.mark.parametrize(
    ("options", "tags"),
    [
        (["--include", "^v"], {"v1.0", "v2.0", "v3.0"}),
        (["--exclude", r"\.0$"], {"stable", "edge"}),
        (["--include", "^v", "--exclude", "^v3"], {"v1.0", "v2.0"}),
        (["--older-than", "90d"], {"v1.0", "stable", "v2.0"}),
        (["--older-than", "1w"], {"v1.0", "stable", "v2.0", "v3.0"}),
        (["--newer-than", "12h"], {"edge"}),
        (["--newer-than", "2w"], {"v3.0", "edge"}),
        (["--older-than", "5d", "--newer-than", "2w"], {"v3.0"}),
        (["--missing-platform", "linux/arm64"], {"v1.0", "stable", "v3.0"}),
        (["--missing-platform", "linux/amd64"], {"edge"}),
        (["--missing-platform", "linux/arm64/v8"], {"v1.0", "stable", "v3.0"}),  # arm64 is v8
        (["--unsigned"], {"edge"}),
        (["--unsigned", "--missing-platform", "linux/arm64"], set()),
    ],
)
def test_filters(repo, options, tags):
    rows = jsonl(repo, *options)
    assert {row["tag"] for row in rows} == tags
    assert len(rows) == len(tags)


README_RECIPES = {  # the README's recipes, and the tags each finds in support.audit's content
    "--older-than 90d": {"v1.0", "stable", "v2.0"},  # stale tags
    "--unsigned": {"edge"},  # tags nothing signs
    "--missing-platform linux/arm64": {"v1.0", "stable", "v3.0"},  # images lacking arm64
}


@pytest.mark.parametrize(("options", "tags"), README_RECIPES.items(), ids=README_RECIPES)
def test_the_readme_recipes(repo, options, tags):
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"$ aioregistry audit ghcr.io/org/app {options} " in readme
    assert {row["tag"] for row in jsonl(repo, *options.split())} == tags


def test_the_summary_counts_the_rows_kept(repo):
    summary = orjson.loads(ok(repo, "--format", "json", "--older-than", "90d"))["summary"]
    assert (summary["tags"], summary["images"], summary["unsigned"]) == (3, 2, 0)


def test_sort_and_reverse(repo):
    def order(*options: str) -> list[str]:
        return [row["tag"] for row in jsonl(repo, *options)]

    by_created = order("--sort", "created")
    assert set(by_created[:2]) == {"v1.0", "stable"}
    assert by_created[2:] == ["v2.0", "v3.0", "edge"]
    assert order("--sort", "created", "--reverse")[:3] == ["edge", "v3.0", "v2.0"]
    sizes = [row["size"] for row in jsonl(repo, "--sort", "size")]
    assert sizes == sorted(sizes)
    assert order("--sort", "size", "--reverse")[0] == "v3.0"
    assert order("--sort", "tag") == ["edge", "stable", "v1.0", "v2.0", "v3.0"]
    assert order("--sort", "tag", "--reverse") == ["v3.0", "v2.0", "v1.0", "stable", "edge"]
    table = ok(repo, "--format", "table", "--sort", "tag").decode().splitlines()
    listed = [line.split()[0] for line in table[2:7]]
    assert listed == [f"{REPOSITORY}:{t}" for t in ("edge", "stable", "v1.0", "v2.0", "v3.0")]


def test_output_to_a_file_by_its_suffix(repo, tmp_path: Path):
    target = tmp_path / "audit.json"
    assert ok(repo, "-o", str(target)) == b""
    document = orjson.loads(target.read_bytes())
    assert document["summary"]["tags"] == 5
    target = tmp_path / "audit.csv"
    ok(repo, "--output", str(target), "--unsigned")
    assert [line[2] for line in csv.reader(io.StringIO(target.read_text()))] == ["tag", "edge"]
    target = tmp_path / "audit.txt"
    ok(repo, "-o", str(target), "--format", "table")
    assert "1 unsigned" in target.read_text()


def test_a_catalog(registry_audit):
    registry, _ = registry_audit
    rows = jsonl("--catalog", registry.host, "--include", "stable")
    assert [row["reference"] for row in rows] == [f"{registry.host}/{REPOSITORY}:stable"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--older-than", "90"], "invalid duration '90': expected a whole number and a unit"),
        (["--newer-than", "3 days"], "invalid duration '3 days'"),
        (["--older-than", "1y"], "invalid duration '1y'"),
        (["--include", "("], "invalid --include regular expression '('"),
        (["--exclude", "[a-"], "invalid --exclude regular expression '[a-'"),
        (["--missing-platform", "arm64"], "invalid --missing-platform 'arm64'"),
        (["--reverse"], "--reverse needs --sort"),
        (["-o", "/nonexistent/dir/audit.json"], "cannot write --output '/nonexistent/dir/"),
    ],
)
def test_bad_values_are_one_line(repo, options, message):
    result = run(repo, *options)
    assert result.returncode == 2
    assert result.stdout == b""
    stderr = result.stderr.decode()
    assert stderr.startswith("aioregistry: error: "), stderr
    assert message in stderr
    assert len(stderr.splitlines()) == 1
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sort", "age"], "invalid choice: 'age'"),
        (["--format", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_bad_choices_are_usage_errors(repo, options, message):
    result = run(repo, *options)
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def _run_without_jinja2(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    # As if the extra "report" were not installed: importing jinja2 fails.
    code = (
        "import sys; sys.modules['jinja2'] = None; "
        "from aioregistry._cli import console; sys.exit(console())"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "audit", *args],
        capture_output=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("options", [("--format", "html", "-o", "a.html"), ("-o", "a.html")])
def test_html_without_jinja2_names_the_extra_before_any_request(tmp_path, options):
    # 127.0.0.1:9 (discard) would be a connection error: the usage error comes first.
    result = _run_without_jinja2("127.0.0.1:9/x", *options, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.decode().strip() == (
        "aioregistry: error: the html report needs Jinja2: pip install 'aioregistry[report]'"
    )
    assert not (tmp_path / "a.html").exists()  # nothing written, not even an empty file


def test_a_registry_given_as_a_target_hints_at_the_catalog(registry_audit):
    registry, _ = registry_audit
    result = run(registry.host)
    assert result.returncode == 2
    assert f"`aioregistry audit --catalog {registry.host}`".encode() in result.stderr


# -- streaming and interruption: an in-process registry holding one repository back ----------

FAST = [f"fast{i}" for i in range(5)]
HELD = [f"held{i}" for i in range(5)]
CONFIG = b'{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z"}'
MANIFEST = docker_manifest(CONFIG)


@pytest.fixture
async def half_held() -> AsyncIterator[tuple[FakeServer, anyio.Event]]:
    """``test/fast``: five tags answered at once; ``test/held``: five whose manifests are
    never answered (the event is set once all five are asked for)."""
    asked = anyio.Event()
    waiting: set[str] = set()
    async with FakeServer() as fake:

        async def tags(request: web.Request) -> web.Response:
            fast = request.path.startswith("/v2/test/fast/")
            return web.json_response({"tags": FAST if fast else HELD})

        async def manifest(_: web.Request) -> web.Response:
            return web.Response(body=MANIFEST, content_type=DOCKER_V2)

        async def config(_: web.Request) -> web.Response:
            return web.Response(body=CONFIG, content_type="application/octet-stream")

        async def hold(request: web.Request) -> web.Response:
            waiting.add(request.path)
            if len(waiting) == len(HELD):
                asked.set()
            await anyio.sleep_forever()
            raise AssertionError  # pragma: no cover

        for name in ("fast", "held"):
            fake.route("GET", f"/v2/test/{name}/tags/list")(tags)
        for tag in FAST:
            fake.route("GET", f"/v2/test/fast/manifests/{tag}")(manifest)
        for tag in HELD:
            fake.route("GET", f"/v2/test/held/manifests/{tag}")(hold)
        fake.route("GET", f"/v2/test/fast/blobs/{sha(CONFIG)}")(config)
        yield fake, asked


def _audit_command(fake: FakeServer, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "aioregistry", "audit", f"{fake.host}/test/fast",
        f"{fake.host}/test/held", "--plain-http", *args,
    ]  # fmt: skip


def _jsonl_records(text: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.split(b"\n")[:-1]]


def _check_fast(rows: list[dict[str, Any]]) -> None:
    assert sorted(str(row["tag"]) for row in rows) == FAST
    for row in rows:
        assert row["error"] is None
        assert row["digest"] == sha(MANIFEST)
        assert row["created"] == "2024-01-01T00:00:00Z"
        assert sorted(row["same_digest"]) == sorted(t for t in FAST if t != row["tag"])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
async def test_a_finished_repository_streams_while_another_is_held(half_held, signum, status):
    fake, _ = half_held
    command = _audit_command(fake, "--format", "jsonl")
    out, err, before, code = await interrupt(command, signum, _jsonl_records, len(FAST))
    assert code == status
    rows = _jsonl_records(out)
    assert out.endswith(b"\n")  # whole lines only
    assert rows == before
    _check_fast(rows)  # with same_digest: the repository was whole when they went out
    assert f"interrupted ({signum.name})" in err.decode()
    assert "Traceback" not in err.decode()


@pytest.mark.anyio
async def test_an_interrupted_json_audit_is_one_whole_object(half_held):
    fake, asked = half_held
    command = _audit_command(fake, "--format", "json")
    out, err, before, code = await interrupt(command, signal.SIGINT, lambda _: [], 0, ready=asked)
    assert code == 130
    assert before == []  # json is written when the audit ends: nothing before
    document = orjson.loads(out)
    assert list(document) == ["summary", "rows"]
    # What was in (the fast repository, whole, or not yet) and its summary, never the held.
    assert {row["tag"] for row in document["rows"]} <= set(FAST)
    assert document["summary"]["tags"] == len(document["rows"])
    assert "Traceback" not in err.decode()


@pytest.mark.anyio
async def test_html_onto_a_terminal_is_refused_before_any_request():
    command = [sys.executable, "-m", "aioregistry", "audit", "127.0.0.1:9/x", "--format", "html"]
    terminal = Terminal(command, columns=120)
    try:
        assert await terminal.finish() == 2
    finally:
        terminal.close()
    assert terminal.text.strip() == (
        "aioregistry: error: --format html writes a whole page: give -o FILE.html, "
        "or redirect stdout"
    )


@pytest.mark.anyio
async def test_on_a_narrow_terminal_the_table_leaves_columns_out(repo):
    command = [sys.executable, "-m", "aioregistry", "audit", repo]  # no --format: a table
    terminal = Terminal(command, columns=80)
    try:
        assert await terminal.finish() == 0
    finally:
        terminal.close()
    lines = [line.rsplit("\r", 1)[-1] for line in ANSI.sub("", terminal.text).split("\n")]
    # The progress bar gave way to the rows: what it drew, erased on a screen, is not them.
    lines = [line for line in lines if not line.startswith("scanning ")]
    assert "Traceback" not in terminal.text
    start = next(i for i, line in enumerate(lines) if line.startswith("REFERENCE"))
    assert lines[start].split() == ["REFERENCE", "AGE", "SIZE", "PLATFORMS", "SIGNED", "SBOM"]
    rows = lines[start + 1 : start + 6]
    assert all(len(line) <= 80 for line in lines[start : start + 6])
    assert sorted(line.split()[0] for line in rows) == sorted(f"{REPOSITORY}:{t}" for t in DEFAULT)
    caption = lines[start + 6]
    assert (
        caption
        == (
            "LAYERS, PLATFORM, ATTEST, SAME DIGEST, CREATED left out at this width "
            "(--format json has them)"
        )[: len(caption)]
    )
    assert "5 tags in 1 repository: 4 images" in terminal.text


def test_html_is_the_report_modules_rendering_of_the_json_shapes(monkeypatch):
    # The report (aioregistry._report, another branch) renders exactly the json format's
    # summary object and row objects: a stand-in module records what it was given.
    import importlib.machinery  # noqa: PLC0415
    import types  # noqa: PLC0415

    from aioregistry import AuditRow, AuditSummary  # noqa: PLC0415
    from aioregistry._audit_output import REPORT_MODULE, audit_formats, audit_writer  # noqa: PLC0415

    given: list[tuple[object, object]] = []

    def render_report(summary: object, rows: object) -> str:
        given.append((summary, rows))
        return "<html>é</html>"

    report = types.ModuleType(REPORT_MODULE)
    report.__spec__ = importlib.machinery.ModuleSpec(REPORT_MODULE, None)
    report.render_report = render_report  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, REPORT_MODULE, report)
    assert "html" in audit_formats()
    rows = [
        AuditRow("r/x:a", "r/x", "a", "sha256:1", "linux/amd64", ("linux/amd64",), size=7),
        AuditRow("r/x:b", "r/x", "b", "sha256:1", "linux/amd64", ("linux/amd64",), size=7),
    ]
    out = io.BytesIO()
    writer = audit_writer("html", out, io.StringIO(), lambda: AuditSummary.of(rows))
    for row in rows:
        writer.add(row)
    writer.close()
    assert out.getvalue() == "<html>é</html>".encode()
    assert given == [(AuditSummary.of(rows).to_json(), [row.to_json() for row in rows])]
