"""The scale benchmark (bench/scale.py, issue 20 part 3) in its quickest mode, so that it cannot
rot: every figure is produced and judged. How fast anything is, is judged by a full run, never
here."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("wrk", "nginx", "redis-server")


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@pytest.mark.bench
def test_quick_scale_benchmark_reports_every_figure(tmp_path: Path) -> None:
    """`python -m bench.scale --quick` starts the small and large gateways, fills their stores,
    and writes every figure of issue 20 part 3 with a verdict for each target."""
    path = "/usr/sbin:/sbin:" + str(Path(sys.executable).parent) + ":/usr/bin:/bin"
    missing = [tool for tool in TOOLS if shutil.which(tool, path=path) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run scripts/setup --test", pytrace=False)
    output = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    result = json.loads(output.read_text())

    policy = result["policy"]
    for key in ("cpu_ratio", "small_cpu_us", "large_cpu_us", "steady_p99_ms", "reloading_p99_ms"):
        assert positive(policy[key]), (key, policy[key])
    assert finite(policy["added_p99_ms"])
    assert policy["files"] == result["plan"]["companies"] + result["plan"]["applications"]
    for name in ("policy_small", "policy_large"):
        assert positive(policy["check_s"][name]), name
        for key in ("sighup_s", "watch_s"):
            assert positive(policy["reload"][name][key]), (name, key)
    assert all(r["reload_latency"]["reloads"] > 0 for r in result["rounds"])
    for store in ("sqlite", "redis"):
        figures = result["stores"][store]
        for key in ("cpu_ratio", "small_cpu_us", "large_cpu_us"):
            assert positive(figures[key]), (store, key)
        large = figures["large"]
        assert large["sessions"] == result["plan"]["sessions"], store
        assert large["users"] == result["plan"]["users"], store
        assert positive(large["bytes_per_session"]) and positive(large["bytes_per_user"]), large
        traffic = result["traffic"][store]  # counts: a quick run may see none
        assert finite(traffic["round_trips_per_request"]), (store, traffic)
        assert finite(traffic["round_trips_per_s_per_active_session"]), (store, traffic)
        assert traffic["round_trips_per_request"] >= 0, (store, traffic)
    delay = result["traffic"]["delay"]
    assert positive(delay["rps_ratio"]) and delay["delay_ms"] == 1.0
    assert finite(result["traffic"]["redis"]["delay_proxy_mean_added_ms"])
    checks = result["checks"]
    assert len(checks) == 7 and all(finite(c["measured"]) for c in checks), checks
    assert all(isinstance(c["met"], bool) for c in checks), checks
