"""The audit as one self-contained HTML page: ``render_report(summary, rows)``.

The page is a Jinja2 template (``templates/report.html.j2``, autoescaped: tag names,
annotations and error messages come from the registry and are attacker-controlled) with its
stylesheet and script inline and its charts as inline SVG computed in `_report_charts`.
The rows travel once, as a JSON data block (``<script type="application/json">``) that a
small script pages through, sorts and filters, writing cells with ``textContent`` only; in
the block ``<``, ``>`` and ``&`` are written as JSON escapes, so no string can end it.

Nothing is fetched when the page is opened: its Content-Security-Policy allows no source
at all (``default-src 'none'``) except the page's own stylesheet and script, named by their
SHA-256 hashes rather than by ``'unsafe-inline'``, so that markup which slipped past the
escaping still could not run a script of its own. Jinja2 is the optional extra ``report``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson

from . import _report_charts as charts
from ._exceptions import UsageError
from ._version import __version__

if TYPE_CHECKING:
    import jinja2

__all__ = ["MISSING_JINJA2", "csp_hash", "render_report", "require_jinja2", "rows_json"]

MISSING_JINJA2 = "the html report needs Jinja2: pip install 'aioregistry[report]'"
_TEMPLATES = "templates"

# JSON keeps "<", ">" and "&" only inside strings, where these escapes mean the same.
_SCRIPT_SAFE = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def rows_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as JSON that can stand inside a ``<script>`` element: no ``<``, ``>``, ``&``."""
    return orjson.dumps(list(rows), default=str).decode().translate(_SCRIPT_SAFE)


def csp_hash(text: str) -> str:
    """The CSP source expression that allows one inline element holding exactly ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _asset(name: str) -> str:
    text = (
        resources.files(__package__).joinpath(_TEMPLATES).joinpath(name).read_text(encoding="utf-8")
    )
    if "</" in text:  # would end the element it is inlined in (and none is needed)
        raise AssertionError(f"{name} holds '</'")
    return text


@cache
def _environment() -> jinja2.Environment:
    try:
        import jinja2  # noqa: PLC0415 (optional: only the html report needs it)
    except ImportError as exc:
        raise UsageError(MISSING_JINJA2) from exc
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, _TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["bytes"] = charts.format_bytes
    environment.filters["number"] = charts.format_number
    return environment


def require_jinja2() -> None:
    """Raise `UsageError` naming the extra to install unless Jinja2 can be imported."""
    _environment()


def render_report(
    summary: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "Registry audit",
    generated: datetime | None = None,
) -> str:
    """The audit as one HTML page: ``summary`` and ``rows`` as ``audit --format json`` gives
    them. Raises `UsageError` naming the extra to install when Jinja2 is missing."""
    environment = _environment()
    script, style = _asset("report.js"), _asset("report.css")
    from markupsafe import Markup  # noqa: PLC0415 (Jinja2's own dependency)

    when = (generated or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return environment.get_template("report.html.j2").render(
        title=title,
        version=__version__,
        generated=when.strftime("%Y-%m-%d %H:%M UTC"),
        summary=summary,
        total_rows=len(rows),
        errors=sum(1 for row in rows if row.get("error")),
        age=charts.age_chart(rows),
        size=charts.size_chart(rows),
        coverage=charts.coverage_chart(rows),
        shares=charts.shares(rows),
        script=Markup(script),  # noqa: S704 (our own file, checked to hold no "</")
        style=Markup(style),  # noqa: S704 (same)
        # quoted source expressions, not text: their quotes are the CSP's own
        script_hash=Markup(csp_hash(script)),  # noqa: S704 (base64 in quotes)
        style_hash=Markup(csp_hash(style)),  # noqa: S704 (same)
        rows_json=Markup(rows_json(rows)),  # noqa: S704 (JSON with <, >, & escaped)
    )
