"""The ``aioregistry`` command line: its arguments, and `main`.

The commands themselves are `_cli_commands`' (and `_cli_scan`'s), imported once the
arguments are parsed: ``--help``, ``--version`` and a usage error cost the interpreter and
argparse, not aiohttp, anyio or rich (tests/test_cli.py checks what they import).
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import Callable, Sequence

from ._audit_output import audit_formats
from ._output import FORMATS
from ._version import __version__

__all__ = ["console", "main"]


def _cache_options(parser: argparse.ArgumentParser, *, no_cache: bool) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--cache",
        metavar="DIR",
        help="keep manifests and configs by digest in DIR (default: the user cache directory, "
        "~/.cache/aioregistry on Linux; it must be private to you: mode 0700)",
    )
    if no_cache:
        group.add_argument(
            "--no-cache",
            action="store_true",
            help="neither read nor write the cache: fetch everything, as a first run does",
        )


def _common(parser: argparse.ArgumentParser) -> None:
    _cache_options(parser, no_cache=True)
    parser.add_argument(
        "-t",
        "--type",
        dest="repo_type",
        choices=("image", "plugin"),
        default="image",
        help="repository type: image (default) or plugin (scope repository(plugin):NAME:pull)",
    )
    parser.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the registry's TLS certificate"
    )
    parser.add_argument(
        "--ca-file", metavar="PEM", help="also trust the CA certificates in this file"
    )
    parser.add_argument(
        "--plain-http", action="store_true", help="talk HTTP, not HTTPS, to the registry"
    )
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback when something goes wrong"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        # The default is _config's Timeouts(), written out so that the parser needs no
        # machinery (tests/test_cli_errors.py holds them equal).
        help="how long one try of a request waits for the connection (TLS included) and for "
        "each of the registry's answers (default 7); a request is tried up to 4 times",
    )
    parser.add_argument(
        "-u",
        "--username",
        metavar="USER",
        help="log in as USER (with --password-stdin); otherwise DOCKER_USER/DOCKER_PASSWORD, "
        "docker's config.json or containers' auth.json are used",
    )
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password (or token) for --username from stdin",
    )


def _concurrency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid concurrency {text!r}: expected an integer >= 1")
    return value


def _positive(what: str, expected: str) -> Callable[[str], float]:
    """An argparse type: a finite number > 0, else "invalid WHAT 'TEXT': expected EXPECTED"."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = 0.0
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: expected {expected}")
        return value

    return parse


_rate = _positive("rate", "a number > 0")
_seconds = _positive("timeout", "seconds > 0")


def _target_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """What ``scan`` and ``audit`` both take: the targets, the catalog, the platform and the
    pace."""
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="REPO_OR_IMAGE",
        help=f"a repository (every tag is {verb}ed) or an image with a :tag or @digest",
    )
    parser.add_argument(
        "--catalog", metavar="REGISTRY", help=f"also {verb} every repository of this registry"
    )
    parser.add_argument(
        "--platform",
        metavar="OS/ARCH[/VARIANT]|all",
        help="platform of multi-arch tags (default linux/amd64); all: one result per platform",
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        default=None,
        metavar="N",
        # The numbers are _scan's DEFAULT_SCAN_CONCURRENCY and MAX_SCAN_CONCURRENCY, written
        # out so that the parser needs no scan machinery (tests/test_cli.py holds them equal).
        help="at most N requests in flight per registry (default: adaptive, from "
        "64 up to 256, just under what the registry admits when it refuses requests)",
    )
    parser.add_argument(
        "--max-rps",
        type=_rate,
        metavar="RPS",
        help="start at most RPS requests per second to each registry (default: no cap)",
    )


def _scan_arguments(parser: argparse.ArgumentParser) -> None:
    _target_arguments(parser, "scan")
    parser.add_argument(
        "--what",
        choices=("digest", "manifest", "config"),
        default="config",
        help="what to fetch for each tag (default config; digest uses HEAD only)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: table on a terminal, jsonl otherwise)",
    )
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first tag that fails")
    parser.add_argument(
        "--include-digest-tags",
        action="store_true",
        help="also scan the tags that are referrer bookkeeping, not images "
        "(sha256-<hex> fallback indexes, cosign's sha256-<hex>.sig/.att/.sbom; hidden by default)",
    )
    parser.add_argument(
        "--referrers",
        action="store_true",
        help="add to each result its referrers: signatures, SBOMs, attestations "
        "(the referrers API, else the fallback tag, and cosign's tags)",
    )


def _audit_arguments(parser: argparse.ArgumentParser) -> None:
    _target_arguments(parser, "audit")
    parser.add_argument("--include", metavar="REGEX", help="only tags this matches (searched)")
    parser.add_argument("--exclude", metavar="REGEX", help="leave out tags this matches")
    when = "(e.g. 90d, 12h, 2w: hours, days, weeks)"
    parser.add_argument(
        "--older-than", metavar="AGE", help=f"only images built longer ago than AGE {when}"
    )
    parser.add_argument(
        "--newer-than", metavar="AGE", help=f"only images built within the last AGE {when}"
    )
    parser.add_argument(
        "--missing-platform",
        metavar="OS/ARCH[/VARIANT]",
        help="only tags that do not offer this platform, e.g. linux/arm64",
    )
    parser.add_argument(
        "--unsigned", action="store_true", help="only tags that no signature refers to"
    )
    parser.add_argument(
        "--sort",
        choices=("created", "size", "tag"),
        help="sort the rows (oldest, smallest, or by repository and tag first); "
        "the output then waits for the last tag",
    )
    parser.add_argument("--reverse", action="store_true", help="reverse the --sort order")
    parser.add_argument(
        "--format",
        choices=audit_formats(),
        help="output format (default: table on a terminal, jsonl otherwise; with --output, "
        "the file's suffix: .json, .csv, .jsonl, .html)",
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the output to FILE instead of stdout"
    )


_REPO_HELP = "the repository: [REGISTRY/]NAME, e.g. ubuntu or ghcr.io/org/app (default docker.io)"
_IMAGE_HELP = (
    "the image: [REGISTRY/]NAME[:TAG][@DIGEST], e.g. nginx:1.27 or ghcr.io/org/app@sha256:... "
    "(default registry docker.io, default tag latest)"
)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aioregistry",
        description="Query Docker Registry HTTP API V2 / OCI registries. Credentials, first "
        "match wins: --username with --password-stdin; DOCKER_USER and DOCKER_PASSWORD; "
        "docker's config.json (as `docker login` left it, credential helpers included); "
        "containers' auth.json (podman login); else anonymous. "
        "`aioregistry auth check REGISTRY` shows which is used.",
    )
    parser.add_argument("--version", action="version", version=f"aioregistry {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p)
        return p

    p = command("token", "print a pull token for a repository")
    p.add_argument("-r", "--repository", required=True, metavar="REPO", help=_REPO_HELP)
    p = command("tags", 'print {"name": ..., "tags": [...]} with every tag of a repository')
    p.add_argument("-r", "--repository", required=True, metavar="REPO", help=_REPO_HELP)
    p = command("digest", "print the digest a tag points to (an index's own for multi-arch)")
    p.add_argument("-i", "--image", required=True, metavar="IMAGE", help=_IMAGE_HELP)
    p.add_argument(
        "--platform", metavar="OS/ARCH[/VARIANT]", help="digest of this platform's manifest"
    )
    p = command("manifest", "print the image manifest (a multi-arch tag resolves to --platform)")
    p.add_argument("-i", "--image", required=True, metavar="IMAGE", help=_IMAGE_HELP)
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="default linux/amd64")
    p = command(
        "manifest-list", "print the manifest list / OCI index (the manifest if single-arch)"
    )
    p.add_argument("-i", "--image", required=True, metavar="IMAGE", help=_IMAGE_HELP)
    p = command("config", "print the config blob of the image (or plugin)")
    p.add_argument("-i", "--image", required=True, metavar="IMAGE", help=_IMAGE_HELP)
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="default linux/amd64")
    p = command(
        "ratelimit",
        'print {"limit", "remaining", "window", "source"}: the pull limit the registry announces '
        "(one HEAD, which Docker Hub does not count); nulls when it announces none",
    )
    p.add_argument("-i", "--image", required=True, metavar="IMAGE", help=_IMAGE_HELP)
    p = command(
        "referrers",
        "print an OCI image index of the signatures, SBOMs and attestations that name the "
        "image as their subject (referrers API, its fallback tag, cosign's legacy tags)",
    )
    p.add_argument("-i", "--image", required=True, metavar="IMAGE", help=_IMAGE_HELP)
    p.add_argument(
        "--artifact-type",
        metavar="TYPE",
        help="only referrers of this artifactType, e.g. application/spdx+json",
    )
    p = command("scan", "scan every tag of repositories (or given images) at once")
    _scan_arguments(p)
    p = command(
        "audit",
        "audit every tag of repositories (or given images): age, size, platforms, tags on the "
        "same image, signatures, SBOMs, attestations; filters, and a summary",
    )
    _audit_arguments(p)
    auth = sub.add_parser("auth", help="check credentials", description="check credentials")
    auth_sub = auth.add_subparsers(dest="auth_command", required=True, metavar="ACTION")
    check_help = (
        "say which credentials a registry would get and whether it accepts them "
        "(exit 0 accepted, 1 refused); no secret is printed"
    )
    p = auth_sub.add_parser("check", help=check_help, description=check_help)
    _common(p)
    p.add_argument("registry", metavar="REGISTRY", help="registry host[:port], e.g. docker.io")
    cache_help = "show or empty the cache of manifests and configs (never layers, tags or tokens)"
    cache = sub.add_parser("cache", help=cache_help, description=cache_help)
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    for action, help_ in (
        ("info", 'print {"path", "entries", "bytes", "max_bytes"}: what the cache holds'),
        ("clear", "remove every entry of the cache (nothing else in its directory)"),
    ):
        p = cache_sub.add_parser(action, help=help_, description=help_)
        _cache_options(p, no_cache=False)
        p.add_argument(
            "--debug", action="store_true", help="show a traceback when something goes wrong"
        )
    p = command("catalog", 'print {"repositories": [...]} with every repository of a registry')
    p.add_argument(
        "-r",
        "--registry",
        default="docker.io",
        metavar="HOST[:PORT]",
        help="registry host (default docker.io, i.e. Docker Hub)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("scan", "audit") and not any(arg.startswith("-") for arg in extra):
        # Options between targets (`scan A --what digest B`): argparse gives the targets
        # (nargs="*") the first run of positionals only, and leaves the later runs over.
        args.targets += extra
        extra = []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from ._cli_commands import run  # noqa: PLC0415  (the machinery, only once it is needed)

    return run(args)


def console() -> int:
    """`main` for a process that ends as soon as it returns: the console script and
    ``python -m aioregistry``.

    Its objects are frozen out of the cyclic collector before the interpreter shuts down, so
    the shutdown's collections do not walk every object of aiohttp and of the run again
    (measured: 80-100 ms of a 200-tag scan's 1.3 s, 40 ms after importing aiohttp alone).
    Atexit handlers still run and the standard streams are still flushed; what is skipped
    is freeing memory the operating system takes back anyway, and the finalizers of cyclic
    garbage, which the CLI does not rely on (its session, connections and output are closed
    before `main` returns). Callers that go on running use `main`: frozen cycles are never
    collected.
    """
    status = main()
    gc.freeze()
    return status
