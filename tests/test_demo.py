"""The README's demo (``benchmarks/demo.py``, run by ``nox -s demo``) end to end, smaller."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "benchmarks" / "demo.py"


def test_the_demo_runs_its_scans_against_a_token_auth_registry() -> None:
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
