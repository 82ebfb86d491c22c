"""Ratios within a round, medians over rounds, the PRODUCT.md section 9 targets, and tables."""

from __future__ import annotations

import statistics
from typing import Any

GATEWAYS = ("gateway_sqlite", "gateway_redis")


def figures(result: dict[str, Any]) -> dict[str, float]:
    """One target's raw figures in one round, flat."""
    rate, latency, down, up = (result[k] for k in ("rate", "latency", "down", "up"))
    flat = {
        "requests_per_s": rate["requests_per_s"],
        "cpu_us_per_request": rate["cpu_us_per_request"],
        "p50_ms": latency["p50_ms"],
        "p99_ms": latency["p99_ms"],
        "down_mb_per_s": down["mb_per_s"],
        "up_mb_per_s": up["mb_per_s"],
        "down_memory_growth_mb": down["memory_growth_mb"],
        "up_memory_growth_mb": up["memory_growth_mb"],
    }
    if "redis_cpu_us_per_request" in rate:
        flat["redis_cpu_us_per_request"] = rate["redis_cpu_us_per_request"]
    return flat


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Every target against the pass-through (CPU, rate) and the direct upstream (latency,
    bodies), from the same round."""
    flat = {name: figures(result) for name, result in results.items()}
    floor, direct = flat["passthrough"], flat["direct"]
    plain = flat.get("gateway_sqlite", floor)
    out = {}
    for name, f in flat.items():
        out[name] = {
            **f,
            "cpu_vs_passthrough": f["cpu_us_per_request"] / floor["cpu_us_per_request"],
            # what a policy's features cost on top of the plain gateway (gateway_features)
            "cpu_vs_gateway_sqlite": f["cpu_us_per_request"] / plain["cpu_us_per_request"],
            "rps_vs_passthrough": f["requests_per_s"] / floor["requests_per_s"],
            "added_p50_ms": f["p50_ms"] - direct["p50_ms"],
            "added_p99_ms": f["p99_ms"] - direct["p99_ms"],
            "down_vs_direct": f["down_mb_per_s"] / direct["down_mb_per_s"],
            "up_vs_direct": f["up_mb_per_s"] / direct["up_mb_per_s"],
        }
    return out


def pair_ratios(pairs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """A front proxy asking the gateway (forward auth) against nginx proxying alone, measured
    just before it in the same round: requests/s and CPU per request of the pair (the front
    proxy's and the gateway's processes, both on the measured core)."""
    out = {}
    for name, measured in pairs.items():
        rate, alone = measured["rate"], measured["nginx_rate"]
        latency, alone_latency = measured["latency"], measured["nginx_latency"]
        gateway = rate["also_cpu_us_per_request"]
        out[name] = {
            "requests_per_s": rate["requests_per_s"],
            "cpu_us_per_request": rate["cpu_us_per_request"],
            "front_cpu_us_per_request": rate["cpu_us_per_request"] - gateway,
            "gateway_cpu_us_per_request": gateway,
            "nginx_requests_per_s": alone["requests_per_s"],
            "nginx_cpu_us_per_request": alone["cpu_us_per_request"],
            "rps_vs_nginx": rate["requests_per_s"] / alone["requests_per_s"],
            "cpu_vs_nginx": rate["cpu_us_per_request"] / alone["cpu_us_per_request"],
            "p50_ms": latency["p50_ms"],
            "p99_ms": latency["p99_ms"],
            "added_p50_ms": latency["p50_ms"] - alone_latency["p50_ms"],
        }
    return out


def medians(rounds: list[dict[str, Any]], key: str = "ratios") -> dict[str, dict[str, float]]:
    """The median of each figure and ratio over the rounds; memory growth: the worst round."""
    names = rounds[0][key].keys()
    out: dict[str, dict[str, float]] = {}
    for name in names:
        keys = rounds[0][key][name].keys()
        values = {k: [r[key][name][k] for r in rounds] for k in keys}
        out[name] = {
            k: max(v) if k.endswith("memory_growth_mb") else statistics.median(v)
            for k, v in values.items()
        }
    return out


def _check(what: str, value: float, limit: float, below: bool, unit: str = "") -> dict[str, Any]:
    met = value < limit if below else value >= limit
    return {
        "target": what,
        "measured": round(value, 3),
        "limit": f"{'<' if below else '>='} {limit}{unit}",
        "met": met,
    }


CPU_TARGET = 1.0  # PRODUCT.md section 9 and issue 20: the checks for free (it was 1.15x)


def checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    """PRODUCT.md section 9, target by target, from the medians."""
    median, idle = result["median"], result["idle"]
    out = []
    for name in GATEWAYS:
        store = "SQLite" if name.endswith("sqlite") else "Redis"
        if name not in median:
            reason = result["skipped"].get(name, "not measured")
            out.append(
                {"target": f"all figures ({store})", "measured": None, "limit": reason, "met": None}
            )
            continue
        m = median[name]
        out += [
            _check(
                f"CPU per verified request vs pass-through ({store})",
                m["cpu_vs_passthrough"],
                CPU_TARGET,
                below=False,
                unit="x",
            )
            | {"limit": f"<= {CPU_TARGET}x", "met": m["cpu_vs_passthrough"] <= CPU_TARGET},
            _check(
                f"added latency p50, 1 connection ({store})", m["added_p50_ms"], 0.5, True, " ms"
            ),
            _check(
                f"added latency p99, 1 connection ({store})", m["added_p99_ms"], 1.0, True, " ms"
            ),
            _check(f"100 MB download vs direct ({store})", m["down_vs_direct"], 0.6, False, "x"),
            _check(f"100 MB upload vs direct ({store})", m["up_vs_direct"], 0.6, False, "x"),
            _check(
                f"memory growth during 100 MB bodies, worst ({store})",
                max(m["down_memory_growth_mb"], m["up_memory_growth_mb"]),
                16,
                True,
                " MB",
            ),
            _check(
                f"memory per idle keep-alive connection ({store})",
                idle[name]["kb_per_connection"],
                12,
                True,
                " KB",
            ),
        ]
    nginx_auth = result["pair_median"].get("nginx_auth")
    if nginx_auth is not None:
        out.append(
            _check(
                "nginx auth_request + gateway vs nginx alone, requests/s (shipped config)",
                nginx_auth["rps_vs_nginx"],
                0.8,
                False,
                "x",
            )
        )
    workers = result["workers"]
    out.append(
        _check(
            "2 workers vs 1 worker, requests/s (SQLite)",
            workers["median_scaling"],
            1.6,
            False,
            "x (0.8 x 2)",
        )
    )
    return out


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


COLUMNS = [
    ("req/s", "requests_per_s", "{:.0f}"),
    ("CPU us/req", "cpu_us_per_request", "{:.1f}"),
    ("CPU x pass", "cpu_vs_passthrough", "{:.2f}"),
    ("p50 ms", "p50_ms", "{:.3f}"),
    ("p99 ms", "p99_ms", "{:.3f}"),
    ("+p50 ms", "added_p50_ms", "{:.3f}"),
    ("+p99 ms", "added_p99_ms", "{:.3f}"),
    ("down MB/s", "down_mb_per_s", "{:.0f}"),
    ("down x dir", "down_vs_direct", "{:.2f}"),
    ("up MB/s", "up_mb_per_s", "{:.0f}"),
    ("up x dir", "up_vs_direct", "{:.2f}"),
    ("mem MB", "memory", "{:.1f}"),
]


def figure_table(rows: dict[str, dict[str, float]]) -> str:
    out = []
    for name, r in rows.items():
        r = r | {"memory": max(r["down_memory_growth_mb"], r["up_memory_growth_mb"])}
        out.append([name, *(fmt.format(r[key]) for _, key, fmt in COLUMNS)])
    return _table(["target", *(title for title, _, _ in COLUMNS)], out)


PAIR_COLUMNS = [
    ("req/s", "requests_per_s", "{:.0f}"),
    ("x nginx", "rps_vs_nginx", "{:.2f}"),
    ("CPU us/req", "cpu_us_per_request", "{:.1f}"),
    ("front us", "front_cpu_us_per_request", "{:.1f}"),
    ("gateway us", "gateway_cpu_us_per_request", "{:.1f}"),
    ("CPU x nginx", "cpu_vs_nginx", "{:.2f}"),
    ("nginx req/s", "nginx_requests_per_s", "{:.0f}"),
    ("p50 ms", "p50_ms", "{:.3f}"),
    ("p99 ms", "p99_ms", "{:.3f}"),
]


def pair_table(rows: dict[str, dict[str, float]]) -> str:
    """Forward auth: each pair against nginx proxying alone."""
    out = [
        [name, *(fmt.format(r[key]) for _, key, fmt in PAIR_COLUMNS)] for name, r in rows.items()
    ]
    return "forward auth (front proxy + gateway, vs nginx alone)\n" + _table(
        ["pair", *(title for title, _, _ in PAIR_COLUMNS)], out
    )


def round_table(round_: dict[str, Any]) -> str:
    return f"\nround {round_['round']} (order: {' '.join(round_['order'])})\n" + figure_table(
        round_["ratios"]
    )


def summary(result: dict[str, Any]) -> str:
    idle = _table(
        ["target", "connections", "RSS before MB", "RSS after MB", "KB/connection"],
        [
            [
                name,
                str(i["connections"]),
                f"{i['rss_before_mb']:.1f}",
                f"{i['rss_after_mb']:.1f}",
                f"{i['kb_per_connection']:.2f}",
            ]
            for name, i in result["idle"].items()
        ],
    )
    workers = result["workers"]
    scaling = _table(
        ["round", "1 worker req/s", "2 workers req/s", "scaling"],
        [
            [
                str(n + 1),
                f"{r['workers_1_rps']:.0f}",
                f"{r['workers_2_rps']:.0f}",
                f"{r['scaling']:.2f}",
            ]
            for n, r in enumerate(workers["rounds"])
        ],
    )
    verdicts = _table(
        ["target (PRODUCT.md 9)", "measured", "limit", "met"],
        [
            [
                c["target"],
                "-" if c["measured"] is None else str(c["measured"]),
                c["limit"],
                {True: "yes", False: "NO", None: "skipped"}[c["met"]],
            ]
            for c in result["checks"]
        ],
    )
    skipped = "".join(f"\nskipped {name}: {why}" for name, why in result["skipped"].items())
    features = result["median"].get("gateway_features")
    if features is not None:
        skipped += (
            "\nfeatures (remember_browser, reauthenticate_after on every path): CPU per request "
            f"{features['cpu_vs_gateway_sqlite']:.3f}x gateway_sqlite"
        )
    return (
        f"\nmedian of {len(result['rounds'])} rounds\n{figure_table(result['median'])}\n"
        f"\n{pair_table(result['pair_median'])}\n"
        f"\nidle keep-alive connections\n{idle}\n\nworkers (unpinned)\n{scaling}\n"
        f"\npinning: {result['pinning']}{skipped}\n\n{verdicts}"
    )
