"""Create the private virtual environments of the Python peers (issue #4).

Each peer runs from its own venv under ``.bench/venvs/`` so that nothing it installs can reach
the project's own ``.venv``. In particular the PyPI package *named* ``aioregistry`` (0.7.3, an
unrelated project that happens to share our import name) must never be importable there.

    python3 benchmarks/peers/venvs.py           # create what is missing, print the interpreters
    python3 benchmarks/peers/venvs.py --check   # only report; exit 1 if something is missing

Creation is idempotent: a venv whose interpreter already reports the wanted distribution
version is left alone. The harness imports :func:`python_for` to find an interpreter.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".bench" / "venvs"

#: venv name -> (distribution name, pip requirement); python-dxf is the latest release.
PEERS: dict[str, tuple[str, str]] = {
    "dxf": ("python-dxf", "python-dxf"),
    "aioregistry073": ("aioregistry", "aioregistry==0.7.3"),
}
#: The exact version a venv must hold, where one is pinned.
PINNED: dict[str, str] = {"aioregistry073": "0.7.3"}

_VERSION_PROBE = (
    "import importlib.metadata as m, sys\n"
    "try:\n    print(m.version(sys.argv[1]))\n"
    "except m.PackageNotFoundError:\n    sys.exit(1)\n"
)


def venv_dir(name: str) -> Path:
    if name not in PEERS:
        raise KeyError(f"unknown peer venv {name!r}; known: {', '.join(PEERS)}")
    return VENVS / name


def python_for(name: str) -> Path:
    """The interpreter of the peer venv ``name`` ("dxf", "aioregistry073"); it may not exist."""
    return venv_dir(name) / "bin" / "python"


def installed_version(name: str) -> str | None:
    """The version of the peer's distribution inside its venv, or None if absent/broken."""
    python = python_for(name)
    if not python.exists():
        return None
    distribution = PEERS[name][0]
    result = subprocess.run(
        [str(python), "-I", "-c", _VERSION_PROBE, distribution],  # -I: never the cwd's packages
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def is_ready(name: str) -> bool:
    version = installed_version(name)
    if version is None:
        return False
    pinned = PINNED.get(name)
    return pinned is None or version == pinned


def ensure(name: str) -> Path:
    """Create the venv ``name`` and install its peer unless that is already done."""
    if is_ready(name):
        return python_for(name)
    directory = venv_dir(name)
    directory.parent.mkdir(parents=True, exist_ok=True)
    if not python_for(name).exists():
        # aioregistry 0.7.3 needs Python >= 3.11: pip says so if python3 is older.
        subprocess.run(["python3", "-m", "venv", str(directory)], check=True)
    requirement = PEERS[name][1]
    pip = [str(python_for(name)), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "--quiet", requirement], check=True)
    if not is_ready(name):
        raise RuntimeError(f"{name}: {requirement} did not install correctly in {directory}")
    return python_for(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report, create nothing")
    parser.add_argument("names", nargs="*", default=list(PEERS), help="venvs (default: all)")
    args = parser.parse_args()
    missing = 0
    for name in args.names:
        if not args.check:
            ensure(name)
        version = installed_version(name)
        ready = is_ready(name)
        missing += not ready
        state = f"{PEERS[name][0]} {version}" if ready else "MISSING"
        print(f"{name}\t{python_for(name)}\t{state}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
