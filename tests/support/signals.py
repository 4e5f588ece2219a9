"""Interrupting a command line mid-run: a signal sent once its output (or a server) shows it
is where a test wants it."""

from __future__ import annotations

import signal
from collections.abc import Callable

import anyio

__all__ = ["interrupt"]

Records = list[dict[str, object]]


async def interrupt(
    command: list[str],
    signum: signal.Signals,
    printed: Callable[[bytes], Records | None],
    count: int,
    *,
    ready: anyio.Event | None = None,
) -> tuple[bytes, bytes, Records, int]:
    """Run ``command``, send ``signum`` once ``printed(stdout so far)`` has ``count`` records
    (None: a record is cut) and ``ready`` is set (by the server the command talks to);
    returns stdout, stderr, the records
    printed before the signal and the exit status."""
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        out = b""
        with anyio.fail_after(20):
            while (before := printed(out)) is None or len(before) < count:
                out += await process.stdout.receive()
            if ready is not None:
                await ready.wait()
        process.send_signal(signum)
        with anyio.fail_after(10):
            async for chunk in process.stdout:
                out += chunk
            err = b"".join([chunk async for chunk in process.stderr])
            await process.wait()
        assert process.returncode is not None
        return out, err, before, process.returncode
