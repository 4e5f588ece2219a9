"""Listing: the tags of a repository and the repositories of a registry."""

from __future__ import annotations

from ._pages import paginate
from ._references import Repository
from ._scopes import CATALOG_SCOPE, RepoType
from ._session import Sessions

__all__ = ["catalog", "list_tags"]


async def list_tags(
    sessions: Sessions, repo: Repository, *, repo_type: RepoType, page_size: int | None
) -> list[str]:
    """Every tag of ``repo`` (``GET /v2/<name>/tags/list``, paginated)."""
    session, scope = await sessions.pull(repo, repo_type)
    return await paginate(
        session,
        f"/v2/{repo.path}/tags/list",
        key="tags",
        scope=scope,
        page_size=page_size,
        what=f"tags of {repo}",
    )


async def catalog(sessions: Sessions, host: str, *, page_size: int | None) -> list[str]:
    """Every repository name of registry ``host`` (``GET /v2/_catalog``, paginated)."""
    return await paginate(
        await sessions.get(host),
        "/v2/_catalog",
        key="repositories",
        scope=CATALOG_SCOPE,
        page_size=page_size,
        what=f"catalog of {host}",
    )
