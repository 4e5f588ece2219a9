"""Errors as people meet them: here, a registry that accepts connections and never answers
(in-process TCP servers on 127.0.0.1, plain and TLS)."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from aioregistry import RegistryClient, RequestTimeout, Retries, Timeouts

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
