"""The README's demo (``benchmarks/demo.py``, run by ``nox -s demo``) end to end, smaller."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "benchmarks" / "demo.py"


def _noxfile() -> ModuleType:
    here = Path.cwd()
    os.chdir(ROOT)  # the noxfile reads pyproject.toml from where it runs
    try:
        spec = importlib.util.spec_from_file_location("aioregistry_noxfile", ROOT / "noxfile.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        os.chdir(here)
    return module


def test_a_second_demo_installs_nothing_unless_pyproject_changed(tmp_path, monkeypatch):
    """`nox -s demo` keeps its virtualenv and installs into it only when pyproject.toml (or
    what it installs) changed: re-running it took 19.6 s, 17 of them reinstalling."""
    install_once = _noxfile()._install_once
    installs: list[tuple[str, ...]] = []
    session = SimpleNamespace(
        virtualenv=SimpleNamespace(location=str(tmp_path / "venv")),
        install=lambda *args: installs.append(args),
        log=lambda *_: None,
    )
    (tmp_path / "venv").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(tmp_path)
    install_once(session, "-e", ".[test]")
    install_once(session, "-e", ".[test]")
    assert installs == [("-e", ".[test]")]
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\ndependencies = ['y']\n")
    install_once(session, "-e", ".[test]")
    install_once(session, "-e", ".[other]")
    assert installs == [("-e", ".[test]")] * 2 + [("-e", ".[other]")]


def test_the_demo_runs_its_scans_against_a_token_auth_registry() -> None:
    user_cache = Path(os.environ["XDG_CACHE_HOME"]) / "aioregistry"  # conftest's temp home
    result = subprocess.run(
        [sys.executable, str(DEMO), "--many-tags", "30", "--distinct", "5"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    err = result.stderr.decode()
    out = result.stdout.decode()
    assert result.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    # Every scan and command it shows succeeded, and each was shown before it ran.
    assert err.count("exit status 0,") == 5, err
    assert "$ aioregistry auth check 127.0.0.1:" in err
    # The registry takes tokens: anonymous pulls work and alice's password opens private/.
    assert "credentials: anonymous" in out
    assert "accepted: http://127.0.0.1:" in out
    assert "$ echo wonderland | aioregistry scan 127.0.0.1:" in err
    assert "private/secret:v1" in out
    assert "wonderland" not in out  # the password goes to stdin, never into what is printed
    rows = [line for line in out.splitlines() if line.startswith("test/many:t00")]
    assert len(rows) == 30  # the table: every tag of test/many
    assert out.count('"tag":"t00') == 3  # the jsonl scan shown as `| head -n 3`
    assert not user_cache.exists()  # its scans cached in its own temporary directory


@pytest.mark.parametrize("synthetic", [True, False], ids=["synthetic", "audit"])
def test_the_demo_writes_an_html_report_and_its_screenshot(tmp_path, synthetic) -> None:
    report, png = tmp_path / "audit.html", tmp_path / "shot.png"
    rows = ["--report-rows", "300"] if synthetic else []
    result = subprocess.run(
        [
            *(sys.executable, str(DEMO), "--many-tags", "5", "--distinct", "2", *rows),
            *("--report", str(report), "--screenshot", str(png)),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    err = result.stderr.decode()
    assert result.returncode == 0, err[-2000:]
    html = report.read_text(encoding="utf-8")
    if synthetic:
        assert f"report: {report} (" in err
        assert 'id="row-count" data-matching="300" data-total="300"' in html
    else:  # the demo registry's audit: test/many's 5 tags, test/multi's and test/single's 2 each
        assert f" -o {report}\n" in err  # and org/team/app's one
        assert 'id="row-count" data-matching="10" data-total="10"' in html
        assert all(f"/test/many:t000{i}" in html for i in range(5))
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")) == (
        1280,
        900,
    )
