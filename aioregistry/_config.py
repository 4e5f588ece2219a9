"""The client's tunables as small frozen values: deadlines, pool and rate, retries."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "DEFAULT_RETRIES", "DEFAULT_TIMEOUTS", "Limits", "Retries", "Timeouts"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Deadlines of one try, in seconds: ``connect`` (TLS included), ``read`` (each wait for
    the registry's bytes, the first answer's included), ``total`` (the whole try).

    A try that times out is retried like a lost connection (`Retries`), so a registry that
    accepts connections and never answers fails after about ``attempts`` x the deadline
    plus the backoff: 4 x 7 s and at most 1.75 s of backoff, under 30 s, by default. The
    CLI's ``--timeout N`` sets ``connect`` and ``read`` to N.
    """

    connect: float = 7.0
    read: float = 7.0
    total: float | None = 300.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Connection pool size and request rate.

    ``max_connections`` in all and ``per_host`` for one host (0: no cap); the pool is sized
    for a scan's adaptive concurrency, which may reach 256 requests in flight to a distant
    registry. ``requests_per_second`` caps the requests started per host (None: no cap).

    ``docker_hub_requests_per_second`` is the cap on Docker Hub's registry when
    ``requests_per_second`` is None: Docker Hub limits every IP address to "thousands of
    requests per minute" over all its services and answers a bare 429 beyond (its abuse
    limit, apart from the pull limit); 25 per second is 1,500 a minute, below the least that
    phrase can mean, and leaves room for the pulls of other tools on the same machine. None
    lifts it.
    """

    max_connections: int = 256
    per_host: int = 0
    requests_per_second: float | None = None
    docker_hub_requests_per_second: float | None = 25.0


@dataclass(frozen=True, slots=True)
class Retries:
    """Retries of idempotent requests (GET, HEAD) on 429, 502, 503, 504, dropped connections
    and timeouts.

    ``attempts`` counts the first try; waits start at ``backoff`` seconds and double, with full
    jitter; a server's ``Retry-After`` (seconds or an HTTP date) is honoured up to
    ``max_wait``, beyond which the error is returned at once. No retry starts later than
    ``total`` seconds after the first try. A 429 (or a 503 with ``Retry-After``) also cuts
    the rate of requests to that host (`_pacing.HostPacer`). ``Retries(attempts=1)`` switches
    retrying off.

    ``budget``: the retry budget per host (None: unbounded), as the AWS SDKs' retry quota:
    a retry costs 5 tokens (10 after a timeout or a lost connection), each answer that is no
    refusal earns one back, and while the budget is short retries wait for answers to earn it
    back (until ``total``), so a registry in trouble never sees a storm of retries.

    ``hedge_after`` and ``hedge_share``: a GET or HEAD whose answer has not come after twice
    the 90th percentile of the host's recent answers (at least ``hedge_after`` seconds; the
    time spent opening its connection left out), once 16 requests sent after it have been
    answered and while at most a quarter of those in flight are as late, is sent again (and
    once more if that is late too); the first good answer wins. At most ``hedge_share`` of
    the requests are hedges, plus 20 saved up (0 switches hedging off).
    """

    attempts: int = 4
    backoff: float = 0.25
    max_wait: float = 10.0
    total: float = 60.0
    budget: int | None = 500
    hedge_after: float = 0.2
    hedge_share: float = 0.05


DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_LIMITS = Limits()
DEFAULT_RETRIES = Retries()
