"""Lint, type-check and test aioregistry: ``python3 -m nox`` runs all three.

``tests`` runs on the interpreter that runs nox. ``tests_matrix`` runs the suite on every
``Programming Language :: Python :: 3.X`` version of pyproject.toml that is installed here and
skips the others (``python3 -m nox -s tests_matrix``). ``demo`` shows the CLI at work offline
against a local registry with sample images (``python3 -m nox -s demo``, ``-- --keep`` to keep
the registry running for trying commands by hand).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nox

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON_VERSIONS = nox.project.python_versions(PYPROJECT)

# The versions the code base was checked with: a new release can add lint or type errors.
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"
IMPORT_LINTER = "import-linter==2.17"

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"
nox.options.sessions = ["lint", "typecheck", "tests"]


def _run_tests(session: nox.Session) -> None:
    session.run("bash", ".ci/ensure-registry", external=True)
    # the HTML report's tests open it in Debian's chromium (tests/test_report_browser.py)
    session.run("bash", ".ci/ensure-chromium", external=True)
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite on the interpreter running nox (Debian's docker-registry and
    chromium needed)."""
    _run_tests(session)


@nox.session(python=PYTHON_VERSIONS, default=False)
def tests_matrix(session: nox.Session) -> None:
    """Run the test suite on each supported Python that is installed."""
    _run_tests(session)


def _install_once(session: nox.Session, *args: str) -> None:
    """``session.install(*args)`` unless this virtualenv already holds it.

    The install is editable, so a change of the code needs none; what needs one is a change
    of ``pyproject.toml`` (dependencies, entry points) or of ``args``, which a stamp in the
    virtualenv records.
    """
    location = getattr(session.virtualenv, "location", None)
    if not isinstance(location, str):  # no virtualenv of its own (``--no-venv``)
        session.install(*args)
        return
    stamp = Path(location) / ".aioregistry-installed"
    wanted = hashlib.sha256(Path("pyproject.toml").read_bytes() + repr(args).encode()).hexdigest()
    if stamp.is_file() and stamp.read_text() == wanted:
        session.log("already installed (pyproject.toml unchanged): not installing again")
        return
    session.install(*args)
    stamp.write_text(wanted)


@nox.session(default=False, reuse_venv=True)
def demo(session: nox.Session) -> None:
    """See it work offline: a local registry, sample images and ``aioregistry scan`` over them.

    ``python3 -m nox -s demo -- --keep`` leaves the registry running until Ctrl-C. The
    virtualenv is kept between runs and installed into only when ``pyproject.toml`` changed.
    """
    session.run("bash", ".ci/ensure-registry", external=True)
    # tests/support, which the demo reuses, needs the test extra
    _install_once(session, "-e", ".[test]")
    session.run("python", "benchmarks/demo.py", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """aioregistry beside its peers and the limit, at several RTTs; writes benchmarks/results/.

    Installs what the peers need: Debian's docker-registry and skopeo (apt-get), python-dxf and
    PyPI's unrelated ``aioregistry`` 0.7.3 in virtualenvs of their own under ``.bench/``.
    ``python3 -m nox -s bench -- --rtt 0,0.02 --runs 1`` for a quick pass.
    """
    session.run("bash", ".ci/ensure-registry", external=True)
    session.run("bash", "benchmarks/peers/ensure-skopeo", external=True)
    session.install("-e", ".[test]", "matplotlib")
    session.run("python", "benchmarks/peers/venvs.py")
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff's lint rules and formatting; the package's layers (import-linter, pyproject.toml)."""
    session.install(RUFF, IMPORT_LINTER)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # grimp reads the source without importing it: the checkout on the path is enough.
    session.run("lint-imports", env={"PYTHONPATH": str(Path.cwd())})


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package (and on tests/typing when it exists)."""
    session.install(MYPY, "-e", ".[report]")  # the report extra: _report imports Jinja2
    targets = ["aioregistry"]
    if Path("tests/typing").is_dir():
        targets.append("tests/typing")
    session.run("mypy", "--strict", *targets)
