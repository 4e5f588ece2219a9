"""Counting what a client does, client-wide and per scan.

A `Meter` belongs to one client: its transport and auth flow record every request, byte,
retry and token into it. ``with meter.counting() as counters:`` opens a scope in the current
task (and the tasks it starts afterwards, which inherit its context): what the client does
inside it is counted into ``counters`` too. A scan counts in a scope of its own, so two scans
running at once on one client each count only their own requests. Work shared by tasks of
both (one token request that both wait for) is counted once, in the scope of the task that
did it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["Counters", "Meter"]


@dataclass(slots=True)
class Counters:
    """Requests by kind, bytes of bodies read, retried attempts, tokens fetched, hedges
    (duplicates of late requests) and refusals (429 and 503 answers)."""

    requests: Counter[str] = field(default_factory=Counter)
    bytes_received: int = 0
    retries: int = 0
    tokens_fetched: int = 0
    hedges: int = 0
    refused: int = 0


# The open scopes of the current context, each with the meter it belongs to: a scope counts
# only its own client's work, whatever else the task does.
_SCOPES: ContextVar[tuple[tuple[Meter, Counters], ...]] = ContextVar(
    "aioregistry_scopes", default=()
)


class Meter:
    """One client's counters (``total``) and the per-task scopes open on them."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = Counters()

    def _scoped(self) -> list[Counters]:
        """The counters of the scopes open in this context on this meter (a scan's)."""
        return [counters for meter, counters in _SCOPES.get() if meter is self]

    def request(self, kind: str) -> None:
        """An HTTP exchange of ``kind`` (``manifest``, ``token``...) starts."""
        self.total.requests[kind] += 1
        for counters in self._scoped():
            counters.requests[kind] += 1

    def received(self, size: int) -> None:
        """A body of ``size`` bytes was read."""
        self.total.bytes_received += size
        for counters in self._scoped():
            counters.bytes_received += size

    def retry(self) -> None:
        self.total.retries += 1
        for counters in self._scoped():
            counters.retries += 1

    def hedge(self) -> None:
        self.total.hedges += 1
        for counters in self._scoped():
            counters.hedges += 1

    def refused(self) -> None:
        self.total.refused += 1
        for counters in self._scoped():
            counters.refused += 1

    def token(self) -> None:
        self.total.tokens_fetched += 1
        for counters in self._scoped():
            counters.tokens_fetched += 1

    @contextmanager
    def counting(self) -> Iterator[Counters]:
        """Count this task's work (and its children's) into fresh `Counters` as well."""
        counters = Counters()
        reset = _SCOPES.set((*_SCOPES.get(), (self, counters)))
        try:
            yield counters
        finally:
            _SCOPES.reset(reset)
