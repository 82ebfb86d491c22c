"""bench/scale.py's figures judged against issue 20's targets, and as a table for a terminal."""

from __future__ import annotations

from typing import Any


def _check(target: str, measured: float, limit: float, below: bool, unit: str) -> dict[str, Any]:
    """bench/report.py's shape: below=True means measured < limit (at most, for ratios)."""
    met = measured <= limit if below else measured >= limit
    sign = "<=" if below else ">="
    return {
        "target": target,
        "measured": round(measured, 3),
        "limit": f"{sign} {limit}{unit}",
        "met": met,
    }


def checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 20 part 3, target by target, from the medians of `measure_scale`'s result."""
    policy, stores, traffic = result["policy"], result["stores"], result["traffic"]
    size = f"{policy['companies']} companies, {policy['rules']} rules"
    out = [
        _check(
            f"CPU per verified request, policy of {size} vs 1 and {policy['small_rules']}",
            policy["cpu_ratio"],
            1.1,
            True,
            "x",
        ),
        _check(
            f"`gateway policy check`, {size}", policy["check_s"]["policy_large"], 1.0, True, " s"
        ),
        _check(
            f"hot reload (SIGHUP) until in force, {size}",
            policy["reload"]["policy_large"]["sighup_s"],
            1.0,
            True,
            " s",
        ),
        _check(
            "added latency p99 (1 connection) while the large policy reloads back to back",
            policy["added_p99_ms"],
            1.0,
            True,
            " ms",
        ),
    ]
    for store, label in (("sqlite", "SQLite"), ("redis", "Redis")):
        figures = stores[store]
        large = figures["large"]
        out.append(
            _check(
                f"CPU per verified request, {large['sessions']} sessions and {large['users']} "
                f"users vs {figures['small']['sessions']} ({label})",
                figures["cpu_ratio"],
                1.1,
                True,
                "x",
            )
        )
    delay = traffic["delay"]
    out.append(
        _check(
            f"requests/s with Redis answering {delay['delay_ms']:g} ms later vs no delay "
            f"({delay['active_sessions']} sessions in use)",
            delay["rps_ratio"],
            0.9,
            False,
            "x",
        )
    )
    return out


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if not i else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def summary(result: dict[str, Any]) -> str:
    """The figures (reported only, and judged) and the verdicts, for a terminal."""
    policy, stores, traffic = result["policy"], result["stores"], result["traffic"]
    rows = [["figure", "small", "large", "ratio"]]
    rows.append(
        [
            "CPU us/request, policy",
            f"{policy['small_cpu_us']:.1f}",
            f"{policy['large_cpu_us']:.1f}",
            f"{policy['cpu_ratio']:.3f}",
        ]
    )
    for store in ("sqlite", "redis"):
        f = stores[store]
        rows.append(
            [
                f"CPU us/request, {store}",
                f"{f['small_cpu_us']:.1f}",
                f"{f['large_cpu_us']:.1f}",
                f"{f['cpu_ratio']:.3f}",
            ]
        )
    check = policy["check_s"]
    rows.append(
        ["policy check s", f"{check['policy_small']:.3f}", f"{check['policy_large']:.3f}", "-"]
    )
    for kind in ("sighup_s", "watch_s"):
        small, large = (policy["reload"][n][kind] for n in ("policy_small", "policy_large"))
        rows.append([f"reload {kind[:-2]} s", f"{small:.3f}", f"{large:.3f}", "-"])
    rows.append(
        [
            "p99 ms steady / reloading",
            f"{policy['steady_p99_ms']:.3f}",
            f"{policy['reloading_p99_ms']:.3f}",
            "-",
        ]
    )
    for store in ("sqlite", "redis"):
        for key in ("bytes_per_session", "bytes_per_user"):
            small, large = (stores[store][s][key] for s in ("small", "large"))
            rows.append([f"{store} {key}", f"{small:.0f}", f"{large:.0f}", "-"])
        t = traffic[store]
        rows.append(
            [f"{store} round trips/request", "-", "-", f"{t['round_trips_per_request']:.5f}"]
        )
        rows.append(
            [
                f"{store} round trips/s/session",
                "-",
                "-",
                f"{t['round_trips_per_s_per_active_session']:.3f}",
            ]
        )
    d = traffic["delay"]
    rows.append(
        [
            f"req/s, Redis +{d['delay_ms']:g} ms",
            f"{d['no_delay_rps']:.0f}",
            f"{d['delay_rps']:.0f}",
            f"{d['rps_ratio']:.3f}",
        ]
    )
    verdicts = [["target (issue 20, part 3)", "measured", "limit", "met"]] + [
        [c["target"], str(c["measured"]), c["limit"], "yes" if c["met"] else "NO"]
        for c in result["checks"]
    ]
    return f"{_table(rows)}\n\n{_table(verdicts)}"
