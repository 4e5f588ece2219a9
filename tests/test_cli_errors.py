"""Exit statuses and errors of the CLI as people meet them: a registry that is not there or
never answers, ``--debug``, a reader that goes away (``| head``), and near-miss input.

The CLI runs in a subprocess (``python -m aioregistry``); the registries are the real one of
the fixtures, a closed port, and in-process TCP servers that accept connections and never
answer (plain and TLS). Where a mistake could make the CLI ask Docker Hub, it runs with name
resolution switched off (`offline`), so nothing leaves the machine even when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from support.certs import CertBundle
from support.registry import RegistryProcess, free_port

from aioregistry import RegistryClient, RequestTimeout, Retries, Timeouts
from aioregistry._config import DEFAULT_RETRIES, DEFAULT_TIMEOUTS
from aioregistry._exceptions import InvalidReference
from aioregistry._references import parse_reference, parse_registry, parse_repository

EXIT_PIPE = 141
TRY = 0.3  # --timeout of the never-answering tests: 4 tries and their backoff stay under 3 s

# Runs the CLI with every name lookup failing, as on a machine with no network.
OFFLINE = """
import socket, sys
def offline(*args, **kwargs):
    raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
socket.getaddrinfo = offline
sys.argv[0] = "aioregistry"
from aioregistry._cli import console
raise SystemExit(console())
"""


def run(
    *args: str, offline: bool = False, stdout: int = subprocess.PIPE
) -> subprocess.CompletedProcess[bytes]:
    command = ["-c", OFFLINE] if offline else ["-m", "aioregistry"]
    return subprocess.run(
        [sys.executable, *command, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=60,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[bytes], status: int) -> str:
    err = result.stderr.decode()
    assert result.returncode == status, (result.returncode, err)
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("aioregistry: error: "), err
    return last


# -- a registry that cannot be reached: exit 2, whatever names it ---------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("scan", "{host}/test/single:latest"),
        ("scan", "{host}/test/single"),
        ("scan", "{host}/test/single@sha256:" + "0" * 64),
        ("scan", "--catalog", "{host}"),
        ("tags", "-r", "{host}/test/single"),
        ("digest", "-i", "{host}/test/single:latest"),
    ],
)
def test_a_registry_nobody_listens_on_is_exit_2_for_every_kind_of_target(args):
    host = f"127.0.0.1:{free_port()}"
    line = one_error_line(run(*(a.format(host=host) for a in args)), 2)
    assert "cannot connect to" in line
    if args[0] == "scan":
        assert f"error: {host} could not be reached: cannot connect to" in line


def test_scanning_docker_hub_offline_is_exit_2():
    line = one_error_line(run("scan", "ubuntu:24.04", "--what", "digest", offline=True), 2)
    assert "registry-1.docker.io could not be reached: cannot connect to" in line
    line = one_error_line(run("scan", "ubuntu", offline=True), 2)
    assert "registry-1.docker.io could not be reached" in line


def test_a_tag_that_fails_while_its_registry_answers_is_exit_1(registry_http):
    result = run("scan", f"{registry_http.host}/test/single:nope", f"{registry_http.host}/test/x")
    assert result.returncode == 1, result.stderr.decode()
    assert b"could not be reached" not in result.stderr


# -- --debug: the traceback, then the same line and the same status ------------------------


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("digest", "-i", "127.0.0.1:{port}/x"), 2),  # no answer
        (("digest", "-i", "Upper/Case"), 2),  # bad input
        (("manifest", "-i", "{registry}/test/single:nope"), 1),  # the registry refused
        (("scan", "127.0.0.1:{port}/x:1"), 2),
    ],
)
def test_debug_prints_the_traceback_then_the_same_error_and_status(registry_http, args, status):
    argv = [a.format(port=free_port(), registry=registry_http.host) for a in args]
    plain = one_error_line(run(*argv), status)
    debug = run(*argv, "--debug")
    assert debug.returncode == status
    err = debug.stderr.decode()
    assert "Traceback (most recent call last):" in err
    assert err.splitlines()[-1] == plain
    assert err.index("Traceback") < err.index(plain)


# -- a closed pipe: 141 for every subcommand, at once and quietly ---------------------------


@contextlib.contextmanager
def closed_pipe() -> Iterator[int]:
    """The write end of a pipe whose reader is already gone: every write fails (EPIPE)."""
    read, write = os.pipe()
    os.close(read)
    try:
        yield write
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "args",
    [
        ("tags", "-r", "{host}/test/single"),
        ("catalog", "-r", "{host}"),
        ("digest", "-i", "{host}/test/single"),
        ("manifest", "-i", "{host}/test/single"),
        ("manifest-list", "-i", "{host}/test/multi:oci"),
        ("config", "-i", "{host}/test/single"),
        ("ratelimit", "-i", "{host}/test/single"),
        ("auth", "check", "{host}"),
        ("scan", "{host}/test/single"),
        ("scan", "{host}/test/single", "--format", "json"),
    ],
)
def test_every_subcommand_ends_quietly_with_141_when_stdout_is_closed(registry_http, args):
    with closed_pipe() as stdout:
        result = run(*(a.format(host=registry_http.host) for a in args), stdout=stdout)
    assert (result.returncode, result.stderr) == (EXIT_PIPE, b"")


def test_a_scan_into_head_ends_quietly_with_141(registry_http):
    many = f"{registry_http.host}/{registry_http.content.many_repository}"
    # 300 results are far more than a pipe holds: the scan is still writing when head leaves.
    with subprocess.Popen(
        [sys.executable, "-m", "aioregistry", "scan", many],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        proc.stdout.close()
        _, err = proc.communicate(timeout=60)
    assert all(line.startswith(b'{"reference":') for line in lines)
    assert (proc.returncode, err) == (EXIT_PIPE, b"")


def test_a_scan_stops_at_once_when_stdout_is_closed(registry_http: RegistryProcess):
    content = registry_http.content
    many = f"{registry_http.host}/{content.many_repository}"
    mark = registry_http.log_mark()
    with closed_pipe() as stdout:
        result = run("scan", many, "--what", "digest", stdout=stdout)
    assert (result.returncode, result.stderr) == (EXIT_PIPE, b"")
    heads = [e for e in registry_http.access_log(mark) if e["method"] == "HEAD"]
    # The first result's write failed: the requests in flight then were cancelled, and
    # most of the 300 tags were never asked for.
    assert 0 < len(heads) < len(content.many_tags) / 2


# -- a registry that accepts connections and never answers ----------------------------------


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 (with ``tls``, completes the TLS handshake) and
    never sends a byte; counts the connections and handshakes."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # how often the thread looks whether the test is over
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._tls = tls
        self.connections = 0
        self.handshakes = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            if self._tls is not None:
                conn.settimeout(10)
                try:
                    conn = self._tls.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    conn.close()
                    continue
                self.handshakes += 1
            self._held.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()
        for conn in self._held:
            conn.close()


def _tls_server_context(certs: CertBundle) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs.server_cert_file, certs.server_key_file)
    return ctx


def test_a_tcp_server_that_never_answers_tls_fails_after_4_tries():
    # Nothing after the TCP handshake, the TLS handshake never ends: connect timeouts.
    with SilentServer() as server:
        result = run("tags", "--timeout", str(TRY), "-r", f"127.0.0.1:{server.port}/x")
    line = one_error_line(result, 2)
    assert line.endswith(f"GET https://127.0.0.1:{server.port}/v2/ timed out after 0.3 s (4 tries)")
    assert server.connections == 4  # one connection a try, and no fallback to plain HTTP


def test_a_tls_registry_that_never_answers_fails_after_4_tries(registry_certs):
    with SilentServer(_tls_server_context(registry_certs)) as server:
        result = run(
            "digest",
            "-i",
            f"127.0.0.1:{server.port}/x:1",
            "--ca-file",
            str(registry_certs.ca_file),
            "--timeout",
            str(TRY),
        )
    line = one_error_line(result, 2)
    assert line.endswith(f"GET https://127.0.0.1:{server.port}/v2/ timed out after 0.3 s (4 tries)")
    assert (server.connections, server.handshakes) == (4, 4)


def test_a_plain_http_registry_that_never_answers_fails_a_scan_after_4_tries():
    with SilentServer() as server:
        host = f"127.0.0.1:{server.port}"
        result = run("scan", f"{host}/x:1", "--plain-http", "--timeout", str(TRY))
    line = one_error_line(result, 2)
    assert line == (
        f"aioregistry: error: {host} could not be reached: "
        f"GET http://{host}/v2/ timed out after 0.3 s (4 tries)"
    )
    assert server.connections == 4
    assert b'"type":"RequestTimeout"' in result.stdout


@pytest.mark.anyio
async def test_the_library_error_says_how_long_and_how_often():
    with SilentServer() as server:
        timeouts = Timeouts(connect=0.2, read=0.2)
        async with RegistryClient(timeouts=timeouts, plain_http=True) as client:
            with pytest.raises(RequestTimeout) as info:
                await client.list_tags(f"127.0.0.1:{server.port}/x")
        assert (info.value.timeout, info.value.tries) == (0.2, 4)
        assert str(info.value).endswith("timed out after 0.2 s (4 tries)")
        assert server.connections == 4

        once = Retries(attempts=1)
        async with RegistryClient(timeouts=timeouts, retries=once, plain_http=True) as client:
            with pytest.raises(RequestTimeout, match=r"after 0\.2 s \(1 try\)$") as info:
                await client.list_tags(f"127.0.0.1:{server.port}/x")
        assert info.value.tries == 1
        assert server.connections == 5


def test_the_default_deadlines_fail_a_silent_registry_within_30_seconds():
    # Every try waits its deadline; the backoff before try n+1 is at most backoff * 2**(n-1).
    tries = DEFAULT_RETRIES.attempts
    backoff = sum(
        min(DEFAULT_RETRIES.max_wait, DEFAULT_RETRIES.backoff * 2 ** (n - 1))
        for n in range(1, tries)
    )
    longest = max(DEFAULT_TIMEOUTS.connect, DEFAULT_TIMEOUTS.read)
    assert tries * longest + backoff <= 30
    # ... and --help says what they are.
    help_text = " ".join(run("tags", "--help").stdout.decode().split())
    assert f"(default {longest:g}); a request is tried up to {tries} times" in help_text


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_a_bad_timeout_is_a_usage_error(value):
    result = run("tags", "-r", "127.0.0.1:1/x", "--timeout", value)
    assert result.returncode == 2
    assert f"invalid timeout '{value}'".encode() in result.stderr


# -- near misses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("digest", "-i", "http://127.0.0.1:5000/x:1"), 'drop the "http://"'),
        (("tags", "-r", "https://registry.example.com/team/app"), 'drop the "https://"'),
        (("scan", "docker://ubuntu"), 'drop the "docker://"'),
        (("catalog", "-r", "http://127.0.0.1:5000"), 'drop the "http://"'),
        (("tags", "-r", "127.0.0.1:5000"), "`aioregistry catalog -r 127.0.0.1:5000`"),
        (("token", "-r", "localhost:5000"), "`aioregistry catalog -r localhost:5000`"),
        (("scan", "127.0.0.1:5000"), "`aioregistry scan --catalog 127.0.0.1:5000`"),
        (("scan", "registry.example.com:443"), "--catalog registry.example.com:443"),
        (("digest", "-i", "localhost:5000"), "name an image in it as localhost:5000/REPO:TAG"),
    ],
)
def test_near_misses_get_a_hint_and_no_request(args, hint):
    # Offline: were the hint missing, `scan 127.0.0.1:5000` would ask Docker Hub.
    line = one_error_line(run(*args, offline=True), 2)
    assert hint in line
    assert "cannot connect" not in line


def test_a_name_with_a_numeric_tag_is_still_an_image():
    # ubuntu:2404 is library/ubuntu's tag 2404, not a registry: no hint, Docker Hub is asked.
    line = one_error_line(run("scan", "ubuntu:2404", offline=True), 2)
    assert "registry-1.docker.io could not be reached" in line


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (
            parse_reference,
            "http://127.0.0.1:5000/x:1",
            'invalid reference "http://127.0.0.1:5000/x:1": drop the "http://" '
            "(a reference has no scheme; --plain-http talks plain HTTP)",
        ),
        (
            parse_repository,
            "HTTPS://ghcr.io/x",
            'invalid reference "HTTPS://ghcr.io/x": drop the "HTTPS://" '
            "(a reference has no scheme; HTTPS is the default)",
        ),
        (
            parse_registry,
            "oci://localhost:5000",
            'invalid registry "oci://localhost:5000": drop the "oci://" (a registry has no scheme)',
        ),
    ],
)
def test_the_library_names_a_url_given_for_a_reference(parse, text, message):
    with pytest.raises(InvalidReference, match=f"^{re.escape(message)}$"):
        parse(text)
