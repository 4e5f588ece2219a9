"""`IterateOnce`: the shell of a stream that is iterated once and stopped from anywhere.

A `Scan` and an `Audit` are each an async generator behind a handle: ``async for`` it once
(a second time is a mistake, not an empty stream), or ``async with`` it so that leaving the
block stops the work deterministically; ``aclose()`` stops it from wherever it is. A
subclass gives the generator (``_iterate``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any, Generic, TypeVar

__all__ = ["IterateOnce"]

T = TypeVar("T")
S = TypeVar("S", bound="IterateOnce[Any]")


class IterateOnce(Generic[T]):
    """An async iterable of ``T`` iterated once; ``async with`` closes it (see module doc)."""

    _generator: AsyncGenerator[T, None] | None = None

    def _iterate(self) -> AsyncGenerator[T, None]:
        raise NotImplementedError

    def __aiter__(self) -> AsyncGenerator[T, None]:
        if self._generator is not None:
            raise RuntimeError(f"a {type(self).__name__} can be iterated only once")
        self._generator = self._iterate()
        return self._generator

    async def __aenter__(self: S) -> S:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop: cancel the work in flight and wait for it to end."""
        if self._generator is not None:
            await self._generator.aclose()
