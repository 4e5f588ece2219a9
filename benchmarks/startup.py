"""Start-up cost: ``aioregistry --help``, ``import aioregistry`` and ``import aiohttp``.

Each command runs ``runs`` times (20 by default) after ``warmup`` unmeasured runs (so the
page cache is warm and ``.pyc`` files exist), the commands taking turns (round robin, so
load elsewhere on the machine hits them alike), timed from start to exit with
``time.perf_counter``; the table gives the median and the spread (min/max) in milliseconds.
Every command uses the interpreter running this script, and the ``aioregistry`` console
script beside it (``.venv/bin/aioregistry``).
``python -c pass`` is the interpreter's own floor.

``import_profile`` runs ``python -X importtime -c "import aioregistry"`` a few times and
lists the modules with the largest cumulative import time (median over the runs); the
``aioregistry`` row is the whole import.

    python benchmarks/startup.py
    python benchmarks/startup.py --runs 50 --top 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["commands", "format_tables", "import_profile", "main", "run"]

RUNS = 20
WARMUP = 2
TOP = 10


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.pop("DOCKER_USER", None)
    env.pop("DOCKER_PASSWORD", None)
    return env


def commands(python: str | None = None) -> dict[str, list[str]]:
    """The commands timed, by label: the console script beside ``python`` and three ``-c``."""
    python = python or sys.executable
    script = Path(python).parent / "aioregistry"
    if not script.exists():
        raise FileNotFoundError(f"no aioregistry console script beside {python}")
    return {
        "aioregistry --help": [str(script), "--help"],
        'python -c "import aioregistry"': [python, "-c", "import aioregistry"],
        'python -c "import aiohttp"': [python, "-c", "import aiohttp"],
        'python -c "pass"': [python, "-c", "pass"],
    }


def _time_once(command: Sequence[str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, env=_env(), check=False
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {completed.returncode}: {completed.stderr!r}"
        )
    return elapsed


def run(
    runs: int = RUNS, *, warmup: int = WARMUP, python: str | None = None
) -> list[dict[str, Any]]:
    """Time each command ``runs`` times; one row each.

    A row: ``command`` (label), ``argv``, ``runs``, ``median_ms``, ``min_ms``, ``max_ms``.
    """
    timed = commands(python)
    for _ in range(warmup):
        for argv in timed.values():
            _time_once(argv)
    # Round robin, so a burst of load elsewhere on the machine hits every command alike.
    samples: dict[str, list[float]] = {label: [] for label in timed}
    for _ in range(runs):
        for label, argv in timed.items():
            samples[label].append(_time_once(argv) * 1000)
    return [
        {
            "command": label,
            "argv": argv,
            "runs": runs,
            "median_ms": round(statistics.median(samples[label]), 1),
            "min_ms": round(min(samples[label]), 1),
            "max_ms": round(max(samples[label]), 1),
        }
        for label, argv in timed.items()
    ]


def _parse_importtime(stderr: str) -> dict[str, tuple[int, int]]:
    """``import time: self [us] | cumulative | package`` lines -> module: (self, cumulative)."""
    result: dict[str, tuple[int, int]] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        result[name.strip()] = (int(self_us), int(cumulative_us))
    return result


def import_profile(
    top: int = TOP, *, runs: int = 5, module: str = "aioregistry", python: str | None = None
) -> list[dict[str, Any]]:
    """The ``top`` modules by cumulative import time under ``-X importtime`` (median of runs).

    A row: ``module``, ``self_ms``, ``cumulative_ms``. Nested imports count in their
    parents' cumulative time too, so the rows overlap; ``module`` itself is the total.
    """
    python = python or sys.executable
    samples: dict[str, list[tuple[int, int]]] = {}
    for attempt in range(runs + 1):
        completed = subprocess.run(
            [python, "-X", "importtime", "-c", f"import {module}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_env(),
            check=True,
        )
        if attempt == 0:
            continue  # warm-up: the page cache and .pyc files
        for name, times in _parse_importtime(completed.stderr).items():
            samples.setdefault(name, []).append(times)
    rows: list[dict[str, Any]] = [
        {
            "module": name,
            "self_ms": round(statistics.median(t[0] for t in times) / 1000, 2),
            "cumulative_ms": round(statistics.median(t[1] for t in times) / 1000, 2),
        }
        for name, times in samples.items()
    ]
    rows.sort(key=lambda row: row["cumulative_ms"], reverse=True)
    return rows[:top]


def format_tables(
    timings: Sequence[Mapping[str, Any]], profile: Sequence[Mapping[str, Any]] = ()
) -> str:
    """Markdown: the timings table, then the import profile table when given."""
    lines = [
        "| command | runs | median ms | min ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| `{r['command']}` | {r['runs']} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | "
        f"{r['max_ms']:.1f} |"
        for r in timings
    ]
    if profile:
        lines += [
            "",
            "| module (`-X importtime`, import aioregistry) | cumulative ms | self ms |",
            "| --- | ---: | ---: |",
        ]
        lines += [
            f"| `{r['module']}` | {r['cumulative_ms']:.1f} | {r['self_ms']:.1f} |" for r in profile
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--warmup", type=int, default=WARMUP)
    parser.add_argument("--top", type=int, default=TOP)
    args = parser.parse_args()
    timings = run(args.runs, warmup=args.warmup)
    profile = import_profile(args.top)
    print(f"python: {sys.executable} ({sys.version.split()[0]})\n")
    print(format_tables(timings, profile))


if __name__ == "__main__":
    main()
