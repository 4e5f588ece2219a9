"""What came back: a finished exchange, and what an error status means.

`Response` is a whole (capped) answer. `error_for_response` turns an error status and its
body (an OCI ``{"errors": [...]}`` document, plain text or HTML) into a `ResponseError`
subclass whose message carries the registry's own words, made safe to print: one printable
line, bounded, with URLs redacted (`redact_url`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from multidict import CIMultiDictProxy
from yarl import URL

from ._exceptions import (
    ErrorDetail,
    Forbidden,
    InvalidContent,
    NotFound,
    ResponseError,
    TooManyRequests,
    Unauthorized,
)
from ._models import load_object

__all__ = ["ERROR_BODY_LIMIT", "Response", "error_for_response", "redact_url", "retry_after"]

ERROR_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Response:
    """A finished HTTP exchange: status, headers and the whole (capped) body."""

    method: str
    url: str
    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def redact_url(url: str | URL) -> str:
    """A URL fit for messages: no user info, no query values (they may hold state or secrets)."""
    parsed = URL(url) if isinstance(url, str) else url
    if parsed.user or parsed.password:
        parsed = parsed.with_user(None)
    if parsed.query_string:
        parsed = parsed.with_query(
            {k: "..." if k not in ("n", "last") else v for k, v in parsed.query.items()}
        )
    return str(parsed)


def _one_line(text: str, limit: int = 300) -> str:
    """Server-chosen text fit for a message: printable, one line, at most ``limit`` chars."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` value asks for (seconds or an HTTP date); None if unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)  # the RFC says integer seconds; some servers send fractions
    except ValueError:
        pass
    else:
        return seconds if 0 <= seconds < float("inf") else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_details(body: bytes) -> tuple[ErrorDetail, ...]:
    try:
        data = load_object(body, "an error body")
    except InvalidContent:
        return ()  # plain text or HTML: the message quotes it instead
    errors = data.get("errors")
    if not isinstance(errors, list):
        return ()
    return tuple(
        ErrorDetail(str(e.get("code", "")), str(e.get("message", "")), e.get("detail"))
        for e in errors
        if isinstance(e, dict)
    )


def error_for_response(resp: Response, *, what: str | None = None) -> ResponseError:
    """The `ResponseError` subclass for an error status, with the registry's own words."""
    details = _error_details(resp.body)
    if details:
        said = _one_line(
            "; ".join(f"{d.code}: {d.message}" if d.message else d.code for d in details)
        )
    else:
        text = resp.body.decode("utf-8", "replace").strip()
        looks_html = text[:1] == "<"
        said = "" if looks_html else _one_line(text, 200)
    shown = redact_url(resp.url)
    message = f"{resp.method} {shown}: {resp.status} {resp.reason}".rstrip()
    if what:
        message = f"{what}: {message}"
    if said:
        message = f"{message}: {said}"
    kwargs = {
        "status": resp.status,
        "method": resp.method,
        "url": shown,
        "errors": details,
        "body": resp.body[:2048].decode("utf-8", "replace"),
        "headers": {k: v for k, v in resp.headers.items() if k.lower() != "set-cookie"},
    }
    if resp.status == 401:
        return Unauthorized(message, **kwargs)  # type: ignore[arg-type]
    if resp.status == 403:
        return Forbidden(message, **kwargs)  # type: ignore[arg-type]
    if resp.status == 404:
        return NotFound(message, **kwargs)  # type: ignore[arg-type]
    if resp.status == 429:
        return TooManyRequests(
            message,
            retry_after=retry_after(resp.header("Retry-After")),
            **kwargs,  # type: ignore[arg-type]
        )
    return ResponseError(message, **kwargs)  # type: ignore[arg-type]
