"""Run a real registry (Debian's ``docker-registry``, CNCF distribution 2.8) for tests.

:class:`RegistryProcess` writes a config, starts ``docker-registry serve CONFIG`` on a free
loopback port and waits until ``GET /v2/`` answers. Three modes:

* ``"http"``: anonymous, plain HTTP;
* ``"basic"``: htpasswd (bcrypt) Basic auth over TLS, with the certificates of ``certs.py``;
* ``"token"``: docker token auth over plain HTTP, backed by a :class:`TokenIssuer`.

The registry writes two kinds of log line to one file: logrus lines (stderr) such as
``msg="response completed"`` - only for 2xx/3xx; errors say ``"response completed with
error"`` and auth failures neither - and a combined-format access line (stdout) for every
request. :meth:`RegistryProcess.access_log` parses the latter.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import bcrypt

from .certs import CertBundle, make_certs
from .tokens import DEFAULT_USERS, TokenIssuer

if TYPE_CHECKING:
    from .content import Content

__all__ = [
    "REGISTRY_BINARY",
    "AccessLogEntry",
    "Mode",
    "RegistryProcess",
    "free_port",
    "to_yaml",
]

REGISTRY_BINARY = "/usr/bin/docker-registry"
HTPASSWD_REALM = "aioregistry-test"
STARTUP_TIMEOUT = 20.0
STOP_GRACE = 5.0

Mode = Literal["http", "basic", "token"]

# 127.0.0.1 - - [27/Nov/2026:08:06:23 +0000] "GET /v2/_catalog?n=3 HTTP/1.1" 200 20 "" "curl/7.88.1"
_ACCESS_LINE = re.compile(
    r"^(?P<remote>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<method>[A-Z]+) (?P<path>\S+) (?P<proto>[^"]+)" '
    r'(?P<status>\d{3}) (?P<size>\d+|-) "(?P<referer>[^"]*)" "(?P<user_agent>.*)"$'
)

_LIVE: set[RegistryProcess] = set()


class AccessLogEntry(TypedDict):
    """One request as the registry's access log saw it."""

    method: str
    path: str  # request URI as sent: path plus query string
    status: int
    size: int  # response body bytes written
    user_agent: str
    remote: str
    time: str


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))  # a JSON string is a valid YAML double-quoted scalar
    raise TypeError(f"cannot write {type(value).__name__} to YAML")


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for nested dicts, lists and scalars (enough for registry configs)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, (Mapping, list, tuple)) and item:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(item, indent + 2))
            elif isinstance(item, Mapping):
                lines.append(f"{pad}{key}: {{}}")
            elif isinstance(item, (list, tuple)):
                lines.append(f"{pad}{key}: []")
            else:
                lines.append(f"{pad}{key}: {_yaml_scalar(item)}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (Mapping, list, tuple)) and item:
                nested = to_yaml(item, indent + 2).lstrip()
                lines.append(f"{pad}- {nested}")
            else:
                lines.append(f"{pad}- {_yaml_scalar(item)}")
    else:
        lines.append(pad + _yaml_scalar(value))
    return "\n".join(lines)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


class RegistryProcess:
    """A ``docker-registry serve`` child process on 127.0.0.1 (see the module doc)."""

    def __init__(
        self,
        mode: Mode,
        workdir: Path,
        *,
        certs: CertBundle | None = None,
        issuer: TokenIssuer | None = None,
        users: Mapping[str, str] | None = None,
        listen_host: str = "127.0.0.1",
        extra_config: Mapping[str, Any] | None = None,
        binary: str = REGISTRY_BINARY,
        startup_timeout: float = STARTUP_TIMEOUT,
        tls: bool | None = None,
        realm: str | None = None,
    ) -> None:
        if mode not in ("http", "basic", "token"):
            raise ValueError(f"unknown registry mode {mode!r}")
        self.mode: Mode = mode
        # TLS is on for "basic" and off otherwise unless asked; ``realm`` overrides the token
        # realm the registry advertises (e.g. a latency proxy in front of the issuer).
        self.tls = (mode == "basic") if tls is None else tls
        self.realm = realm
        if self.tls and certs is None:
            raise ValueError("TLS needs certs")
        self.workdir = workdir
        self.users: dict[str, str] = dict(DEFAULT_USERS if users is None else users)
        self.listen_host = listen_host
        self.extra_config = dict(extra_config or {})
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.certs = certs
        self.issuer = issuer
        self._owns_issuer = False
        self.port = 0
        self.log_path = workdir / "registry.log"
        self.config_path = workdir / "config.yml"
        self.storage_path = workdir / "storage"
        self._proc: subprocess.Popen[bytes] | None = None
        self._content: Content | None = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the registry part of an image reference."""
        return f"{self.listen_host}:{self.port}"

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT`` with no trailing slash."""
        return f"{self.scheme}://{self.host}"

    @property
    def ca_file(self) -> Path | None:
        """The CA that signed the server certificate (TLS mode only)."""
        if self.tls and self.certs is not None:
            return self.certs.ca_file
        return None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying client context trusting only the test CA, or None for plain HTTP."""
        ca_file = self.ca_file
        return None if ca_file is None else ssl.create_default_context(cafile=str(ca_file))

    @property
    def content(self) -> Content:
        """What :meth:`push_content` pushed."""
        if self._content is None:
            raise RuntimeError("no content was pushed to this registry")
        return self._content

    @content.setter
    def content(self, value: Content) -> None:
        self._content = value

    def push_content(self, *, many_tags: int = 300, distinct: int = 40) -> Content:
        """Push the standard test content (see ``content.py``) and remember it."""
        from .content import push_content  # noqa: PLC0415 - content imports this module

        self._content = push_content(self, many_tags=many_tags, distinct=distinct)
        return self._content

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    # -- config ------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The registry configuration for the current port and mode."""
        http_section: dict[str, Any] = {
            "addr": f"{self.listen_host}:{self.port}",
            "secret": "aioregistry-test-secret",
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_path)},
                "delete": {"enabled": True},
            },
            "http": http_section,
        }
        if self.tls:
            assert self.certs is not None
            http_section["tls"] = {
                "certificate": str(self.certs.server_cert_file),
                "key": str(self.certs.server_key_file),
            }
        if self.mode == "basic":
            config["auth"] = {
                "htpasswd": {"realm": HTPASSWD_REALM, "path": str(self.workdir / "htpasswd")}
            }
        elif self.mode == "token":
            assert self.certs is not None
            assert self.issuer is not None
            config["auth"] = {
                "token": {
                    "realm": self.realm or self.issuer.realm,
                    "service": self.issuer.service,
                    "issuer": self.issuer.issuer,
                    "rootcertbundle": str(self.certs.ca_file),
                }
            }
        return _merge(config, self.extra_config)

    def _write_htpasswd(self) -> None:
        # Distribution only accepts bcrypt; cost 4 (the minimum) because it checks on every request.
        lines = [
            f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"
            for user, password in self.users.items()
        ]
        (self.workdir / "htpasswd").write_text("\n".join(lines) + "\n")

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the registry (and its token issuer) and wait until ``/v2/`` answers."""
        if self._proc is not None:
            raise RuntimeError("registry already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_path.mkdir(exist_ok=True)
        if self.mode != "http" and self.certs is None:
            self.certs = make_certs(self.workdir / "certs")
        if self.mode == "basic":
            self._write_htpasswd()
        if self.mode == "token" and self.issuer is None:
            assert self.certs is not None
            self.issuer = TokenIssuer(self.certs.token_key, self.certs.token_cert)
            self._owns_issuer = True
        try:
            if self._owns_issuer:
                assert self.issuer is not None
                self.issuer.start()
            ready = self._launch_with_retries()
        except BaseException:
            self.stop()
            raise
        if not ready:
            self.stop()
            raise RuntimeError(
                f"docker-registry ({self.mode}) did not become ready; log tail:\n" + self.log_tail()
            )

    def _launch_with_retries(self) -> bool:
        for _ in range(3):
            if self._launch():
                return True
            # Another process may take the port between free_port() and the registry's bind.
            if "address already in use" not in self.log_tail():
                return False
        return False

    def _launch(self) -> bool:
        self.port = free_port(self.listen_host)
        self.config_path.write_text(to_yaml(self.config()) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with self.log_path.open("ab") as log:
            log.write(f"=== starting {self.binary} on port {self.port}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [self.binary, "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=self.workdir,
            )
        _LIVE.add(self)
        if self._wait_ready():
            return True
        self._terminate()
        return False

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        context = self.ssl_context()
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            conn: http.client.HTTPConnection
            if context is None:
                conn = http.client.HTTPConnection(self.listen_host, self.port, timeout=2)
            else:
                conn = http.client.HTTPSConnection(
                    self.listen_host, self.port, timeout=2, context=context
                )
            try:
                conn.request("GET", "/v2/", headers={"User-Agent": "aioregistry-test-readiness"})
                conn.getresponse().read()
            except OSError:
                time.sleep(0.02)  # poll interval: the process has not bound its port yet
            else:
                return True
            finally:
                conn.close()
        return False

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None
        _LIVE.discard(self)

    def stop(self) -> None:
        """Stop the registry (terminate, kill after 5 s) and an issuer it started itself."""
        self._terminate()
        if self._owns_issuer and self.issuer is not None:
            self.issuer.stop()

    def __enter__(self) -> RegistryProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RegistryProcess {self.mode} {self.url if self.port else '(not started)'}>"

    # -- logs --------------------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def access_log(self, since: int = 0) -> list[AccessLogEntry]:
        """Completed requests in order, from the registry's combined-format access log.

        The line is written when the handler returns: usually before the client has the
        whole response, but a large body can reach the client first, so use
        :meth:`wait_access_log` when counting. ``since`` skips that many entries (take it
        from :meth:`log_mark` before the requests of interest).
        """
        entries: list[AccessLogEntry] = []
        for line in self.log_text().splitlines():
            match = _ACCESS_LINE.match(line)
            if match is None:
                continue
            size = match["size"]
            entries.append(
                AccessLogEntry(
                    method=match["method"],
                    path=match["path"],
                    status=int(match["status"]),
                    size=0 if size == "-" else int(size),
                    user_agent=match["user_agent"],
                    remote=match["remote"],
                    time=match["time"],
                )
            )
        return entries[since:]

    def log_mark(self) -> int:
        """The number of access-log entries so far, for ``access_log(since=...)``."""
        return len(self.access_log())

    def wait_access_log(
        self, count: int, *, since: int = 0, timeout: float = 5.0
    ) -> list[AccessLogEntry]:
        """Poll until at least ``count`` entries follow ``since``; return them all."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.access_log(since)
            if len(entries) >= count or time.monotonic() >= deadline:
                return entries
            time.sleep(0.01)  # poll interval: the registry appends the line asynchronously


@atexit.register
def _kill_leftovers() -> None:
    # Last resort when a session ends without running fixture finalizers.
    for registry in list(_LIVE):
        with contextlib.suppress(Exception):
            registry.stop()
