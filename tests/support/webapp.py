"""Serve one aiohttp.web handler on loopback: the start-up every in-process fake shares."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["start_app"]


async def start_app(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    address: str = "127.0.0.1",
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve ``handler`` for every method and path on ``address`` and a free port.

    Returns the runner (``await runner.cleanup()`` stops it) and the port. Handlers are
    cancelled when their client hangs up, so one that streams or stalls forever ends with it.
    """
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, address, 0, ssl_context=ssl_context).start()
    return runner, runner.addresses[0][1]
