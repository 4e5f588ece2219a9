"""Single-flight: many tasks asking for the same missing value cause one computation.

Used for bearer tokens (a thousand tasks asking for a new scope make one token request), for
registry pings (one ``GET /v2/`` per host) and, through `Memo`, for a scan's manifests and
configs (one fetch per digest). Waiters share the leader's result or its error; if the leader
is cancelled, the next waiter becomes the leader instead of failing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import anyio

__all__ = ["Memo", "SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Flight(Generic[V]):
    __slots__ = ("done", "error", "has_result", "result")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: V | None = None
        self.has_result = False
        self.error: Exception | None = None


class SingleFlight(Generic[K, V]):
    """Run at most one ``compute()`` per key at a time; concurrent callers share its outcome."""

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[V]] = {}
        self.leaders = 0  # how many computations ran: what the tests count

    async def do(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        while True:
            flight = self._flights.get(key)
            if flight is None:
                return await self._lead(key, compute)
            await flight.done.wait()
            if flight.has_result:
                return flight.result  # type: ignore[return-value]
            if flight.error is not None:
                raise flight.error
            # The leader was cancelled: try again, perhaps as the new leader.

    async def _lead(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        flight: _Flight[V] = _Flight()
        self._flights[key] = flight
        self.leaders += 1
        try:
            value = await compute()
        except Exception as exc:
            flight.error = exc
            raise
        else:
            flight.result = value
            flight.has_result = True
            return value
        finally:
            del self._flights[key]
            flight.done.set()


class Memo(Generic[K, V]):
    """Single-flight memo with a bounded LRU of finished values; failures are not kept."""

    def __init__(self, size: int) -> None:
        self._values: OrderedDict[K, V] = OrderedDict()
        self._flight: SingleFlight[K, V] = SingleFlight()
        self._size = size

    async def get(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]

        async def compute_and_keep() -> V:
            if key in self._values:
                return self._values[key]
            value = await compute()
            self._values[key] = value
            if len(self._values) > self._size:
                self._values.popitem(last=False)
            return value

        return await self._flight.do(key, compute_and_keep)

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` as if ``get`` had computed it."""
        self._values[key] = value
        self._values.move_to_end(key)
        if len(self._values) > self._size:
            self._values.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def clear(self) -> None:
        self._values.clear()
