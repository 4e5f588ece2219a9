"""In-process aiohttp.web servers for behaviour a real registry will not show on demand.

:class:`FakeServer` serves routes a test adds (``fake.route("GET", path)(handler)``) on a
loopback address of its choice (``127.0.0.2`` plays "another host") and records every request.
A path ending in ``*`` is a prefix: it serves every path that starts with the rest, when no
route names that path exactly (the longest prefix wins).
With ``challenge`` set it answers requests without ``Authorization`` with a 401 and that
``WWW-Authenticate``. ``GET /v2/`` answers 200 unless a route replaces it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web

from .content import sha
from .webapp import start_app

__all__ = ["DOCKER_CONFIG", "DOCKER_V2", "FakeServer", "Handler", "docker_manifest"]

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def docker_manifest(config: bytes) -> bytes:
    """A schema 2 manifest whose config descriptor names ``config``; no layers."""
    document = {
        "schemaVersion": 2,
        "mediaType": DOCKER_V2,
        "config": {"mediaType": DOCKER_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [],
    }
    return json.dumps(document, separators=(",", ":")).encode()


class FakeServer:
    """Routes added per test, every request recorded; ``async with FakeServer() as fake``."""

    def __init__(self, address: str = "127.0.0.1", *, challenge: str | None = None) -> None:
        self.address = address
        self.challenge = challenge
        self.routes: dict[tuple[str, str], Handler] = {}
        self.seen: list[web.Request] = []
        self.host = ""  # address:port once started
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[(method, path)] = handler
            return handler

        return register

    def requests_to(self, path: str) -> list[web.Request]:
        return [r for r in self.seen if r.path == path]

    def _handler(self, method: str, path: str) -> Handler | None:
        for candidate in (method, "GET") if method == "HEAD" else (method,):
            handler = self.routes.get((candidate, path))
            if handler is not None:
                return handler
            prefixes = [
                route
                for verb, route in self.routes
                if verb == candidate and route.endswith("*") and path.startswith(route[:-1])
            ]
            if prefixes:
                return self.routes[(candidate, max(prefixes, key=len))]
        return None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        handler = self._handler(request.method, request.path)
        if self.challenge and "Authorization" not in request.headers:
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                status=401,
                headers={"WWW-Authenticate": self.challenge},
            )
        if handler is None and request.path == "/v2/":
            return web.json_response({})
        if handler is None:
            raise web.HTTPNotFound(text="no route")
        return await handler(request)

    async def __aenter__(self) -> FakeServer:
        self._runner, port = await start_app(self._dispatch, self.address)
        self.host = f"{self.address}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
