"""Image references and repository names, parsed and normalised.

An image reference names a manifest in a registry. It is written
``[host[:port]/]path[:tag][@digest]``, and the parser reads it in the same order a person
would: the digest after the first ``@``, then the tag after the last ``:`` that comes after
the last ``/``, then, of what remains, the host and the repository path.

The first ``/``-separated component is a registry host only when it could not be a
repository path component: when it contains a ``.`` or a ``:`` (``example.com``,
``127.0.0.1:5000``), is exactly ``localhost``, or is a bracketed IPv6 literal (``[::1]:5000``;
one with an embedded IPv4 part, ``[::ffff:192.0.2.33]``, is outside the grammar).
Anything else belongs to the path, and the registry is Docker Hub: ``org/app`` means
``registry-1.docker.io/org/app``. The host is lower-cased, since host names are
case-insensitive; a port must be a number from 1 to 65535.

Docker Hub goes by three names, ``docker.io``, ``index.docker.io`` and
``registry-1.docker.io``; all three become ``registry-1.docker.io``, the host that serves
the API. On Docker Hub, and only there, a path of a single component is an official image
and gets ``library/`` in front: ``ubuntu`` and ``docker.io/ubuntu`` are both
``registry-1.docker.io/library/ubuntu``, while ``127.0.0.1:5000/ubuntu`` stays ``ubuntu``.

A repository path is one or more components joined by ``/`` (``org/team/app`` is fine). A
component is lower-case letters and digits, with single ``.`` or ``_``, a double ``__``, or
any run of ``-`` allowed between them; upper case is never allowed in a path. The path is at
most 255 characters, counted as distribution/reference v0.6.0 does: after normalisation
(``library/ubuntu``) and without the host, which has limits of its own. A name that is nothing
but 64 lower-case hex digits (no host, tag or digest) is an image ID, not the repository
``library/<hex>``, and is refused as ``ParseNormalizedNamed`` refuses it; ``docker.io/<hex>``
names the repository.

A tag is 1 to 128 characters of letters, digits, ``_``, ``.`` and ``-``, and does not start
with ``.`` or ``-``. A digest is ``algorithm:encoded`` by the OCI image specification;
``sha256`` needs exactly 64 and ``sha512`` exactly 128 lower-case hex characters. A
reference with neither tag nor digest gets the tag ``latest``; one with only a digest has
no tag; one with both keeps both, and the registry is asked by the digest.

Nothing is trimmed or guessed: whitespace, an empty component (``a//b``), an upper-case
path component or a bad tag, digest or port raises `InvalidReference`, whose message quotes
the whole input and names the part that is wrong.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from aioregistry._exceptions import InvalidReference

__all__ = [
    "DEFAULT_TAG",
    "DOCKER_HUB_REGISTRY",
    "Reference",
    "Repository",
    "is_loopback_host",
    "parse_digest",
    "parse_reference",
    "parse_registry",
    "parse_repository",
    "registry_key",
    "split_digest",
]

DOCKER_HUB_REGISTRY = "registry-1.docker.io"
DEFAULT_TAG = "latest"

_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", DOCKER_HUB_REGISTRY})
_NAME_TOTAL_LENGTH_MAX = 255
_QUOTE_MAX = 300

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DOMAIN_COMPONENT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:]+")  # no '.': distribution's grammar has no IPv4 tail
_PORT = re.compile(r"[0-9]+")
_ALGORITHM = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*")
_ENCODED = re.compile(r"[A-Za-z0-9=_-]+")
_REGISTERED_ALGORITHMS = {"sha256": 64, "sha512": 128}
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_IMAGE_ID = re.compile(r"[0-9a-f]{64}")
_HOST_LENGTH_MAX = 255

_Fail = Callable[[str], NoReturn]

_PATH_COMPONENT_RULE = (
    "path components are lower-case letters and digits separated by '.', '_', '__' or '-'"
)


@dataclass(frozen=True, slots=True)
class Repository:
    """A repository in a registry: ``registry-1.docker.io/library/ubuntu``.

    Build one with `parse_repository`, which normalises; the constructor only checks that
    ``registry`` is a lower-case host with an optional port and ``path`` a valid path.
    """

    registry: str
    path: str

    def __post_init__(self) -> None:
        fail = _failer(f"{self.registry}/{self.path}", "repository")
        if _check_host(self.registry, fail) != self.registry:
            fail(f"registry host {_quote(self.registry)} must be lower case")
        _check_path(self.path, fail)

    def __str__(self) -> str:
        return f"{self.registry}/{self.path}"


@dataclass(frozen=True, slots=True)
class Reference:
    """A manifest in a repository, named by a tag, a digest, or both.

    Build one with `parse_reference`; the constructor checks the tag and the digest and
    that there is at least one of them.
    """

    repository: Repository
    tag: str | None
    digest: str | None

    def __post_init__(self) -> None:
        fail = _failer(_format_reference(self.repository, self.tag, self.digest), "reference")
        if self.tag is None and self.digest is None:
            fail("a reference needs a tag or a digest")
        if self.tag is not None:
            _check_tag(self.tag, fail)
        if self.digest is not None:
            _check_digest_in_reference(self.digest, fail)

    @property
    def registry(self) -> str:
        """The registry host, with its port if it has one."""
        return self.repository.registry

    @property
    def path(self) -> str:
        """The repository path, e.g. ``library/ubuntu``."""
        return self.repository.path

    @property
    def identifier(self) -> str:
        """What goes into ``/v2/<path>/manifests/<identifier>``: the digest, else the tag."""
        if self.digest is not None:
            return self.digest
        if self.tag is None:  # pragma: no cover - __post_init__ rules this out
            raise InvalidReference(f"invalid reference {_quote(str(self))}: no tag or digest")
        return self.tag

    def with_digest(self, digest: str) -> Reference:
        """The same repository and tag, pinned to ``digest`` (which is validated)."""
        return Reference(self.repository, self.tag, parse_digest(digest))

    def __str__(self) -> str:
        return _format_reference(self.repository, self.tag, self.digest)


def parse_reference(text: str) -> Reference:
    """Parse ``[host[:port]/]path[:tag][@digest]`` into a normalised `Reference`.

    With neither tag nor digest the tag is ``latest``; with only a digest the tag is None.
    Raises `InvalidReference` naming the bad part.
    """
    fail = _failer(text, "reference")
    _refuse_image_id(text, fail)
    name, tag, digest = _split_reference(text, fail)
    repository = _parse_name(name, fail)
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(repository, tag, digest)


def parse_repository(text: str) -> Repository:
    """Parse ``[host[:port]/]path`` into a normalised `Repository`.

    The host and path rules are those of `parse_reference`; a tag or digest is an error.
    """
    fail = _failer(text, "reference")
    _refuse_image_id(text, fail)
    name, tag, digest = _split_reference(text, fail)
    if digest is not None:
        fail(f"repository name must not carry a digest (found {_quote(digest)})")
    if tag is not None:
        fail(f"repository name must not carry a tag (found {_quote(tag)})")
    return _parse_name(name, fail)


def parse_registry(text: str) -> str:
    """A registry ``host[:port]``, normalised (Docker Hub's three names become one).

    A word that could only be a repository path component (no ``.``, no ``:``, not
    ``localhost``) is not a registry host: `InvalidReference`, rather than Docker Hub.
    """
    _check_scheme(text, _failer(text, "registry"), "registry")
    host = parse_repository(f"{text}/x").registry
    if host == DOCKER_HUB_REGISTRY and text.lower() not in _DOCKER_HUB_ALIASES:
        raise InvalidReference(
            f"invalid registry {_quote(text)}: a registry host needs a '.' or a ':port', "
            "or is 'localhost'"
        )
    return host


def registry_key(text: str) -> str:
    """A registry as config files and callers spell it, reduced to one key per registry.

    Lenient where `parse_registry` is strict, as docker's ``ConvertToHostname`` is: scheme and
    path are dropped (``https://host:5000/v2/`` is ``host:5000``), case is folded, and every
    name of Docker Hub (``docker.io``, ``index.docker.io``, ``https://index.docker.io/v1/``)
    becomes `DOCKER_HUB_REGISTRY`.
    """
    host = text.strip().lower()
    host = host.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return DOCKER_HUB_REGISTRY if host in _DOCKER_HUB_ALIASES else host


def parse_digest(text: str) -> str:
    """Check that ``text`` is an OCI digest, ``algorithm:encoded``, and return it unchanged.

    ``sha256`` needs 64 and ``sha512`` 128 lower-case hex characters; other algorithms follow
    the generic grammar. Raises `InvalidReference`.
    """
    _check_digest(text, _failer(text, "digest"))
    return text


def split_digest(digest: str) -> tuple[str, str]:
    """Validate ``digest`` and split it into ``(algorithm, encoded)``."""
    algorithm, _, encoded = parse_digest(digest).partition(":")
    return algorithm, encoded


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (maybe with a port, maybe a bracketed IPv6 literal) is this machine.

    True for ``localhost`` and for addresses in 127.0.0.0/8 or ``::1`` (also IPv4-mapped);
    False for any other name, including ones that might resolve to loopback, and for
    anything that is not a host at all.
    """
    bare = _strip_port(host)
    if bare is None:
        return False
    if bare.lower() in {"localhost", "localhost."}:
        return True
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


# --- helpers -------------------------------------------------------------------------------


def _failer(text: str, what: str) -> _Fail:
    """A function raising ``InvalidReference('invalid <what> "<text>": <problem>')``."""
    prefix = f"invalid {what} {_quote(text)}: "

    def fail(problem: str) -> NoReturn:
        raise InvalidReference(prefix + problem)

    return fail


def _strip_port(host: str) -> str | None:
    """``host`` without its ``:port`` and IPv6 brackets, or None when the port is malformed."""
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and _PORT.fullmatch(rest[1:]))):
            return None
        return host[1:end]
    if host.count(":") == 1:
        bare, _, port = host.partition(":")
        return bare if _PORT.fullmatch(port) else None
    return host  # a name without a port, or an unbracketed IPv6 literal


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")  # "://" is in no reference: a URL


def _check_scheme(text: str, fail: _Fail, what: str) -> None:
    """A URL where a reference or a registry belongs: the hint is to drop the scheme."""
    scheme = _SCHEME.match(text)
    if scheme is None:
        return
    how = {"http": "; --plain-http talks plain HTTP", "https": "; HTTPS is the default"}
    fail(f"drop the {_quote(scheme[0])} (a {what} has no scheme{how.get(scheme[1].lower(), '')})")


def _quote(text: str) -> str:
    """Double-quote ``text`` with escapes, as Go's %q would; very long text is shortened."""
    if len(text) > _QUOTE_MAX:
        return json.dumps(text[:_QUOTE_MAX], ensure_ascii=False)[:-1] + '..."'
    return json.dumps(text, ensure_ascii=False)


def _format_reference(repository: Repository, tag: str | None, digest: str | None) -> str:
    text = str(repository)
    if tag is not None:
        text += f":{tag}"
    if digest is not None:
        text += f"@{digest}"
    return text


def _split_reference(text: str, fail: _Fail) -> tuple[str, str | None, str | None]:
    """Split ``text`` into name, tag and digest, checking the tag and digest."""
    if not text:
        raise InvalidReference("empty reference")
    _check_scheme(text, fail, "reference")
    if text != text.strip():
        fail("leading or trailing whitespace")
    name, at, digest_text = text.partition("@")
    digest: str | None = None
    if at:
        if not digest_text:
            fail("empty digest after '@'")
        _check_digest_in_reference(digest_text, fail)
        digest = digest_text
    tag: str | None = None
    colon = name.rfind(":")
    slash = name.rfind("/")
    if colon > slash and (slash >= 0 or not name.startswith("[")):
        name, tag = name[:colon], name[colon + 1 :]
        if not tag:
            fail("empty tag after ':'")
        _check_tag(tag, fail)
    if not name:
        fail("empty repository name")
    return name, tag, digest


def _refuse_image_id(text: str, fail: _Fail) -> None:
    """As ``ParseNormalizedNamed``: the whole input being 64 hex digits is an image ID."""
    if _IMAGE_ID.fullmatch(text):
        fail(
            "64 hex digits are an image ID, not a repository name "
            f"(docker.io/{text[:12]}... names the repository)"
        )


def _parse_name(name: str, fail: _Fail) -> Repository:
    """Split ``name`` into host and path, check both and normalise Docker Hub."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if len(first) > _HOST_LENGTH_MAX:  # a DNS name is at most 253; spare the checks
            fail(f"registry host is too long ({len(first)} characters, at most {_HOST_LENGTH_MAX})")
        registry = _check_host(first, fail)
        path = rest
    elif not slash and first.startswith("["):
        fail(f"registry host {_quote(first)} is not followed by a repository path")
    else:
        registry = DOCKER_HUB_REGISTRY
        path = name
    if not path:
        fail("empty repository path")
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB_REGISTRY
        if "/" not in path:
            path = f"library/{path}"
    # distribution/reference v0.6.0 counts the path only ("Exclude domain from name length
    # check"): a registry serves HOST/<255-character path>, and so must we.
    if len(path) > _NAME_TOTAL_LENGTH_MAX:
        fail(
            f'repository path {_quote(path[:8])[:-1]}..." is too long '
            f"({len(path)} characters, at most {_NAME_TOTAL_LENGTH_MAX})"
        )
    _check_path(path, fail)
    return Repository(registry, path)


def _check_path(path: str, fail: _Fail) -> None:
    for component in path.split("/"):
        if not component:
            fail(f"repository path {_quote(path)} has an empty component")
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if component != component.lower() and _PATH_COMPONENT.fullmatch(component.lower()):
            fail(f"repository path component {_quote(component)} must be lower case")
        fail(f"repository path component {_quote(component)} is invalid: {_PATH_COMPONENT_RULE}")


def _check_host(host: str, fail: _Fail) -> str:
    """Check ``host[:port]`` (``[ipv6][:port]`` too) and return it with the host lower-cased."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            fail(f"registry host {_quote(host)} has no closing ']'")
        literal, port_part = host[1:end], host[end + 1 :]
        if not _IPV6_CHARS.fullmatch(literal) or not _is_ipv6(literal):
            why = (
                "an IPv6 address with an embedded IPv4 part is outside the reference grammar "
                "(write it in hex)"
                if "." in literal and "%" not in literal and _is_ipv6(literal)
                else f"{_quote(literal)} is not an IPv6 address"
            )
            fail(f"registry host {_quote(host)}: {why}")
        if port_part and not port_part.startswith(":"):
            fail(f"registry host {_quote(host)} has {_quote(port_part)} after the IPv6 address")
        name, port = f"[{literal}]", port_part[1:] if port_part else None
    else:
        name, colon, port_text = host.partition(":")
        port = port_text if colon else None
        if not name:
            fail(f"registry host {_quote(host)} has an empty host name")
        for component in name.split("."):
            if not component:
                fail(f"registry host {_quote(host)} has an empty domain component")
            if not _DOMAIN_COMPONENT.fullmatch(component):
                fail(
                    f"registry host {_quote(host)}: domain component {_quote(component)} "
                    "must be letters, digits and inner '-'"
                )
    if port is not None:
        if not _PORT.fullmatch(port):
            fail(f"registry port {_quote(port)} is not a number")
        if len(port) > 5 or not 1 <= int(port) <= 65535:
            fail(f"registry port {port} is out of range (1-65535)")
        return f"{name.lower()}:{port}"
    return name.lower()


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _check_tag(tag: str, fail: _Fail) -> None:
    if _TAG.fullmatch(tag):
        return
    if len(tag) > 128:
        fail(f"tag {_quote(tag)} is too long ({len(tag)} characters, at most 128)")
    if tag[:1] in {".", "-"}:
        fail(f"tag {_quote(tag)} must not start with {_quote(tag[0])}")
    fail(f"tag {_quote(tag)} may hold only letters, digits, '_', '.' and '-'")


def _check_digest_in_reference(digest: str, fail: _Fail) -> None:
    def nested(problem: str) -> NoReturn:
        fail(f"digest {_quote(digest)}: {problem}")

    _check_digest(digest, nested)


def _check_digest(digest: str, fail: _Fail) -> None:
    algorithm, colon, encoded = digest.partition(":")
    if not colon:
        fail("a digest is algorithm:encoded, e.g. sha256:<64 hex characters>")
    if not algorithm:
        fail("empty algorithm before ':'")
    if not _ALGORITHM.fullmatch(algorithm):
        fail(
            f"algorithm {_quote(algorithm)} must be lower-case letters and digits "
            "separated by '+', '.', '_' or '-'"
        )
    length = _REGISTERED_ALGORITHMS.get(algorithm)
    if length is not None:
        if len(encoded) != length:
            fail(f"{algorithm} needs {length} hex characters, got {len(encoded)}")
        if not _LOWER_HEX.fullmatch(encoded):
            fail(f"{algorithm} needs {length} hex characters in lower case: 0-9 and a-f")
        return
    if not encoded:
        fail(f"empty encoded part after {_quote(algorithm + ':')}")
    if not _ENCODED.fullmatch(encoded):
        fail(f"encoded part {_quote(encoded)} may hold only letters, digits, '=', '_' and '-'")
