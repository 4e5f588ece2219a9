"""The commands behind ``aioregistry``: each one a thin async layer over `RegistryClient`.

`_cli` parses the command line and imports this module only then, so that ``--help`` and a
usage error cost no aiohttp, anyio or orjson.

Output is made for pipes: a token or digest is one line; manifests and configs are the exact
bytes the registry sent (so ``aioregistry manifest -i x | sha256sum`` gives its digest); lists
are JSON. Errors are one line on stderr (a traceback only with ``--debug``).

Exit status: 0 success; 1 the registry answered with an error or with content we reject, or
this machine's credential store failed (a broken config file, a credential helper missing,
hanging or failing); 2 bad usage or no answer at all (connection, TLS, timeout); 130
interrupted; 141 the reader of stdout went away (``| head``), as for a tool that a closed
pipe's SIGPIPE ends: the command stops at once and quietly. ``--debug`` prints the
traceback before the one-line error and keeps the status.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Awaitable, Callable

import anyio
import orjson

from ._cli_audit import run_audit
from ._cli_hints import check_image, check_repository
from ._cli_scan import EXIT_OK, EXIT_PIPE, EXIT_USAGE, run_scan
from ._client import RegistryClient
from ._config import DEFAULT_TIMEOUTS, Limits, Timeouts
from ._credentials import Credentials
from ._exceptions import CacheError, RegistryError, TransportError, UsageError
from ._media import OCI_INDEX
from ._references import parse_reference, parse_repository
from ._scopes import RepoType
from ._store import ContentStore, default_cache_dir

__all__ = ["run"]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
# The commands that fetch content by digest, and so read and fill the cache; the others
# (tags, digests, tokens, the catalog, rate limits) fetch nothing a digest names, and leave
# the cache directory alone.
_CACHING = frozenset({"scan", "audit", "manifest", "manifest-list", "config"})


def _write(data: bytes) -> None:
    out = sys.stdout.buffer
    out.write(data)
    if sys.stdout.isatty() and not data.endswith(b"\n"):
        out.write(b"\n")  # exact bytes for pipes; a tidy prompt for people
    out.flush()


def _line(text: str) -> None:
    _write(text.encode() + b"\n")


def _explicit_credentials(args: argparse.Namespace) -> Credentials | None:
    """``--username`` with the password read from stdin (never from argv)."""
    if args.password_stdin and not args.username:
        raise UsageError("--password-stdin needs --username")
    if args.username is None:
        return None
    if not args.password_stdin:
        raise UsageError("--username needs --password-stdin (the password is read from stdin)")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("--password-stdin: no password on stdin")
    return Credentials(args.username, password)


# The commands that stream many tags' answers (`_cli_scan`, `_cli_audit`).
_BULK: dict[str, Callable[[argparse.Namespace, RegistryClient], Awaitable[int]]] = {
    "scan": run_scan,
    "audit": run_audit,
}


def _timeouts(seconds: float | None) -> Timeouts:
    """``--timeout``: the deadline of a try's connection and of each wait for the answer."""
    return DEFAULT_TIMEOUTS if seconds is None else Timeouts(connect=seconds, read=seconds)


def _cache_dir(args: argparse.Namespace) -> str:
    return str(args.cache) if args.cache else str(default_cache_dir())


def _store(args: argparse.Namespace) -> ContentStore | None:
    """The cache the command uses: ``--cache DIR``, else the default; none with
    ``--no-cache`` or for a command that fetches nothing by digest."""
    if getattr(args, "no_cache", False) or args.command not in _CACHING:
        return None
    return ContentStore(_cache_dir(args))


def _cache_command(args: argparse.Namespace) -> int:
    store = ContentStore(_cache_dir(args))
    if args.cache_command == "info":
        info = store.info()
        _write(
            orjson.dumps(
                {
                    "path": info.path,
                    "entries": info.entries,
                    "bytes": info.bytes,
                    "max_bytes": info.max_bytes,
                }
            )
            + b"\n"
        )
    else:
        removed = store.clear()
        _line(f"removed {removed.entries} entries ({removed.bytes} bytes) from {removed.path}")
    return EXIT_OK


async def _run(args: argparse.Namespace) -> int:
    repo_type: RepoType = args.repo_type
    async with RegistryClient(
        cache=_store(args),
        credentials=_explicit_credentials(args),
        insecure=args.insecure,
        ca_file=args.ca_file,
        plain_http=args.plain_http,
        limits=Limits(requests_per_second=getattr(args, "max_rps", None)),
        timeouts=_timeouts(args.timeout),
    ) as client:
        command = args.command
        bulk = _BULK.get(command)
        if bulk is not None:
            return await bulk(args, client)
        if command == "auth":
            _line(f"credentials: {await client.describe_credentials(args.registry)}")
            _line(await client.verify_credentials(args.registry))
            return EXIT_OK
        if command == "token":
            repo = parse_repository(check_repository(args.repository))
            token = await client.get_token(repo, repo_type=repo_type)
            _line(token.value)  # the user asked for the token: printing it is the point
        elif command == "tags":
            repo = parse_repository(check_repository(args.repository))
            tags = await client.list_tags(repo, repo_type=repo_type)
            _write(orjson.dumps({"name": repo.path, "tags": tags}) + b"\n")
        elif command == "catalog":
            repos = await client.catalog(args.registry)
            _write(orjson.dumps({"repositories": repos}) + b"\n")
        elif command == "digest":
            ref = parse_reference(check_image(args.image))
            _line(await client.get_digest(ref, platform=args.platform, repo_type=repo_type))
        elif command == "manifest":
            ref = parse_reference(check_image(args.image))
            manifest = await client.get_manifest(ref, platform=args.platform, repo_type=repo_type)
            _write(manifest.raw)
        elif command == "manifest-list":
            ref = parse_reference(check_image(args.image))
            _write((await client.get_manifest_list(ref, repo_type=repo_type)).raw)
        elif command == "config":
            ref = parse_reference(check_image(args.image))
            config = await client.get_config(ref, platform=args.platform, repo_type=repo_type)
            _write(config.raw)
        elif command == "ratelimit":
            ref = parse_reference(check_image(args.image))
            limit = await client.get_rate_limit(ref, repo_type=repo_type)
            _write(orjson.dumps(limit.as_dict()) + b"\n")
        elif command == "referrers":
            ref = parse_reference(check_image(args.image))
            referrers = await client.list_referrers(
                ref, artifact_type=args.artifact_type, repo_type=repo_type
            )
            index = {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [referrer.descriptor() for referrer in referrers],
            }
            _write(orjson.dumps(index) + b"\n")
        else:  # pragma: no cover - argparse only lets known commands through
            raise UsageError(f"unknown command {command!r}")
    return EXIT_OK


def _exit_code(error: RegistryError) -> int:
    usage = isinstance(error, (UsageError, TransportError, CacheError))  # CacheError: fix --cache
    return EXIT_USAGE if usage else EXIT_ERROR


def run(args: argparse.Namespace) -> int:
    """Run the command that ``args`` (parsed by `_cli`) name; returns the exit status."""
    debug = bool(args.debug) or bool(os.environ.get("AIOREGISTRY_DEBUG"))
    runner: Callable[[], Awaitable[int]] = lambda: _run(args)  # noqa: E731
    try:
        if args.command == "cache":
            return _cache_command(args)
        status = anyio.run(runner, backend="asyncio")
    except RegistryError as exc:
        if debug:
            traceback.print_exc()
        print(f"aioregistry: error: {exc}", file=sys.stderr)  # noqa: T201
        return _exit_code(exc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): no error, and nothing more to write. Later
        # writes (the interpreter's last flush of stdout) go nowhere instead of failing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except Exception as exc:  # noqa: BLE001  (a bug of ours: one line, after any traceback)
        if debug:
            traceback.print_exc()
        hint = (
            "please report it"
            if debug
            else "run with --debug for the traceback, and please report it"
        )
        print(  # noqa: T201
            f"aioregistry: internal error: {type(exc).__name__}: {exc} ({hint})",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return status
