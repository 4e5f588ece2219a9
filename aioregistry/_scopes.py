"""Token scopes (docs/spec/auth/scope.md) and the repository types they name.

A scope is ``type[(class)]:name:actions``. The name may hold ``host:port``, so a scope is read
by splitting the type off the left and the actions off the right. Images are
``repository:NAME:pull``; plugins ``repository(plugin):NAME:pull``; the catalog
``registry:catalog:*``.
"""

from __future__ import annotations

from typing import Literal

from ._exceptions import UsageError

__all__ = ["CATALOG_SCOPE", "RepoType", "repository_scope", "scope_repository"]

RepoType = Literal["image", "plugin"]

CATALOG_SCOPE = "registry:catalog:*"
_REPO_TYPES = {"image": "repository", "plugin": "repository(plugin)"}


def repository_scope(path: str, actions: str = "pull", repo_type: str = "image") -> str:
    """``repository:library/ubuntu:pull`` or, for plugins, ``repository(plugin):name:pull``."""
    try:
        resource = _REPO_TYPES[repo_type]
    except KeyError:
        raise UsageError(
            f"invalid repository type {repo_type!r}: expected one of {', '.join(_REPO_TYPES)}"
        ) from None
    return f"{resource}:{path}:{actions}"


def scope_repository(scope: str) -> str | None:
    """The repository a ``repository[(class)]:name:actions`` scope names, else None."""
    kind, sep, rest = scope.partition(":")
    if not sep or not kind.startswith("repository"):
        return None
    name, sep, _ = rest.rpartition(":")
    return name if sep and name else None
