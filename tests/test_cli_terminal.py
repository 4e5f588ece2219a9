"""The CLI as people use it: interrupted scans, tables on a terminal, arguments in any order.

Interrupted scans run against an in-process registry (`support.fakes.FakeServer`) that answers
some tags at once and holds the others until the client hangs up, so a scan is under way, with
a known set of results printed, for as long as the test wants; the signal is sent once the
output shows those results. Terminal behaviour runs on a pseudo-terminal (`os.openpty`).
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import subprocess
import sys
import termios
from collections.abc import AsyncIterator, Callable

import anyio
import orjson
import pytest
from aiohttp import web
from support.content import sha
from support.fakes import DOCKER_V2, FakeServer, docker_manifest

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


async def _interrupt(
    command: list[str],
    signum: signal.Signals,
    printed: Callable[[bytes], list[dict[str, object]] | None],
) -> tuple[bytes, bytes, list[dict[str, object]], int]:
    """Run ``command``, send ``signum`` once ``printed(stdout so far)`` has the five fast
    results; returns stdout, stderr, the records printed before the signal and the status."""
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        out = b""
        with anyio.fail_after(20):
            while (before := printed(out)) is None or len(before) < len(FAST):
                out += await process.stdout.receive()
        process.send_signal(signum)
        with anyio.fail_after(10):
            async for chunk in process.stdout:
                out += chunk
            err = b"".join([chunk async for chunk in process.stderr])
            await process.wait()
        assert process.returncode is not None
        return out, err, before, process.returncode


def _check_summary(err: bytes, signum: signal.Signals) -> None:
    text = err.decode()
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith(f"aioregistry: interrupted ({signum.name}): 5 results, 0 errors")


@pytest.mark.parametrize(("signum", "status"), SIGNALS, ids=["SIGINT", "SIGTERM"])
async def test_an_interrupted_json_scan_is_still_one_array(held, signum, status):
    command = _scan_command(held, "--format", "json")
    out, err, before, code = await _interrupt(command, signum, _json_records)
    assert code == status
    records = orjson.loads(out)  # whole: the array is closed
    assert records == before  # exactly the results printed before the signal
    _check_fast(records)
    _check_summary(err, signum)


@pytest.mark.parametrize(("signum", "status"), SIGNALS, ids=["SIGINT", "SIGTERM"])
async def test_an_interrupted_jsonl_scan_ends_with_whole_lines(held, signum, status):
    command = _scan_command(held, "--format", "jsonl")
    out, err, before, code = await _interrupt(command, signum, _jsonl_records)
    assert code == status
    assert out.endswith(b"\n")
    records = _jsonl_records(out)
    assert records == before
    _check_fast(records)
    _check_summary(err, signum)


# -- on a terminal ---------------------------------------------------------------------


class Terminal:
    """A process on a pseudo-terminal of ``columns`` columns (stdin, stdout and stderr)."""

    def __init__(self, command: list[str], columns: int) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm-256color"}
        self.process = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
        )
        os.close(slave)
        self.output = b""

    async def read(self) -> bool:
        """Reads what is there; False once the process has closed the terminal."""
        await anyio.wait_readable(self.master)
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: no process has the terminal open any more
            return False
        self.output += chunk
        return bool(chunk)

    async def read_until(self, pattern: bytes) -> None:
        with anyio.fail_after(20):
            while not re.search(pattern, self.output):
                assert await self.read(), self.output.decode(errors="replace")

    async def finish(self) -> int:
        with anyio.fail_after(20):
            while await self.read():
                pass
            return await anyio.to_thread.run_sync(self.process.wait)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)

    @property
    def text(self) -> str:
        return self.output.decode().replace("\r\n", "\n")


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
