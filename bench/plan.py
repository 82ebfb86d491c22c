"""What one run of `bench/run` measures (its plan, from the command line) and on what: the
tools it needs, installed when missing and allowed, and the machine's description."""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
TOOLS = {
    "wrk": "wrk",
    "nginx": "nginx",
    "curl": "curl",
    "redis-server": "redis-server",
    "caddy": "caddy",
}
SETUP_HINT = "run scripts/setup (or: sudo apt-get install -y {packages})"
REDIS_MISSING = "redis backend not available"
MB = 1_000_000


@dataclass
class Plan:
    rounds: int
    duration: float
    latency_duration: float
    warmup: float
    connections: int
    idle_connections: int
    body_bytes: int
    settle: float
    workers_rounds: int
    quick: bool
    transfers: int = 3  # large bodies per target, direction and round (the median counts)
    scale: bool = False  # bench/scale.py's figures too


def parse(argv: list[str] | None) -> tuple[Plan, Path]:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="Start everything, measure in interleaved rounds, report ratios per round "
        "and their median, check them against the targets, write JSON (bench/README.md).",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--idle-connections", type=int, default=5000)
    parser.add_argument("--body-mb", type=int, default=100, help="large body size (100 MB)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run of seconds: tiny durations and sizes"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"default {RESULTS}")
    parser.add_argument(
        "--no-scale",
        action="store_true",
        help="leave out the costs as work grows (bench/scale.py: about 15 minutes, 1.2 GB of "
        "disk, 1.5 GB for Redis); --quick leaves them out too (tests/test_bench_scale.py runs "
        "their quick mode)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        plan = Plan(1, 0.2, 0.2, 0.0, 8, 50, 2 * MB, 0.05, 1, True, transfers=1)
    else:
        plan = Plan(
            rounds=args.rounds,
            duration=args.duration,
            latency_duration=args.duration / 2,
            warmup=2.0,
            connections=args.connections,
            idle_connections=args.idle_connections,
            body_bytes=args.body_mb * MB,
            settle=1.0,
            workers_rounds=max(2, args.rounds // 2),
            quick=False,
            scale=not args.no_scale,
        )
    return plan, args.output


def ensure_tools() -> None:
    """Install what is missing with apt-get when root; otherwise say exactly what to install."""
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            "bench: missing "
            + ", ".join(missing)
            + "; "
            + SETUP_HINT.format(packages=" ".join(missing))
        )
    print(f"bench: installing {' '.join(missing)} with apt-get", flush=True)
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(install, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(install, check=True)


def _version(args: list[str], pattern: str) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return "missing"
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(1) if match else "unknown"


def machine() -> dict[str, Any]:
    import aiohttp

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    git = ["git", "-C", str(ROOT)]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "nginx": _version(["nginx", "-v"], r"nginx/(\S+)"),
        "wrk": _version(["wrk", "-v"], r"wrk (\S+)"),
        "redis": _version(["redis-server", "--version"], r"v=(\S+)"),
        "curl": _version(["curl", "--version"], r"curl (\S+)"),
        "git_commit": _version([*git, "rev-parse", "HEAD"], r"(\w+)"),
        "gateway_code_uncommitted": _version(
            [*git, "status", "--porcelain", "gateway"], r"(\S[\s\S]*)"
        )
        not in ("unknown", "missing"),
    }
