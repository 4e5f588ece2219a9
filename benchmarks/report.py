"""Write the benchmark report: markdown tables and a PNG of time against RTT per contender."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

OURS = "aioregistry scan (default)"
DEFAULT_CONCURRENCY = 64


def _registry_version() -> str:
    try:
        out = subprocess.run(
            ["/usr/bin/docker-registry", "--version"], capture_output=True, text=True, check=False
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or out.stderr.strip()


def floor_seconds(rtt: float, requests: int, concurrency: int, depth: int) -> float:
    """The latency floor: no client can beat ``max(depth, ceil(requests / concurrency))`` RTTs.

    ``depth`` is the longest chain of requests that must follow one another (ping → token →
    tags/list → manifest → child manifest → config); with ``concurrency`` in flight, ``requests``
    need at least ``ceil(requests / concurrency)`` round trips.
    """
    return max(depth, math.ceil(requests / concurrency)) * rtt


def _level_order(level: str) -> tuple[bool, int]:
    """Sweep columns: the fixed concurrencies in order, then ``auto`` (the default)."""
    return (not level.isdigit(), int(level) if level.isdigit() else 0)


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds < 100 else f"{seconds:.0f}"


def _table(rows: list[Any], rtt: float, repo: str) -> list[str]:
    chosen = [r for r in rows if r.rtt == rtt and r.repository == repo]
    ours = next((r for r in chosen if r.contender == OURS), None)
    limit = next((r for r in chosen if r.contender.startswith("limit")), None)
    lines = [
        "| contender | seconds (median) | min–max | × ours | work s | requests | tokens "
        "| peak RSS MB | runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in chosen:
        low, high = row.spread
        ratio = row.median / ours.median if ours else float("nan")
        note = (
            f" (first {row.runs[0].tags} tags: time ×{row.total_tags / row.runs[0].tags:g}, "
            "requests and tokens as measured)"
            if row.sampled
            else ""
        )
        work = _fmt(row.work_median) if row.work_median is not None else "–"
        ratio_text = "–" if row.is_limit else f"{ratio:.2f}"
        lines.append(
            f"| {row.contender}{note} | {_fmt(row.median)} | {_fmt(low)}–{_fmt(high)} | "
            f"{ratio_text} | {work} | {row.requests:.0f} | {row.tokens:.0f} | {row.rss:.0f} "
            f"| {len(row.runs)} |"
        )
    if ours and limit and ours.work_median and limit.work_median:
        peaks = [r.peak_concurrency for r in ours.runs if r.peak_concurrency]
        concurrency = max(peaks) if peaks else DEFAULT_CONCURRENCY
        floor = floor_seconds(rtt, int(ours.requests), concurrency, depth=6)
        lines.append("")
        lines.append(
            f"Ours over the limit, work against work (no interpreter start-up on either side): "
            f"**{ours.work_median / limit.work_median:.2f}×** ({_fmt(ours.work_median)} s against "
            f"{_fmt(limit.work_median)} s). Latency floor for {ours.requests:.0f} requests at "
            f"concurrency {concurrency}{' (the peak of our adaptive limit)' if peaks else ''}: "
            f"{floor:.2f} s."
        )
    return lines


def _plot(path: Path, rows: list[Any], rtts: list[float]) -> bool:
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(12, 5.5))
    names = list(dict.fromkeys(r.contender for r in rows))
    for name in names:
        points = sorted(
            # The limit's process time includes its untimed URL discovery: plot its work.
            (r.rtt * 1000, r.work_median if r.is_limit and r.work_median else r.median)
            for r in rows
            if r.contender == name and r.repository == "bench/many"
        )
        if points:
            limit = any(r.is_limit for r in rows if r.contender == name)
            label = f"{name} — timed pass, no start-up" if limit else name
            ax.plot(*zip(*points, strict=True), marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("added round-trip time (ms)")
    ax.set_ylabel("seconds for 1,000 tags (log scale)")
    ax.set_title("digest + linux/amd64 manifest + config for every tag (bench/many)")
    ax.set_xticks([r * 1000 for r in rtts])
    ax.grid(visible=True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _adversity(extras: dict[str, Any]) -> list[str]:
    """The section "under adversity" (benchmarks/adversity.py), when the run measured it."""
    if not extras.get("adversity"):
        return []
    import adversity  # noqa: PLC0415

    return adversity.markdown(extras["adversity"])


def write(
    stem: Path,
    rows: list[Any],
    sweep: dict[float, dict[str, float]],
    extras: dict[str, Any],
    rtts: list[float],
) -> None:
    lines = [
        f"# aioregistry benchmark — {stem.name}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{platform.platform()}; registry: {_registry_version()} (token auth over TLS, on loopback,"
        " with a latency proxy in front of the registry and of the token realm).",
        "",
        "The job: for every tag, its digest, the linux/amd64 manifest and the config blob. "
        "Every contender's answers were checked against what was pushed (skopeo and the limit "
        "report digests only / nothing). Times are whole processes (interpreter start-up "
        "included), median of the runs; `work s` is the tool's own measure where it reports one "
        "(our scan's summary line; the limit's timed pass, which excludes its URL discovery). "
        "Sampled contenders were timed on the first N tags and scaled linearly, as marked. "
        "Requests are those the registry logged (the token requests go to the realm).",
        "",
    ]
    for rtt in rtts:
        for repo, what in (
            ("bench/many", "1,000 tags, 250 distinct images (25 multi-arch)"),
            ("bench/distinct", "200 tags, 200 distinct images"),
        ):
            lines += [f"## RTT {rtt * 1000:.0f} ms — {repo} ({what})", ""]
            lines += _table(rows, rtt, repo)
            lines.append("")
    if sweep:
        # Numbers in order, then "auto" (the default, adaptive).
        levels = sorted(next(iter(sweep.values())), key=_level_order)
        lines += ["## Time against concurrency (aioregistry scan, bench/many)", ""]
        lines.append("| RTT | " + " | ".join(str(c) for c in levels) + " |")
        lines.append("| --- |" + " ---: |" * len(levels))
        for rtt, by_level in sweep.items():
            cells = " | ".join(_fmt(by_level[c]) for c in levels)
            lines.append(f"| {rtt * 1000:.0f} ms | {cells} |")
        lines.append("")
    for key, title, hidden in (("memory", "Memory", "command"), ("startup", "Start-up", "argv")):
        data = extras.get(key)
        if data:
            lines += [f"## {title}", ""]
            header = [h for h in data[0] if h != hidden]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + " --- |" * len(header))
            for item in data:
                lines.append("| " + " | ".join(str(item[h]) for h in header) + " |")
            lines.append("")
    lines += _adversity(extras)
    stem.with_suffix(".json").write_text(
        json.dumps(
            {
                "rows": [dataclasses.asdict(r) for r in rows],
                "sweep": {str(k): v for k, v in sweep.items()},
                "extras": extras,
            },
            indent=1,
            default=str,
        )
    )
    png = stem.with_suffix(".png")
    if _plot(png, rows, rtts):
        lines += [f"![time against RTT]({png.name})", ""]
    stem.with_suffix(".md").write_text("\n".join(lines))
