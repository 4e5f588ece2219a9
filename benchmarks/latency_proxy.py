"""A loopback TCP proxy that delays every byte by a fixed time in each direction.

This kernel has no netem, so real latency is simulated here: each chunk read from one side is
written to the other ``delay`` seconds later, in order, so a round trip costs ``2 * delay``
on top of the real one. Bandwidth is not limited. Used by the benchmarks and by the
concurrency measurements; loopback addresses only.

    python benchmarks/latency_proxy.py --listen 127.0.0.1:0 --upstream 127.0.0.1:5000 --rtt 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        if not sender.done():
            sender.cancel()


class LatencyProxy:
    """``async with LatencyProxy(upstream_host, upstream_port, rtt) as proxy: proxy.port``."""

    def __init__(
        self, upstream_host: str, upstream_port: int, rtt: float, listen_host: str = "127.0.0.1"
    ) -> None:
        if not upstream_host.startswith("127.") and upstream_host != "localhost":
            raise ValueError("the latency proxy only forwards to loopback addresses")
        self.upstream = (upstream_host, upstream_port)
        self.delay = rtt / 2
        self.listen_host = listen_host
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(client_w)
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        self._writers.add(up_w)
        try:
            if self.delay:
                await asyncio.sleep(self.delay * 2)  # the TCP handshake's round trip
            await asyncio.gather(
                _pump(client_r, up_w, self.delay), _pump(up_r, client_w, self.delay)
            )
        except asyncio.CancelledError:
            pass  # the proxy is shutting down: this is the top of the connection's task
        finally:
            for w in (up_w, client_w):
                w.close()
                self._writers.discard(w)

    async def __aenter__(self) -> LatencyProxy:
        self._server = await asyncio.start_server(self._handle, self.listen_host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


async def _main(
    args: argparse.Namespace, ready: Callable[[int], Awaitable[None]] | None = None
) -> None:
    host, _, port = args.upstream.rpartition(":")
    async with LatencyProxy(host, int(port), args.rtt) as proxy:
        print(
            f"127.0.0.1:{proxy.port} -> {args.upstream}, RTT +{args.rtt * 1000:.0f} ms", flush=True
        )
        if ready is not None:
            await ready(proxy.port)
        await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT on loopback")
    parser.add_argument("--rtt", type=float, default=0.02, help="added round-trip time, seconds")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(parser.parse_args()))
