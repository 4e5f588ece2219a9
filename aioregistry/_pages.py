"""Paginated lists (``tags/list``, ``_catalog``): every page, and no page twice.

The next page is the ``Link: <...>; rel="next"`` target (relative or absolute), never built
from ``last`` by hand. A page size is a hint: it is clamped where a registry is known to
refuse larger ones, and a registry that answers 400 or 413 to it is asked again without it.
A registry must not keep the client busy forever or lead it elsewhere: a link that repeats,
pages that add nothing, more than `MAX_PAGES` pages, or a link to another origin end the
listing with `InvalidContent`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from yarl import URL

from ._exceptions import InvalidContent, ResponseError, UsageError
from ._models import load_object
from ._responses import Response, redact_url
from ._session import Session

__all__ = ["LIST_LIMIT", "MAX_PAGES", "paginate", "parse_next_link"]

LIST_LIMIT = 64 * 1024 * 1024  # tag lists are unpaginated on some registries (GCR)
MAX_PAGES = 100_000  # 10 million tags at 100 a page; beyond that a registry is stringing us along
# Registries that refuse a page size above their own limit, by host suffix: clamped, so a
# large page_size costs no refused request there.
_PAGE_SIZE_LIMITS = ((".amazonaws.com", 1000), (".amazonaws.com.cn", 1000))
_LINK_NEXT = re.compile(r'<([^>]*)>\s*(?:;[^,]*?)?;\s*rel="?next"?', re.IGNORECASE)


async def paginate(
    session: Session, path: str, *, key: str, scope: str, page_size: int | None, what: str
) -> list[str]:
    """Every string of the ``key`` lists of ``path``'s pages, in order, each once."""
    if page_size is not None and page_size < 1:
        raise UsageError(f"page_size must be a positive number, not {page_size}")
    url = session.url(path)
    page_size = _page_size_for(url, page_size)
    if page_size is not None:
        url = url.with_query(n=str(page_size))
    asked_size = page_size is not None  # our own n is on the first request
    seen_urls: set[str] = set()
    items: dict[str, None] = {}  # ordered and de-duplicated across page boundaries
    while True:
        seen_urls.add(str(url))
        try:
            resp = await session.request(
                scope, "GET", url, max_body=LIST_LIMIT, what=what, kind=key
            )
        except ResponseError as exc:
            if not asked_size or exc.status not in (400, 413):
                raise
            # The registry refuses our page size (Quay: 413, ECR: 400): a page size is a
            # hint, so ask again without it and let the registry page as it likes.
            asked_size = False
            url = url.with_query(None)
            continue
        asked_size = False
        before = len(items)
        items.update(dict.fromkeys(_list_page(resp, key)))
        # ``url`` is on the registry's origin: the first page by construction, every later
        # one because parse_next_link refused any other.
        next_url = parse_next_link(resp.headers.getall("Link", []), url)
        if next_url is None:
            return list(items)
        if str(next_url) in seen_urls or len(items) == before:
            # A loop, or pages that add nothing under ever-new links: a registry that
            # would keep us busy forever.
            raise InvalidContent(
                f"{redact_url(url)}: pagination does not advance (next link {redact_url(next_url)})"
            )
        if len(seen_urls) >= MAX_PAGES:
            raise InvalidContent(f"{what}: more than {MAX_PAGES} pages; giving up")
        url = next_url


def parse_next_link(values: Sequence[str], current: URL) -> URL | None:
    """The ``rel="next"`` target of ``Link`` header ``values``, resolved against ``current``.

    None when there is no next link. A next link that leaves ``current``'s origin (another
    host, port or scheme) raises `InvalidContent`: a page must not lead the client, and its
    credentials, elsewhere.
    """
    for header in values:
        match = _LINK_NEXT.search(header)
        if match is None:
            continue
        try:
            target = current.join(URL(match.group(1)))
            origin = target.origin()  # a URL with no host (javascript:, file:) has none
        except ValueError as exc:  # yarl: a bad IPv6 literal, a port out of range...
            raise InvalidContent(
                f"{redact_url(current)}: next page link is not a usable URL ({exc})"
            ) from exc
        if origin != current.origin():
            raise InvalidContent(
                f"{redact_url(current)}: next page link points at another host ({origin})"
            )
        return target
    return None


def _page_size_for(url: URL, page_size: int | None) -> int | None:
    """``page_size`` within the registry's known limit (ECR answers 400 to ``n`` > 1000)."""
    if page_size is None:
        return None
    hostname = (url.host or "").lower()
    for suffix, limit in _PAGE_SIZE_LIMITS:
        if hostname.endswith(suffix):
            return min(page_size, limit)
    return page_size


def _list_page(resp: Response, key: str) -> list[str]:
    data = load_object(resp.body, f"{redact_url(resp.url)}: body")
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise InvalidContent(f"{redact_url(resp.url)}: {key!r} is not a list of strings")
    return items
