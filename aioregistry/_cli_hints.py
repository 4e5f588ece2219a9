"""Near misses on the command line: a registry ``HOST:PORT`` given where a repository or an
image belongs.

``127.0.0.1:5000`` parses as the Docker Hub image ``library/127.0.0.1`` with the tag
``5000`` (the first part of a name is a host only before a ``/``), so a command would ask
Docker Hub for it, or refuse it for carrying a tag. A name before a numeric tag that can only
be a host (a ``.`` in it, ``localhost``, an IPv6 literal) gets a hint to the command that
takes a registry instead. (A URL, ``http://host/x``, is `_references`' to refuse: the
library's callers make that mistake too.)
"""

from __future__ import annotations

import re

from ._exceptions import UsageError

__all__ = ["check_image", "check_repository", "check_scan_target", "registry_given"]

_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^/:@\[\]]+):[0-9]+")


def registry_given(text: str) -> bool:
    """Whether ``text`` is a registry ``HOST:PORT`` and nothing more."""
    match = _HOST_PORT.fullmatch(text)
    if match is None:
        return False
    host = match["host"]
    return host.startswith("[") or "." in host or host.lower() == "localhost"


def _refuse(text: str, expected: str, instead: str) -> UsageError:
    return UsageError(f'"{text}" is a registry, not {expected}: {instead}')


def check_repository(text: str) -> str:
    """``text``, unless it is a registry where a repository belongs (``tags -r``)."""
    if registry_given(text):
        raise _refuse(
            text, "a repository", f"`aioregistry catalog -r {text}` lists its repositories"
        )
    return text


def check_image(text: str) -> str:
    """``text``, unless it is a registry where an image belongs (``digest -i``)."""
    if registry_given(text):
        raise _refuse(text, "an image", f"name an image in it as {text}/REPO:TAG")
    return text


def check_scan_target(text: str, command: str = "scan") -> str:
    """``text``, unless it is a registry where ``scan`` (or ``audit``, the ``command``) takes
    a repository or an image."""
    if registry_given(text):
        raise _refuse(
            text,
            "a repository or an image",
            f"`aioregistry {command} --catalog {text}` {command}s all its repositories",
        )
    return text
