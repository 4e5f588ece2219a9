"""Credentials people already have: docker's ``config.json`` and containers' ``auth.json``.

`ConfigFiles.find` answers "what would docker (then podman) use for this registry?":

- Docker's config, ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``: a
  ``credHelpers`` entry for the registry, else the ``credsStore`` default, runs
  ``docker-credential-<name> get`` (server URL on stdin, ``{"ServerURL", "Username",
  "Secret"}`` on stdout; Username ``<token>`` means Secret is an identity token). When no helper
  applies or the helper has nothing, an ``auths`` entry with credentials (base64 ``auth``,
  ``username``/``password``, ``identitytoken``) is used; docker writes ``{}`` entries beside a
  ``credsStore``, and those are not credentials.
- Containers' auth file: ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``,
  ``~/.config/containers/auth.json`` (the same ``auths`` format; a key may name a repository
  path, and the longest matching key wins).

Keys match as docker matches them: scheme and path are ignored (``https://host:5000/v2/`` is
``host:5000``), and ``docker.io``, ``index.docker.io`` and ``https://index.docker.io/v1/`` all
mean Docker Hub. Parsed files and helper answers are kept for `CACHE_SECONDS`, so a scan runs a
helper once, while a long-lived client still sees a new ``docker login``.

Secrets never enter a message: errors name the file, the key and the helper only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import orjson

from ._credentials import Credentials
from ._exceptions import CredentialsError
from ._flight import SingleFlight
from ._models import load_object
from ._references import DOCKER_HUB_REGISTRY, registry_key

__all__ = [
    "CACHE_SECONDS",
    "DOCKER_HUB_KEY",
    "HELPER_TIMEOUT",
    "ConfigFiles",
    "Found",
    "containers_auth_paths",
    "docker_config_path",
    "run_helper",
]

DOCKER_HUB_KEY = "https://index.docker.io/v1/"  # docker's key (and helper URL) for Docker Hub
HELPER_TIMEOUT = 10.0  # seconds a credential helper may take (a keychain prompt is slow)
CACHE_SECONDS = 300.0  # how long parsed files and helper answers are reused
_HELPER_OUTPUT_LIMIT = 64 * 1024
_NOT_FOUND = "credentials not found"  # docker-credential-helpers' ErrCredentialsNotFound


@dataclass(frozen=True, slots=True)
class Found:
    """Credentials and where they came from (a description without any secret)."""

    credentials: Credentials
    source: str


def docker_config_path(environ: Mapping[str, str]) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    directory = environ.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    return _home(environ) / ".docker" / "config.json"


def containers_auth_paths(environ: Mapping[str, str]) -> list[Path]:
    """The containers auth files in the order they are consulted."""
    paths: list[Path] = []
    if environ.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(environ["REGISTRY_AUTH_FILE"]))
    if environ.get("XDG_RUNTIME_DIR"):
        paths.append(Path(environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    paths.append(_home(environ) / ".config" / "containers" / "auth.json")
    return paths


def _home(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    return Path(home) if home else Path.home()


def _split_containers_key(key: str) -> tuple[str, str]:
    """``host[/path]`` of a containers key; docker-style keys (with a scheme) have no path."""
    key = key.strip()
    lowered = key.lower()
    if lowered.startswith(("http://", "https://")):
        return registry_key(key), ""
    host, _, path = key.partition("/")
    return registry_key(host), path.strip("/")


def _helper_url(host: str) -> str:
    """The server URL docker hands a helper: Docker Hub's legacy key, else the host."""
    return DOCKER_HUB_KEY if registry_key(host) == DOCKER_HUB_REGISTRY else host


class ConfigFiles:
    """Docker's and containers' credential files and helpers, read lazily and cached briefly."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        helper_timeout: float = HELPER_TIMEOUT,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._helper_timeout = helper_timeout
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._files: dict[Path, tuple[float, dict[str, Any] | None]] = {}
        self._helpers: dict[tuple[str, str], tuple[float, Credentials | None]] = {}
        self._flight: SingleFlight[tuple[str, str], Credentials | None] = SingleFlight()
        self.helper_runs = 0  # helper processes started: what the caching tests count

    async def find(self, host: str, repository: str | None = None) -> Found | None:
        """The first credentials docker's config, then containers' files, hold for ``host``."""
        found = await self._from_docker(host)
        if found is not None:
            return found
        for path in containers_auth_paths(self._environ):
            found = self._from_containers(path, host, repository or "")
            if found is not None:
                return found
        return None

    # -- docker's config.json ----------------------------------------------------------------

    async def _from_docker(self, host: str) -> Found | None:
        path = docker_config_path(self._environ)
        config = self._load(path)
        if config is None:
            return None
        want = registry_key(host)
        helpers = config.get("credHelpers")
        helpers = {} if helpers is None else helpers
        store = config.get("credsStore")
        _check_types(path, helpers, store)
        store = store or None  # docker reads "" as no store
        helper: tuple[str, str] | None = None
        for key, name in helpers.items():
            if registry_key(key) == want:
                helper = (name, "credHelpers")
                break
        if helper is None and store is not None:
            helper = (store, "credsStore")
        if helper is not None:
            name, how = helper
            creds = await self._helper(name, _helper_url(host), f"{how} in {path}")
            if creds is not None:
                return Found(creds, f"docker config {path} ({how} {name})")
        for key, entry in _auths(path, config).items():
            if registry_key(key) != want:
                continue
            creds = _entry_credentials(path, key, entry)
            if creds is not None:
                return Found(creds, f"docker config {path} (auths)")
        return None

    async def _helper(self, name: str, server_url: str, named_by: str) -> Credentials | None:
        key = (name, server_url)
        cached = self._helpers.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]

        async def run() -> Credentials | None:
            again = self._helpers.get(key)
            if again is not None and again[0] > self._clock():
                return again[1]
            self.helper_runs += 1
            creds = await run_helper(
                name, server_url, time_limit=self._helper_timeout, named_by=named_by
            )
            self._helpers[key] = (self._clock() + self._cache_seconds, creds)
            return creds

        return await self._flight.do(key, run)

    # -- containers' auth.json ---------------------------------------------------------------

    def _from_containers(self, path: Path, host: str, repository: str) -> Found | None:
        config = self._load(path)
        if config is None:
            return None
        want = registry_key(host)
        best: tuple[int, Credentials] | None = None
        for key, entry in _auths(path, config).items():
            key_registry, key_path = _split_containers_key(key)
            if key_registry != want:
                continue
            if key_path and repository != key_path and not repository.startswith(key_path + "/"):
                continue
            creds = _entry_credentials(path, key, entry)
            if creds is not None and (best is None or len(key_path) > best[0]):
                best = (len(key_path), creds)
        if best is None:
            return None
        return Found(best[1], f"containers auth file {path}")

    # -- files -------------------------------------------------------------------------------

    def _load(self, path: Path) -> dict[str, Any] | None:
        """The JSON object in ``path``, None when there is no such file; errors name the file."""
        cached = self._files.get(path)
        now = self._clock()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as exc:
            raise CredentialsError(f"cannot read credentials file {path}: {exc.strerror}") from exc
        else:
            where = f"credentials file {path}"
            data = load_object(raw, where, error=CredentialsError) if raw.strip() else {}
        self._files[path] = (now + self._cache_seconds, data)
        return data


def _check_types(path: Path, helpers: object, store: object) -> None:
    if not isinstance(helpers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in helpers.items()
    ):
        raise CredentialsError(
            f"credentials file {path}: 'credHelpers' must map registries to helper names"
        )
    if store is not None and not isinstance(store, str):
        raise CredentialsError(f"credentials file {path}: 'credsStore' must be a helper name")


def _auths(path: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    auths = config.get("auths")
    if auths is None:
        return {}
    if not isinstance(auths, dict):
        raise CredentialsError(f"credentials file {path}: 'auths' must be a JSON object")
    return auths


def _entry_credentials(path: Path, key: str, entry: object) -> Credentials | None:
    """Credentials of one ``auths`` entry; None for an entry without any (``{}``)."""
    where = f"credentials file {path}: auths[{key!r}]"
    if not isinstance(entry, dict):
        raise CredentialsError(f"{where} is not a JSON object")
    fields = {}
    for name in ("auth", "username", "password", "identitytoken"):
        value = entry.get(name)
        if value is not None and not isinstance(value, str):
            raise CredentialsError(f"{where}.{name} is not a string")
        fields[name] = value or ""
    username, password = fields["username"], fields["password"]
    if fields["auth"]:
        try:
            decoded = base64.b64decode(fields["auth"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"{where}.auth is not base64 of 'user:password'") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise CredentialsError(f"{where}.auth is not base64 of 'user:password'")
    token = fields["identitytoken"] or None
    if token is None and not password:
        return None  # docker's {} beside a credsStore, or a username alone: not credentials
    return Credentials(username, password, identity_token=token)


async def run_helper(
    name: str, server_url: str, *, time_limit: float, named_by: str = "docker's config"
) -> Credentials | None:
    """Ask ``docker-credential-<name> get`` for ``server_url``; None when it has nothing.

    The helper is killed when ``time_limit`` passes. "credentials not found" (its exit 1 with
    that message) means no credentials; any other failure is a `CredentialsError`.
    """
    program = f"docker-credential-{name}"
    try:
        with anyio.fail_after(time_limit):
            returncode, output, errors = await _run(program, server_url.encode() + b"\n")
    except TimeoutError:
        raise CredentialsError(
            f"credential helper {program} did not answer within {time_limit:g} s"
        ) from None
    except FileNotFoundError:
        raise CredentialsError(
            f"credential helper {program} not found on PATH (named by {named_by})"
        ) from None
    except OSError as exc:
        raise CredentialsError(f"cannot run credential helper {program}: {exc.strerror}") from None
    if returncode != 0:
        message = (output or errors).decode(errors="replace")
        if _NOT_FOUND in message.lower():
            return None
        first = message.strip().splitlines()[0][:200] if message.strip() else "no message"
        raise CredentialsError(f"credential helper {program} failed (exit {returncode}): {first}")
    try:
        data = orjson.loads(output)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k, ""), str) for k in ("Username", "Secret")
    ):
        raise CredentialsError(f"credential helper {program} answered something that is not JSON")
    username, secret = data.get("Username") or "", data.get("Secret") or ""
    if not secret:
        return None
    if username == "<token>":
        return Credentials("", "", identity_token=secret)
    return Credentials(username, secret)


async def _run(program: str, stdin: bytes) -> tuple[int, bytes, bytes]:
    """Run ``program get``: stdin written (a helper may exit without reading it), both output
    streams read at once and capped. Leaving early (the deadline) kills the process."""
    async with await anyio.open_process([program, "get"]) as process:
        outputs: list[bytes] = [b"", b""]

        async def drain(stream: anyio.abc.ByteReceiveStream | None, index: int) -> None:
            if stream is None:
                return
            async for chunk in stream:
                if len(outputs[index]) < _HELPER_OUTPUT_LIMIT:
                    outputs[index] += chunk[: _HELPER_OUTPUT_LIMIT - len(outputs[index])]

        async with anyio.create_task_group() as tg:
            tg.start_soon(drain, process.stdout, 0)
            tg.start_soon(drain, process.stderr, 1)
            if process.stdin is not None:
                with contextlib.suppress(anyio.BrokenResourceError, OSError):
                    await process.stdin.send(stdin)
                await process.stdin.aclose()
        returncode = await process.wait()
    return returncode, outputs[0], outputs[1]
