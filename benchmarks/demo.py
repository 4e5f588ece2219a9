"""See aioregistry work offline: a local registry, sample images, ``aioregistry scan`` over them.

``python3 -m nox -s demo`` (or ``python benchmarks/demo.py`` in an environment with
``pip install -e .[test]`` and Debian's ``docker-registry`` at ``/usr/bin/docker-registry``):

1. starts ``docker-registry`` on a free loopback port (plain HTTP, storage in a temporary
   directory) with token auth, its token issuer the tests' (``tests/support/tokens.py``):
   anonymous pulls outside ``private/``, user ``alice`` (password ``wonderland``) pulls
   everything, ``pusher`` (``pushpw``) may also push and read the catalog;
2. pushes the test suite's sample content: single-arch images, a Docker manifest list and an
   OCI index with three platforms (plus an attestation), a plugin, a nested name, and
   ``test/many`` with a few hundred tags;
3. runs ``aioregistry scan`` over it three times: a table of configs (with the progress bar),
   every platform of the multi-arch tags, and the JSON Lines format for machines; then
   ``auth check`` and a private image with alice's password on stdin.

``--keep`` leaves the registry running afterwards, until Ctrl-C, to try commands by hand.
``--report FILE`` also runs ``aioregistry audit ... -o FILE`` over the demo's public
repositories: the HTML report of their tags. ``--report-rows N`` makes the report of N
synthetic rows instead (``tests/support/audit_rows.py``: tags over 22 repositories, signed
or not, of several platforms and ages), since the demo's own images are too few and too
alike to show what the charts are for. ``--screenshot PNG`` opens the report in headless
chromium (Debian's, as the tests do) and saves its first screen, 1280x900: the README's
``docs/audit-report.png`` is ``--report-rows 2000 --screenshot docs/audit-report.png``.
The commands it runs keep their cache (`aioregistry`'s default, ``$XDG_CACHE_HOME``) in the
demo's temporary directory, gone with it: the demo leaves nothing in ``~/.cache``.
The registry is stopped however the script ends; its exit status is the first failing scan's.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

# The registry setup and the sample content live in tests/support and are imported from there,
# not copied: one implementation of "start a registry, push known content" for the tests, this
# demo and the benchmarks, so all three exercise the same images.
TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS_DIR))

from support.audit_rows import summarise, synthetic_rows  # noqa: E402
from support.browser import missing, start_chromium  # noqa: E402
from support.content import Content, PushedImage, PushedIndex  # noqa: E402
from support.registry import REGISTRY_BINARY, RegistryProcess  # noqa: E402
from support.tokens import DEFAULT_USERS  # noqa: E402

JSONL_PREVIEW_LINES = 3


def _say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def _describe(item: PushedImage | PushedIndex) -> str:
    if isinstance(item, PushedIndex):
        kind = "OCI index" if item.media_type.endswith("index.v1+json") else "manifest list"
        platforms = [c.platform for c in item.children if c.platform != "unknown/unknown"]
        extra = len(item.children) - len(platforms)
        suffix = f" + {extra} attestation" if extra else ""
        return f"{kind}: {', '.join(p or '?' for p in platforms)}{suffix}"
    if item.platform is None:
        return "plugin"
    kind = "OCI image" if item.media_type.endswith("oci.image.manifest.v1+json") else "image"
    return f"{kind} {item.platform}"


def _banner(registry: RegistryProcess, content: Content, distinct: int, workdir: Path) -> None:
    _say(f"aioregistry demo: {REGISTRY_BINARY} at {registry.url} (storage in {workdir})")
    _say("pushed:")
    width = max(len(name) for name in content.repositories)
    for repository in content.repositories:
        if repository == content.many_repository:
            count = len(content.many_tags)
            summary = f"{count} tags over {min(distinct, count)} distinct images (linux/amd64)"
        else:
            summary = "; ".join(
                f"{tag} ({_describe(content.get(f'{repository}:{tag}'))})"
                for tag in content.tags_of(repository)
            )
        _say(f"  {registry.host}/{repository:<{width}}  {summary}")
    _say()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "aioregistry", *args]


def _show(command: list[str]) -> None:
    shown = ["aioregistry", *command[3:]] if command[:3] == _cli() else command
    _say(f"$ {shlex.join(shown)}")


def _run(command: list[str]) -> int:
    """Run the CLI with the terminal's stdout and stderr (progress bar, table); its status."""
    _show(command)
    started = time.monotonic()
    status = subprocess.run(command, check=False).returncode
    _say(f"  (exit status {status}, {time.monotonic() - started:.2f} s)")
    _say()
    return status


def _run_with_password(command: list[str], user: str) -> int:
    """Run the CLI as ``echo PASSWORD | aioregistry ... --username USER --password-stdin``."""
    password = DEFAULT_USERS[user]
    full = [*command, "--username", user, "--password-stdin"]
    _say(f"$ echo {password} | {shlex.join(['aioregistry', *full[3:]])}")
    started = time.monotonic()
    status = subprocess.run(full, input=f"{password}\n".encode(), check=False).returncode
    _say(f"  (exit status {status}, {time.monotonic() - started:.2f} s)")
    _say()
    return status


def _run_jsonl(command: list[str]) -> int:
    """Run the CLI into a pipe and show the first lines, as ``| head -n 3`` would."""
    _say(f"$ {shlex.join(['aioregistry', *command[3:]])} | head -n {JSONL_PREVIEW_LINES}")
    started = time.monotonic()
    result = subprocess.run(command, check=False, stdout=subprocess.PIPE)
    lines = result.stdout.decode(errors="replace").splitlines()
    for line in lines[:JSONL_PREVIEW_LINES]:
        print(line, flush=True)
    _say(
        f"  ({len(lines)} lines in all, exit status {result.returncode}, "
        f"{time.monotonic() - started:.2f} s)"
    )
    _say()
    return result.returncode


def _wait_for_ctrl_c(registry: RegistryProcess) -> None:
    host = registry.host
    script = Path(sys.executable).parent / "aioregistry"
    cli = str(script) if script.is_file() else f"{sys.executable} -m aioregistry"
    users = ", ".join(f"{user} / {password}" for user, password in DEFAULT_USERS.items())
    _say(f"registry running at {registry.url} (token auth; users and passwords: {users});")
    _say("try, in another terminal:")
    _say(f"  {cli} tags -r {host}/test/many")
    _say(f"  {cli} manifest-list -i {host}/test/multi:oci")
    _say(f"  {cli} config -i {host}/test/multi:docker --platform linux/arm/v7")
    _say(f"  {cli} token -r {host}/test/many")
    _say(f"  {cli} auth check {host}")
    _say(f"  echo wonderland | {cli} config -i {host}/private/secret:v1 -u alice --password-stdin")
    _say(f"  echo pushpw | {cli} scan --catalog {host} -u pusher --password-stdin --format table")
    _say("press Ctrl-C to stop it")
    try:
        while registry.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        _say()
    if not registry.running:
        _say("the registry exited; log tail:\n" + registry.log_tail(10))


def _synthetic_report(path: Path, rows: int) -> None:
    from aioregistry._report import render_report  # noqa: PLC0415 (needs the report extra)

    data = synthetic_rows(rows)
    started = time.monotonic()
    html = render_report(summarise(data), data, title=f"Registry audit ({rows:,} synthetic tags)")
    path.write_text(html, encoding="utf-8")
    _say(
        f"report: {path} ({len(html) / 1e6:.1f} MB, {rows:,} synthetic rows, "
        f"rendered in {time.monotonic() - started:.2f} s)"
    )


def _screenshot(report: Path, png: Path) -> None:
    browser = start_chromium(1280, 900)
    try:
        browser.get(report.resolve().as_uri())
        browser.save_screenshot(str(png))
    finally:
        browser.quit()
    _say(f"screenshot: {png} ({png.stat().st_size / 1e3:.0f} kB)")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds the `with` blocks, so the registry is stopped on `kill` too.
    raise SystemExit(128 + signum)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--keep", action="store_true", help="leave the registry running until Ctrl-C"
    )
    parser.add_argument(
        "--many-tags", type=int, default=400, metavar="N", help="tags in test/many (default 400)"
    )
    parser.add_argument(
        "--distinct",
        type=int,
        default=60,
        metavar="N",
        help="distinct images behind those tags (default 60)",
    )
    parser.add_argument(
        "--report", type=Path, metavar="FILE", help="write an audit's HTML report to FILE"
    )
    parser.add_argument(
        "--report-rows",
        type=int,
        metavar="N",
        help="make the report of N synthetic tags, not of the demo's registry",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="save the report's first screen (1280x900) as PNG, in headless chromium",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if not Path(REGISTRY_BINARY).is_file():
        _say(f"demo: {REGISTRY_BINARY} is missing: run `bash .ci/ensure-registry` (as root)")
        return 2
    if args.screenshot and missing():
        _say(f"demo: --screenshot: {missing()}")
        return 2
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Ctrl-C must stop --keep even when started from a shell that ignores SIGINT (`cmd &`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with (
        tempfile.TemporaryDirectory(prefix="aioregistry-demo-") as tmp,
        RegistryProcess("token", Path(tmp)) as registry,
    ):
        # The CLI's default cache is $XDG_CACHE_HOME/aioregistry: the demo's, not the user's.
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        started = time.monotonic()
        content = registry.push_content(many_tags=args.many_tags, distinct=args.distinct)
        _banner(registry, content, args.distinct, Path(tmp))
        _say(f"(registry started and content pushed in {time.monotonic() - started:.2f} s)\n")

        host = registry.host
        images = [f"{host}/{name}" for name in ("test/many", "test/multi", "test/single")]
        statuses = [
            _run(
                _cli(
                    "scan",
                    *images,
                    f"{host}/org/team/app",
                    "--format",
                    "table",
                    "--what",
                    "config",
                )
            ),
            _run(_cli("scan", f"{host}/test/multi", "--platform", "all", "--format", "table")),
            _run_jsonl(_cli("scan", f"{host}/test/many", "--what", "digest", "--format", "jsonl")),
            _run(_cli("auth", "check", host)),
            _run_with_password(
                _cli("scan", f"{host}/private/secret", "--format", "table"), "alice"
            ),
        ]
        if args.report or args.screenshot:
            report = args.report or Path(tmp) / "audit.html"
            if args.report_rows is not None:
                _synthetic_report(report, args.report_rows)
            else:
                audit = _cli("audit", *images, f"{host}/org/team/app", "-o", str(report))
                statuses.append(_run(audit))
            if args.screenshot:
                _screenshot(report, args.screenshot)
            _say()
        if args.keep:
            _wait_for_ctrl_c(registry)
    return next((status for status in statuses if status != 0), 0)


if __name__ == "__main__":
    sys.exit(main())
