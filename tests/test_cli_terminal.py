"""The CLI as people use it: interrupted scans, tables on a terminal, arguments in any order.

Interrupted scans run against an in-process registry (`support.fakes.FakeServer`) that answers
some tags at once and holds the others until the client hangs up, so a scan is under way, with
a known set of results printed, for as long as the test wants; the signal is sent once the
output shows those results. Terminal behaviour runs on a pseudo-terminal (`os.openpty`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import anyio
import orjson
import pytest
from aiohttp import web
from support.content import sha
from support.fakes import DOCKER_V2, FakeServer, Handler, docker_manifest
from support.terminal import ANSI, Terminal, interrupt

from aioregistry import RegistryClient

pytestmark = pytest.mark.anyio

FAST = [f"fast{i}" for i in range(5)]
HELD = [f"held{i:02d}" for i in range(15)]
MANIFEST = docker_manifest(b"{}")
SHOW_CURSOR, HIDE_CURSOR = b"\x1b[?25h", b"\x1b[?25l"
SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]


@pytest.fixture
async def held() -> AsyncIterator[FakeServer]:
    """``test/held``: 20 tags; the five ``fast*`` are answered at once, the others never (their
    handlers end when the client hangs up)."""
    async with FakeServer() as fake:

        async def tag_list(_: web.Request) -> web.Response:
            return web.json_response({"name": "test/held", "tags": FAST + HELD})

        async def fast(_: web.Request) -> web.Response:
            return web.Response(body=MANIFEST, content_type=DOCKER_V2)

        async def hold(_: web.Request) -> web.Response:
            await anyio.sleep_forever()
            raise AssertionError  # pragma: no cover

        fake.route("GET", "/v2/test/held/tags/list")(tag_list)
        for tag in FAST:
            fake.route("GET", f"/v2/test/held/manifests/{tag}")(fast)
        for tag in HELD:
            fake.route("GET", f"/v2/test/held/manifests/{tag}")(hold)
        yield fake


def _scan_command(fake: FakeServer, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "aioregistry",
        "scan",
        f"{fake.host}/test/held",
        "--plain-http",
        "--what",
        "manifest",
        *args,
    ]


def _check_fast(records: list[dict[str, object]]) -> None:
    assert sorted(str(r["tag"]) for r in records) == FAST
    for record in records:
        assert record["error"] is None
        assert record["digest"] == sha(MANIFEST)


def _json_records(text: bytes) -> list[dict[str, object]] | None:
    """The records of a JSON array streamed so far (whole records only), None if cut."""
    try:
        records = orjson.loads(text + b"]" if text.strip() else b"[]")
    except orjson.JSONDecodeError:
        return None
    assert isinstance(records, list)
    return records


def _jsonl_records(text: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.split(b"\n")[:-1]]


def _check_summary(err: bytes, signum: signal.Signals) -> None:
    text = err.decode()
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith(f"aioregistry: interrupted ({signum.name}): 5 results, 0 errors")


@pytest.mark.parametrize(("signum", "status"), SIGNALS, ids=["SIGINT", "SIGTERM"])
async def test_an_interrupted_json_scan_is_still_one_array(held, signum, status):
    command = _scan_command(held, "--format", "json")
    out, err, before, code = await interrupt(command, signum, _json_records, len(FAST))
    assert code == status
    records = orjson.loads(out)  # whole: the array is closed
    assert records == before  # exactly the results printed before the signal
    _check_fast(records)
    _check_summary(err, signum)


@pytest.mark.parametrize(("signum", "status"), SIGNALS, ids=["SIGINT", "SIGTERM"])
async def test_an_interrupted_jsonl_scan_ends_with_whole_lines(held, signum, status):
    command = _scan_command(held, "--format", "jsonl")
    out, err, before, code = await interrupt(command, signum, _jsonl_records, len(FAST))
    assert code == status
    assert out.endswith(b"\n")
    records = _jsonl_records(out)
    assert records == before
    _check_fast(records)
    _check_summary(err, signum)


# -- on a terminal ---------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "status"), SIGNALS, ids=["SIGINT", "SIGTERM"])
async def test_an_interrupted_scan_on_a_terminal_prints_its_table_and_shows_the_cursor(
    held, signum, status
):
    terminal = Terminal(_scan_command(held), columns=120)
    try:
        # The progress bar: five results taken (the total shows once the listing is over).
        await terminal.read_until(rb"[ m]5/(20|\?)")
        assert HIDE_CURSOR in terminal.output
        terminal.process.send_signal(signum)
        assert await terminal.finish() == status
    finally:
        terminal.close()
    out = terminal.output
    # The cursor is shown again after the progress bar last hid it.
    assert out.rindex(SHOW_CURSOR) > out.rindex(HIDE_CURSOR)
    text = terminal.text
    assert "Traceback" not in text
    summary = f"aioregistry: interrupted ({signum.name}): 5 results, 0 errors"
    assert summary in text
    table = text[: text.index(summary)]  # the table comes before the summary
    for tag in FAST:
        assert f"test/held:{tag} " in table
    assert "held0" not in table


# -- tables at 80 columns ----------------------------------------------------------------

CONFIG = orjson.dumps({"architecture": "amd64", "os": "linux", "created": "2026-12-01T06:30:00Z"})
IMAGE = docker_manifest(CONFIG)
SHORT_REPO, SHORT_TAGS = "org/team/app", ["1", "latest"]
LONG_REPO = "org/team/application-with-a-rather-long-name"
LONG_TAGS = ["1", "latest", "release-2026.12.01-build.4711-linux"]
MISSING = "missing-tag"  # in LONG_REPO: its manifest answers 404 with a long message
MISSING_MESSAGE = (
    "manifest unknown to this registry: the tag was deleted by the retention policy of the "
    "team on the first of December"
)


@pytest.fixture
async def images() -> AsyncIterator[FakeServer]:
    """`SHORT_REPO` and `LONG_REPO`: their tags are one linux/amd64 image with a config;
    `LONG_REPO` also lists `MISSING`."""
    async with FakeServer() as fake:

        async def image(_: web.Request) -> web.Response:
            return web.Response(body=IMAGE, content_type=DOCKER_V2)

        async def config(_: web.Request) -> web.Response:
            return web.Response(body=CONFIG, content_type="application/octet-stream")

        async def missing(_: web.Request) -> web.Response:
            errors = [{"code": "MANIFEST_UNKNOWN", "message": MISSING_MESSAGE}]
            return web.json_response({"errors": errors}, status=404)

        for repo, tags in ((SHORT_REPO, SHORT_TAGS), (LONG_REPO, [*LONG_TAGS, MISSING])):
            fake.route("GET", f"/v2/{repo}/tags/list")(_listing(repo, tags))
            for tag in tags:
                fake.route("GET", f"/v2/{repo}/manifests/{tag}")(image)
            fake.route("GET", f"/v2/{repo}/blobs/{sha(CONFIG)}")(config)
        fake.route("GET", f"/v2/{LONG_REPO}/manifests/{MISSING}")(missing)
        yield fake


def _listing(repo: str, tags: list[str]) -> Handler:
    async def tag_list(_: web.Request) -> web.Response:
        return web.json_response({"name": repo, "tags": tags})

    return tag_list


async def _table(fake: FakeServer, *targets: str, columns: int = 80) -> tuple[int, list[str]]:
    """The lines of the table a scan of ``targets`` prints on a terminal ``columns`` wide
    (from its header to the summary), and the exit status."""
    command = [sys.executable, "-m", "aioregistry", "scan", "--plain-http"]
    command += [f"{fake.host}/{target}" for target in targets]
    terminal = Terminal(command, columns=columns)
    try:
        status = await terminal.finish()
    finally:
        terminal.close()
    text = ANSI.sub("", terminal.text)
    assert "Traceback" not in text
    # What the progress bar left on the screen (up to a carriage return) is not the table.
    lines = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    start = next(i for i, line in enumerate(lines) if line.startswith("REFERENCE"))
    end = next(i for i, line in enumerate(lines) if line.startswith("aioregistry: "))
    assert all(len(line) <= columns for line in lines[start:end]), lines
    return status, lines[start:end]


def _column(lines: list[str], name: str, following: str) -> tuple[int, str]:
    """The width of column ``name`` (up to where ``following`` starts) and the text of its
    cells, line after line, joined without the spaces."""
    start = lines[0].index(name)
    end = lines[0].index(following) if following else max(map(len, lines))
    text = "".join(line[start:end] for line in lines[1:])
    return end - start, "".join(text.split())


async def test_at_80_columns_the_other_columns_give_way_to_the_reference(images):
    status, lines = await _table(images, SHORT_REPO)
    assert status == 0
    assert lines[0].split() == ["REFERENCE", "PLATFORM", "DIGEST", "MANIFEST", "CONFIG", "CREATED"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert sorted(rows) == [f"{SHORT_REPO}:{tag}" for tag in SHORT_TAGS]  # whole, one line each
    for platform, digest, manifest, config, created in rows.values():
        assert platform == "linux/amd64"
        # Shortened, and marked so: what is shown is a prefix of the digest.
        assert digest.endswith("…")
        assert sha(IMAGE).removeprefix("sha256:").startswith(digest.removesuffix("…"))
        assert manifest == digest
        assert sha(CONFIG).removeprefix("sha256:").startswith(config.removesuffix("…"))
        assert created.startswith("2026-12-01")


async def test_at_80_columns_long_references_fold_and_so_do_long_errors(images):
    status, lines = await _table(images, LONG_REPO)
    assert status == 1  # one tag failed
    *lines, caption = lines  # under the table: what was left out
    assert lines[0].split() == ["REFERENCE", "PLATFORM", "DIGEST", "ERROR"]
    # Folded, never cut: every reference is there whole, over one line or more.
    _, references = _column(lines, "REFERENCE", "PLATFORM")
    expected = [f"{LONG_REPO}:{tag}" for tag in sorted([*LONG_TAGS, MISSING])]
    assert references == "".join(expected)
    width, errors = _column(lines, "ERROR", "")
    assert width >= 24  # wide enough to read
    assert "NotFound:" in errors
    assert errors.endswith("".join(MISSING_MESSAGE.split()))
    error_lines = [line for line in lines if line[lines[0].index("ERROR") :].strip()]
    assert len(error_lines) > 3  # folded
    assert caption.strip() == (
        "CONFIG, MANIFEST, CREATED left out at this width (--format json has them)"
    )


# -- arguments and targets -----------------------------------------------------------------


def _scan(*args: str) -> tuple[list[dict[str, object]], str]:
    """A scan's JSON lines (in a pipe) and its one-line summary; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "aioregistry", "scan", "--format", "jsonl", *args],
        capture_output=True,
        timeout=60,
        check=False,
    )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert err.count("\n") == 1, err
    return _jsonl_records(result.stdout), err.strip()


def _results(records: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return sorted((r["reference"], r["platform"], r["digest"]) for r in records)


def test_options_go_anywhere_between_targets(registry_http):
    host = registry_http.host
    multi, single = f"{host}/test/multi:oci", f"{host}/test/single:v1"
    records, _ = _scan(multi, "--what", "manifest", single, "--platform", "ALL", f"{host}/test/oci")
    expected, _ = _scan(
        "--what", "manifest", "--platform", "all", multi, single, f"{host}/test/oci"
    )
    assert _results(records) == _results(expected)
    platforms = sorted(str(r["platform"]) for r in records if r["reference"] == multi)
    assert platforms == ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"]
    assert {r["reference"] for r in records} == {multi, single, f"{host}/test/oci:v1"}
    assert all(r["error"] is None for r in records)


def test_unknown_options_are_still_refused():
    result = subprocess.run(
        [sys.executable, "-m", "aioregistry", "scan", "127.0.0.1:1/a", "--bogus", "127.0.0.1:1/b"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert b"unrecognized arguments: --bogus 127.0.0.1:1/b" in result.stderr


def test_a_target_given_twice_is_scanned_once(registry_http):
    host, content = registry_http.host, registry_http.content
    single = f"{host}/test/single"
    records, summary = _scan(f"{single}:latest", "--what", "digest", single, f"{single}:v1", single)
    assert sorted(str(r["tag"]) for r in records) == ["latest", "v1"]
    assert summary.startswith("aioregistry: 2 results, 0 errors, ")

    digest = content.get("test/single:v1").digest
    records, summary = _scan(f"{single}@{digest}", f"{single}@{digest}", "--what", "digest")
    assert [r["digest"] for r in records] == [digest]
    assert summary.startswith("aioregistry: 1 result, 0 errors, ")


async def test_the_library_scans_a_duplicate_target_once(registry_http):
    host, content = registry_http.host, registry_http.content
    single = f"{host}/test/single"
    digest = content.get("test/single:v1").digest
    targets = [f"{single}:latest", single, f"{single}@{digest}", f"{single}@{digest}", single]
    async with RegistryClient(use_env_credentials=False) as client:
        async with client.scan(*targets, what="digest") as scan:
            references = sorted([r.reference async for r in scan])
        assert references == sorted([f"{single}:latest", f"{single}:v1", f"{single}@{digest}"])
        assert scan.total == 3
        # A repository given and listed by the catalog is listed once.
        async with client.scan(single, catalog=host, what="digest") as scan:
            listed = [r.reference async for r in scan if r.repository == single]
        assert sorted(listed) == [f"{single}:latest", f"{single}:v1"]


@pytest.mark.parametrize(
    ("command", "option", "words"),
    [
        ("digest", "-i IMAGE, --image IMAGE", "[REGISTRY/]NAME[:TAG][@DIGEST]"),
        ("config", "-i IMAGE, --image IMAGE", "[REGISTRY/]NAME[:TAG][@DIGEST]"),
        ("tags", "-r REPO, --repository REPO", "[REGISTRY/]NAME"),
        ("token", "-r REPO, --repository REPO", "[REGISTRY/]NAME"),
    ],
)
def test_image_and_repository_options_are_explained(command, option, words):
    result = subprocess.run(
        [sys.executable, "-m", "aioregistry", command, "--help"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    text = " ".join(result.stdout.decode().split())
    assert f"{option} the {'image' if '-i' in option else 'repository'}: {words}" in text
