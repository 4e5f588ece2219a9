"""The client's tunables as small frozen values: deadlines, pool and rate, retries."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "DEFAULT_RETRIES", "DEFAULT_TIMEOUTS", "Limits", "Retries", "Timeouts"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Deadlines in seconds: ``connect`` (incl. TLS), ``read`` (between bytes), ``total``."""

    connect: float = 10.0
    read: float = 60.0
    total: float | None = 300.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Connection pool size and request rate.

    ``max_connections`` in all and ``per_host`` for one host (0: no cap); the pool is sized
    for a scan's adaptive concurrency, which may reach 256 requests in flight to a distant
    registry. ``requests_per_second`` caps the requests started per host (None: no cap).
    """

    max_connections: int = 256
    per_host: int = 0
    requests_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class Retries:
    """Retries of idempotent requests (GET, HEAD) on 429, 502, 503, 504, dropped connections
    and timeouts.

    ``attempts`` counts the first try; waits start at ``backoff`` seconds and double, with full
    jitter; a server's ``Retry-After`` (seconds or an HTTP date) is honoured up to
    ``max_wait``, beyond which the error is returned at once. No retry starts later than
    ``total`` seconds after the first try. A 429 or 503 pauses every request to that host,
    not just the one that got it (`_pacing.HostPacer`). ``Retries(attempts=1)`` switches
    retrying off.
    """

    attempts: int = 4
    backoff: float = 0.25
    max_wait: float = 10.0
    total: float = 60.0


DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_LIMITS = Limits()
DEFAULT_RETRIES = Retries()
