"""Docker Hub's pull rate limit, as its manifest responses announce it.

Docker Hub sends ``ratelimit-limit: 100;w=21600``, ``ratelimit-remaining: 76;w=21600`` (the
IETF RateLimit draft's ``quota;w=window`` shape) and ``docker-ratelimit-source`` (the IP
address or account the limit is counted for) on manifest requests. A ``HEAD`` does not count
against the limit, so it is the way to look. Other registries send nothing: every field is
then None. The parser is lenient on purpose: a header it cannot read gives None for that
field, never an exception, since a rate-limit display must not break a pull.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["LIMIT_HEADER", "RateLimit", "parse_rate_limit"]

LIMIT_HEADER = "ratelimit-limit"
REMAINING_HEADER = "ratelimit-remaining"
SOURCE_HEADER = "docker-ratelimit-source"
_MAX_SOURCE = 256  # a source is an address or an account id; longer is not one


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A registry's announced pull limit; a field is None when the registry did not say.

    ``limit`` pulls are allowed per ``window`` seconds, ``remaining`` are left, counted for
    ``source`` (Docker Hub: the client's IP address or the account's id).
    """

    limit: int | None = None
    remaining: int | None = None
    window: int | None = None
    source: str | None = None

    @property
    def known(self) -> bool:
        """Whether the registry announced any limit at all."""
        return self.limit is not None or self.remaining is not None

    def as_dict(self) -> dict[str, int | str | None]:
        """``{"limit", "remaining", "window", "source"}``, as the CLI prints it."""
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "window": self.window,
            "source": self.source,
        }


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit:
    """Read the rate-limit headers of a response (any mapping; case-insensitive lookup).

    Never raises: a value that is not ``N`` or ``N;w=SECONDS`` gives None for its field.
    When a header lists several policies (``100, 100;w=21600``), the first quota is the
    limit and the first ``w`` found is the window; the limit header's window wins over the
    remaining header's.
    """
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        lowered.setdefault(str(name).lower(), value)  # a repeated header: the first counts
    limit, limit_window = _quota(lowered.get(LIMIT_HEADER))
    remaining, remaining_window = _quota(lowered.get(REMAINING_HEADER))
    return RateLimit(
        limit=limit,
        remaining=remaining,
        window=limit_window if limit_window is not None else remaining_window,
        source=_source(lowered.get(SOURCE_HEADER)),
    )


def _quota(value: object) -> tuple[int | None, int | None]:
    """``"100;w=21600"`` → ``(100, 21600)``; what cannot be read → None."""
    if not isinstance(value, str):
        return None, None
    quota: int | None = None
    window: int | None = None
    for index, policy in enumerate(value.split(",")):
        first, *params = policy.split(";")
        if index == 0:
            quota = _count(first)
        for param in params:
            name, sep, number = param.partition("=")
            if sep and name.strip().lower() == "w" and window is None:
                window = _count(number)
    return quota, window


def _count(text: str) -> int | None:
    text = text.strip().strip('"')
    # isdecimal() alone accepts other scripts' digits; ASCII is what the headers carry.
    if not text or not text.isascii() or not text.isdecimal() or len(text) > 18:
        return None
    return int(text)


def _source(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > _MAX_SOURCE or not text.isprintable():
        return None
    return text
