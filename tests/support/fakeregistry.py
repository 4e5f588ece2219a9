"""An in-process "big registry" simulator: Docker Hub, GHCR, ECR and Quay as they behave.

The real registry fixture cannot play the public registries' auth and paging quirks, so this
aiohttp.web server does, over TLS on 127.0.0.1 with a certificate (signed by the tests' CA)
for the real host names. `LoopbackResolver` maps those names to the server's port, so a
client given `FakeRegistry.session()` and the CA file talks to "https://registry-1.docker.io"
exactly as it would on the internet, and nothing leaves the machine (any other name fails
to resolve). One server plays every host; the ``Host`` header says which one is asked.

Each simulated `Registry` serves real content (manifests and configs built by
``support.content``, so every digest is the sha256 of the bytes served); each `TokenServer`
issues opaque tokens for the scopes it grants. Every request is recorded in `FakeRegistry.log`.

What is simulated (from the registries' documentation and clients' issue trackers):
* Docker Hub: Bearer realm ``https://auth.docker.io/token``, service ``registry.docker.io``,
  anonymous tokens; ``ratelimit-*`` headers on manifest requests, where a GET uses up a pull
  and a HEAD does not.
* GHCR: realm ``https://ghcr.io/token`` on the registry host itself; anonymous tokens for
  public packages, 401 for an anonymous token request naming a private one.
* ECR: ``Basic realm="https://<acct>.dkr.ecr.<region>.amazonaws.com/",service="ecr.amazonaws.com"``,
  user ``AWS``; ``n`` above 1000 answers 400.
* Quay: realm ``https://quay.io/v2/auth``; tags in pages of 50 with a ``Link``; ``n`` above
  100 answers 413.
"""

from __future__ import annotations

import base64
import re
import secrets
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from aioregistry import RegistryClient

from .content import DOCKER_LIST, PushedImage, PushedIndex, _image, _index
from .webapp import start_app

__all__ = [
    "DOCKER_HUB_SOURCE",
    "ECR_HOST",
    "SIMULATED_HOSTS",
    "FakeRegistry",
    "LoopbackResolver",
    "RateLimitState",
    "Registry",
    "Repo",
    "Seen",
    "TokenServer",
    "docker_hub",
    "ecr",
    "ghcr",
    "image_tags",
    "many_tags",
    "quay",
]

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
SIMULATED_HOSTS = ("registry-1.docker.io", "auth.docker.io", "ghcr.io", ECR_HOST, "quay.io")
DOCKER_HUB_SOURCE = "203.0.113.7"  # TEST-NET-3: an address that is nobody's
_NAME = r"(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
_TAGS = re.compile(rf"^/v2/{_NAME}/tags/list$")
_MANIFEST = re.compile(rf"^/v2/{_NAME}/manifests/(?P<ref>[^/]+)$")
_BLOB = re.compile(rf"^/v2/{_NAME}/blobs/(?P<digest>[^/]+)$")


@dataclass(frozen=True)
class Seen:
    """One request the simulator received (``host`` without a default ``:443``)."""

    host: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    authorization: str | None
    status: int  # what the simulator answered

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]

    @property
    def auth_scheme(self) -> str | None:
        return self.authorization.split(" ", 1)[0].lower() if self.authorization else None


@dataclass
class Repo:
    """A repository: tags in the order the registry lists them; ``private`` needs a login."""

    tags: dict[str, PushedImage | PushedIndex]
    private: bool = False


@dataclass
class RateLimitState:
    """Docker Hub's pull counter: a manifest GET uses up one pull, a HEAD none."""

    limit: int = 100
    remaining: int = 76
    window: int = 21600
    source: str = DOCKER_HUB_SOURCE

    def headers(self) -> dict[str, str]:
        return {
            "ratelimit-limit": f"{self.limit};w={self.window}",
            "ratelimit-remaining": f"{self.remaining};w={self.window}",
            "docker-ratelimit-source": self.source,
        }


@dataclass
class Registry:
    """One simulated registry host.

    ``challenge`` is the ``WWW-Authenticate`` of a request without (valid) credentials;
    ``scheme`` says what it takes: tokens from a `TokenServer` or Basic ``users``.
    ``page_default`` is the page size when no ``n`` is asked (None: one page of everything);
    an ``n`` above ``page_max`` answers ``too_large_status``.
    """

    host: str
    challenge: str
    scheme: Literal["bearer", "basic"]
    repos: dict[str, Repo]
    users: dict[str, str] = field(default_factory=dict)
    page_default: int | None = None
    page_max: int | None = None
    too_large_status: int = 400
    rate_limit: RateLimitState | None = None
    tokens: dict[str, frozenset[str]] = field(default_factory=dict)  # token → granted scopes

    def manifests(self, name: str) -> dict[str, PushedImage | PushedIndex]:
        """Every manifest of a repository by digest, index children included."""
        found: dict[str, PushedImage | PushedIndex] = {}
        for item in self.repos[name].tags.values():
            found[item.digest] = item
            if isinstance(item, PushedIndex):
                found.update((child.digest, child) for child in item.children)
        return found

    def configs(self, name: str) -> dict[str, bytes]:
        return {
            m.config_digest: m.config_raw
            for m in self.manifests(name).values()
            if isinstance(m, PushedImage)
        }

    def basic_user(self, authorization: str | None) -> str | None:
        """The user of a valid Basic ``Authorization``, else None."""
        if not authorization or not authorization.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return user if user in self.users and self.users[user] == password else None


@dataclass
class TokenServer:
    """A token realm (``https://{host}{path}``) issuing tokens for ``registry``.

    Public repositories are granted to anyone; private ones to the registry's Basic users.
    An anonymous request for a private repository answers ``private_anonymous_status``
    (GHCR: 401), or a token without that access when it is None (Docker Hub).
    """

    host: str
    path: str
    service: str
    registry: Registry
    private_anonymous_status: int | None = None

    @property
    def realm(self) -> str:
        return f"https://{self.host}{self.path}"


class LoopbackResolver(AbstractResolver):
    """Resolves the simulated host names to 127.0.0.1 and the simulator's port; nothing else.

    Records every name asked for in ``lookups``. A name it does not know fails as an
    unknown host would, so a test can never reach the internet by mistake.
    """

    def __init__(self, names: Iterable[str], port: int) -> None:
        self._names = frozenset(names)
        self._port = port
        self.lookups: list[tuple[str, int]] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append((host, port))
        if host not in self._names:
            raise OSError(socket.EAI_NONAME, f"{host} is not a simulated host")
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=self._port,  # not the port asked for: every host lives on this one
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


class FakeRegistry:
    """The simulator server: ``async with FakeRegistry(cert, key) as fake:``, then `add`."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.load_cert_chain(cert_file, key_file)
        self.registries: dict[str, Registry] = {}
        self.token_servers: dict[tuple[str, str], TokenServer] = {}
        self.log: list[Seen] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    def add(self, registry: Registry, token_server: TokenServer | None = None) -> None:
        self.registries[registry.host] = registry
        if token_server is not None:
            self.token_servers[(token_server.host, token_server.path)] = token_server

    def requests(
        self, host: str | None = None, method: str | None = None, path: str | None = None
    ) -> list[Seen]:
        """The recorded requests, filtered; ``path`` may end in ``*`` for a prefix."""
        found = []
        for seen in self.log:
            if host is not None and seen.host != host:
                continue
            if method is not None and seen.method != method:
                continue
            if path is not None and not (
                seen.path.startswith(path[:-1]) if path.endswith("*") else seen.path == path
            ):
                continue
            found.append(seen)
        return found

    def resolver(self) -> LoopbackResolver:
        return LoopbackResolver(SIMULATED_HOSTS, self.port)

    @asynccontextmanager
    async def client(
        self, ca_file: str | Path, credentials: Any = None
    ) -> AsyncIterator[tuple[RegistryClient, LoopbackResolver]]:
        """A `RegistryClient` that reaches the simulated names here (and its resolver, which
        records what was looked up); no environment credentials."""
        resolver = self.resolver()
        async with (
            self.session(resolver) as session,
            RegistryClient(
                session=session,
                ca_file=str(ca_file),
                credentials=credentials,
                use_env_credentials=False,
            ) as client,
        ):
            yield client, resolver

    def session(self, resolver: LoopbackResolver | None = None) -> aiohttp.ClientSession:
        """A session whose connector resolves the simulated names to this server.

        TLS is left to the client (``RegistryClient(ca_file=...)`` passes its context with
        every request); the caller closes the session.
        """
        connector = aiohttp.TCPConnector(resolver=resolver or self.resolver())
        return aiohttp.ClientSession(connector=connector)

    async def __aenter__(self) -> FakeRegistry:
        self._runner, self.port = await start_app(self._dispatch, ssl_context=self._ssl)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- serving ---------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        host = request.host.lower().removesuffix(":443")
        token_server = self.token_servers.get((host, request.path))
        registry = self.registries.get(host)
        if token_server is not None:
            response = _issue_token(token_server, request)
        elif registry is not None:
            response = _serve(registry, request)
        else:
            response = _error(404, "NOT_FOUND", f"no simulated registry at {host}")
        self.log.append(
            Seen(
                host,
                request.method,
                request.path,
                tuple(request.query.items()),
                request.headers.get("Authorization"),
                response.status,
            )
        )
        return response


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"errors": [{"code": code, "message": message, "detail": None}]},
        status=status,
        headers=headers,
    )


def _issue_token(server: TokenServer, request: web.Request) -> web.Response:
    registry = server.registry
    if request.query.get("service") != server.service:
        return _error(400, "INVALID_REQUEST", "service does not match")
    user = registry.basic_user(request.headers.get("Authorization"))
    if request.headers.get("Authorization") and user is None:
        return _error(401, "UNAUTHORIZED", "incorrect username or password")
    granted = set()
    for scope in request.query.getall("scope", []):
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        repo = registry.repos.get(name)
        if kind != "repository" or "pull" not in actions.split(",") or repo is None:
            continue  # Docker Hub's way: the token simply lacks what it cannot grant
        if repo.private and user is None:
            if server.private_anonymous_status is not None:
                return _error(
                    server.private_anonymous_status, "UNAUTHORIZED", "authentication required"
                )
            continue
        granted.add(f"repository:{name}:pull")
    token = secrets.token_urlsafe(24)
    registry.tokens[token] = frozenset(granted)
    return web.json_response({"token": token, "access_token": token, "expires_in": 300})


def _challenge(registry: Registry, scope: str | None, error: str | None) -> dict[str, str]:
    value = registry.challenge
    if registry.scheme == "bearer" and scope:
        value += f',scope="{scope}"'
        if error:
            value += f',error="{error}"'
    return {"WWW-Authenticate": value}


def _authorized(registry: Registry, request: web.Request, scope: str | None) -> web.Response | None:
    """None when the request may go on, else the 401 to answer."""
    authorization = request.headers.get("Authorization")
    if registry.scheme == "basic":
        if registry.basic_user(authorization) is not None:
            return None
        return _error(
            401, "UNAUTHORIZED", "authentication required", _challenge(registry, None, None)
        )
    granted: frozenset[str] | None = None
    if authorization and authorization.lower().startswith("bearer "):
        granted = registry.tokens.get(authorization[7:].strip())
    if granted is not None and (scope is None or scope in granted):
        return None
    error = "insufficient_scope" if granted is not None else None
    return _error(
        401, "UNAUTHORIZED", "authentication required", _challenge(registry, scope, error)
    )


def _serve(registry: Registry, request: web.Request) -> web.Response:  # noqa: PLR0911
    path = request.path
    if path == "/v2/":
        denied = _authorized(registry, request, None)
        return denied or web.json_response({})
    for pattern in (_TAGS, _MANIFEST, _BLOB):
        match = pattern.match(path)
        if match is not None:
            break
    else:
        return _error(404, "NOT_FOUND", "no such endpoint")
    name = match.group("name")
    denied = _authorized(registry, request, f"repository:{name}:pull")
    if denied is not None:
        return denied
    if name not in registry.repos:
        return _error(404, "NAME_UNKNOWN", "repository name not known to registry")
    if pattern is _TAGS:
        return _tags(registry, name, request)
    if pattern is _MANIFEST:
        return _manifest(registry, name, match.group("ref"), request)
    config = registry.configs(name).get(match.group("digest"))
    if config is None:
        return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")
    return web.Response(body=config, content_type="application/octet-stream")


def _tags(registry: Registry, name: str, request: web.Request) -> web.Response:
    tags = list(registry.repos[name].tags)
    size = registry.page_default
    if "n" in request.query:
        try:
            size = int(request.query["n"])
        except ValueError:
            return _error(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
        if size < 1 or (registry.page_max is not None and size > registry.page_max):
            return _error(
                registry.too_large_status,
                "PAGINATION_NUMBER_INVALID",
                f"invalid number of results requested: at most {registry.page_max}",
            )
    last = request.query.get("last")
    start = tags.index(last) + 1 if last in tags else 0
    page = tags[start:] if size is None else tags[start : start + size]
    headers: dict[str, str] = {}
    if size is not None and start + size < len(tags):
        headers["Link"] = f'</v2/{name}/tags/list?n={size}&last={page[-1]}>; rel="next"'
    return web.json_response({"name": name, "tags": page}, headers=headers)


def _manifest(registry: Registry, name: str, ref: str, request: web.Request) -> web.Response:
    repo = registry.repos[name]
    item = (
        repo.tags.get(ref) if not ref.startswith("sha256:") else registry.manifests(name).get(ref)
    )
    if item is None:
        return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
    headers = {"Docker-Content-Digest": item.digest}
    if registry.rate_limit is not None:
        if request.method == "GET":
            registry.rate_limit.remaining = max(0, registry.rate_limit.remaining - 1)
        headers.update(registry.rate_limit.headers())
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(item.raw))
        headers["Content-Type"] = item.media_type
        return web.Response(headers=headers)
    return web.Response(body=item.raw, headers={**headers, "Content-Type": item.media_type})


# -- the public registries ---------------------------------------------------------------------


def image_tags(repository: str, tags: dict[str, str]) -> dict[str, PushedImage | PushedIndex]:
    """Tags → content: each distinct label becomes a two-platform Docker manifest list.

    ``{"latest": "a", "24.04": "a", "22.04": "b"}`` makes two indexes, ``latest`` and
    ``24.04`` pointing at the same one.
    """
    built: dict[str, PushedImage | PushedIndex] = {}
    result: dict[str, PushedImage | PushedIndex] = {}
    for tag, label in tags.items():
        if label not in built:
            children = tuple(
                _image(repository, f"{label}-{arch}", f"linux/{arch}")
                for arch in ("amd64", "arm64")
            )
            built[label] = _index(repository, DOCKER_LIST, children)
        result[tag] = built[label]
    return result


def docker_hub(
    repos: dict[str, Repo],
    *,
    host: str = "registry-1.docker.io",
    realm_host: str = "auth.docker.io",
    rate_limit: RateLimitState | None = None,
) -> tuple[Registry, TokenServer]:
    """Docker Hub: anonymous tokens from auth.docker.io; rate-limit headers on manifests."""
    registry = Registry(
        host=host,
        challenge=f'Bearer realm="https://{realm_host}/token",service="registry.docker.io"',
        scheme="bearer",
        repos=repos,
        rate_limit=rate_limit or RateLimitState(),
    )
    return registry, TokenServer(realm_host, "/token", "registry.docker.io", registry)


def ghcr(
    repos: dict[str, Repo], users: dict[str, str] | None = None
) -> tuple[Registry, TokenServer]:
    """GHCR: token realm on ghcr.io itself; anonymous token for a private package → 401."""
    registry = Registry(
        host="ghcr.io",
        challenge='Bearer realm="https://ghcr.io/token",service="ghcr.io"',
        scheme="bearer",
        repos=repos,
        users=users or {},
    )
    return registry, TokenServer(
        "ghcr.io", "/token", "ghcr.io", registry, private_anonymous_status=401
    )


def ecr(repos: dict[str, Repo], password: str) -> Registry:
    """ECR: Basic auth for user ``AWS``; pages of at most 1000, a larger ``n`` answers 400."""
    return Registry(
        host=ECR_HOST,
        challenge=f'Basic realm="https://{ECR_HOST}/",service="ecr.amazonaws.com"',
        scheme="basic",
        repos=repos,
        users={"AWS": password},
        page_default=1000,
        page_max=1000,
        too_large_status=400,
    )


def quay(repos: dict[str, Repo]) -> tuple[Registry, TokenServer]:
    """Quay: realm quay.io/v2/auth; pages of 50 with a Link; ``n`` above 100 answers 413."""
    registry = Registry(
        host="quay.io",
        challenge='Bearer realm="https://quay.io/v2/auth",service="quay.io"',
        scheme="bearer",
        repos=repos,
        page_default=50,
        page_max=100,
        too_large_status=413,
    )
    return registry, TokenServer("quay.io", "/v2/auth", "quay.io", registry)


def many_tags(names: Iterable[str], repository: str) -> dict[str, PushedImage | PushedIndex]:
    """Tags that all point at one small image, in the given order: for paging tests."""
    image = _image(repository, "paged", "linux/amd64")
    return dict.fromkeys(names, image)
