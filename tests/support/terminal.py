"""The command line as people run it: on a pseudo-terminal (`Terminal`), and interrupted
mid-run (`interrupt`: a signal sent once its output, or a server, shows it is where a test
wants it)."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import subprocess
import termios
from collections.abc import Callable

import anyio

__all__ = ["ANSI", "Terminal", "interrupt"]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # what a terminal takes, not text

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
