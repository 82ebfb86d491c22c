"""`python -m bench`: start everything, measure in interleaved rounds, report ratios per round
and their median, check them against the targets of PRODUCT.md section 9, write JSON."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench import load, report, scale, scale_report, servers
from bench.plan import REDIS_MISSING, Plan, ensure_tools, machine, parse
from bench.procs import Processes, cpu_seconds, pin, raise_nofile


class Bench:
    def __init__(self, plan: Plan, root: Path) -> None:
        self.plan = plan
        self.root = root
        self.processes = Processes(root)
        self.targets: list[servers.Server] = []
        self.pairs: list[servers.Server] = []  # a front proxy and the gateway it asks
        self.workers2: servers.Server | None = None
        self.skipped: dict[str, str] = {}
        self.helpers: dict[str, int] = {}
        cpus = sorted(os.sched_getaffinity(0))
        self.subject_cpus = {cpus[-1]} if len(cpus) >= 2 else None
        self.other_cpus = set(cpus[:-1]) if len(cpus) >= 2 else None
        self.all_cpus = set(cpus)

    # -- starting -----------------------------------------------------------------------
    def start(self) -> None:
        p, root = self.processes, self.root
        site = servers.www(root, self.plan.body_bytes)
        self.upload = site.parent / "upload.bin"
        shutil.copyfile(site / "big.bin", self.upload)
        port = {
            name: servers.free_port()
            for name in (
                "sink",
                "upstream",
                "nginx",
                "pass",
                "redis",
                "gw_sql",
                "gw_red",
                "gw_2",
                "gw_feat",
                "gw_fa",
                "fa_nginx",
                "fa_caddy",
            )
        }
        up = f"http://127.0.0.1:{port['upstream']}"
        sink = servers.start_python(p, "sink", "bench.sink", str(port["sink"]))
        upstream = servers.start_nginx(
            p, root, "upstream", servers.upstream_block(port["upstream"], site, port["sink"])
        )
        nginx = servers.start_nginx(
            p, root, "nginx", servers.proxy_block(port["nginx"], port["upstream"])
        )
        passthrough = servers.start_python(
            p, "passthrough", "bench.passthrough", str(port["pass"]), up
        )
        redis = servers.start_redis(p, root, port["redis"])
        hash_ = servers.password_hash()
        self.upstream_url, self.password_hash = up, hash_
        sql_store = f"sqlite://{root / 'gateway' / 'gateway.db'}"
        # a throwaway redis-server without persistence: the gateway is told so explicitly
        red_store = f"redis://127.0.0.1:{port['redis']}/0?allow_volatile=yes"
        conf = {
            name: servers.gateway_config(root, name, port[key], store, up, hash_)
            for name, key, store in (
                ("gateway_sqlite", "gw_sql", sql_store),
                ("gateway_redis", "gw_red", red_store),
                ("gateway_workers2", "gw_2", sql_store),
            )
        }
        # a store of its own: its sign-in enrols anew (the same TOTP code twice would be a replay)
        feat_store = f"sqlite://{root / 'gateway' / 'features.db'}"
        conf["gateway_features"] = servers.gateway_config(
            root, "gateway_features", port["gw_feat"], feat_store, up, hash_, servers.FEATURES
        )
        # forward auth: the shipped nginx configuration and the documented Caddyfile in front of
        # the same upstream, both asking one gateway (a store of its own)
        fa_store = f"sqlite://{root / 'gateway' / 'forward-auth.db'}"
        conf["gateway_forward_auth"] = servers.gateway_config(
            root, "gateway_forward_auth", port["gw_fa"], fa_store, up, hash_, forward_auth=True
        )
        gw_fa = servers.start_gateway(p, "gateway_forward_auth", conf["gateway_forward_auth"])
        (root / "auth-cache").mkdir()
        fa_block = servers.forward_auth_nginx_block(
            port["fa_nginx"], port["gw_fa"], port["upstream"], root / "auth-cache"
        )
        fa_nginx = servers.start_nginx(p, root, "nginx_auth", fa_block)
        fa_caddy = servers.start_caddy(p, root, port["fa_caddy"], port["gw_fa"], port["upstream"])
        gw_sql = servers.start_gateway(p, "gateway_sqlite", conf["gateway_sqlite"])
        gw_2 = servers.start_gateway(p, "gateway_workers2", conf["gateway_workers2"], workers=2)
        gw_feat = servers.start_gateway(p, "gateway_features", conf["gateway_features"])
        servers.wait_redis(port["redis"], p, redis)
        gw_red = servers.start_gateway(p, "gateway_redis", conf["gateway_redis"])
        self.helpers = {"upstream": upstream, "sink": sink, "redis": redis}

        def url(key: str) -> str:
            return f"http://127.0.0.1:{port[key]}"

        health = "/.gateway/healthz"
        for name, pid, where in (
            ("sink", sink, url("sink") + "/"),
            ("upstream", upstream, f"{up}/{servers.SMALL}"),
            ("nginx", nginx, f"{url('nginx')}/{servers.SMALL}"),
            ("passthrough", passthrough, f"{url('pass')}/{servers.SMALL}"),
            ("gateway_sqlite", gw_sql, url("gw_sql") + health),
            ("gateway_workers2", gw_2, url("gw_2") + health),
            ("gateway_features", gw_feat, url("gw_feat") + health),
            ("gateway_forward_auth", gw_fa, url("gw_fa") + health),
            ("nginx_auth", fa_nginx, url("fa_nginx") + "/.gateway/healthz"),
            ("caddy_auth", fa_caddy, url("fa_caddy") + "/.gateway/healthz"),
        ):
            servers.wait_http(where, p, pid, name)
        cookie, secret = servers.sign_in(url("gw_sql"))
        verified = {"Cookie": cookie}
        self.targets = [
            servers.Server("direct", "nginx upstream, no proxy", up, upstream),
            servers.Server("passthrough", "bare aiohttp pass-through", url("pass"), passthrough),
            servers.Server("nginx", "nginx reverse proxy", url("nginx"), nginx),
            servers.Server(
                "gateway_sqlite",
                "gateway, verified session, SQLite store",
                url("gw_sql"),
                gw_sql,
                verified,
            ),
        ]
        cookie, _ = servers.sign_in(url("gw_feat"))
        self.targets.append(
            servers.Server(
                "gateway_features",
                "gateway as gateway_sqlite, its policy with remember_browser and a "
                "reauthenticate_after rule on every path",
                url("gw_feat"),
                gw_feat,
                {"Cookie": cookie},
            )
        )
        cookie, _ = servers.sign_in(url("fa_nginx"))  # through nginx, as a browser would
        self.pairs = [
            servers.Server(
                "nginx_auth",
                "nginx (deploy/nginx/gateway.conf) asking the gateway with auth_request",
                url("fa_nginx"),
                fa_nginx,
                {"Cookie": cookie},
                also=(gw_fa,),
            ),
            servers.Server(
                "caddy_auth",
                "Caddy (the Caddyfile of docs/forward-auth.md) asking the gateway with "
                "forward_auth",
                url("fa_caddy"),
                fa_caddy,
                {"Cookie": cookie},
                also=(gw_fa,),
            ),
        ]
        try:
            servers.wait_http(url("gw_red") + health, p, gw_red, "gateway_redis")
            cookie, _ = servers.sign_in(url("gw_red"), secret)
        except (RuntimeError, TimeoutError) as exc:
            reason = str(exc).strip().splitlines()[-1][:300]
            self.skipped["gateway_redis"] = f"{REDIS_MISSING}: {reason}"
            print(f"bench: {self.skipped['gateway_redis']}", flush=True)
        else:
            self.targets.append(
                servers.Server(
                    "gateway_redis",
                    "gateway, verified session, Redis store",
                    url("gw_red"),
                    gw_red,
                    {"Cookie": cookie},
                )
            )
        self.workers2 = servers.Server(
            "gateway_workers2", "gateway --workers 2, SQLite", url("gw_2"), gw_2, verified
        )

    @property
    def nginx(self) -> servers.Server:
        return next(s for s in self.targets if s.name == "nginx")

    # -- placing ------------------------------------------------------------------------
    def arrange(self, subject: servers.Server | None, alone: bool = True) -> None:
        """The server under test alone on the last core; everything else (wrk, the upstream,
        the sink, Redis, idle servers) on the others. None: every process on every core.
        `alone=False`: the subject stays with the others (the direct upstream during large
        transfers, placed as it is when a proxy is measured)."""
        if self.subject_cpus is None or self.other_cpus is None:
            return
        for _, process in self.processes:
            if process.poll() is None:
                pin(process.pid, self.other_cpus if subject else self.all_cpus)
        if subject is not None and alone:
            for pid in subject.pids:
                pin(pid, self.subject_cpus)

    @property
    def pinning(self) -> str:
        if self.subject_cpus is None:
            return "nothing pinned: fewer than 2 usable cores"
        return (
            f"the server under test on core {sorted(self.subject_cpus)}, wrk/curl, the "
            f"upstream nginx, the sink and redis-server on {sorted(self.other_cpus or ())}; "
            "workers scaling unpinned (all cores shared with wrk and the upstream)"
        )

    def load(self, seconds: float, pinned: bool = True) -> load.Load:
        cpus = self.other_cpus if pinned else self.all_cpus
        return load.Load(self.plan.connections, seconds, cpus if self.other_cpus else None)

    # -- measuring ----------------------------------------------------------------------
    def check(self, server: servers.Server) -> None:
        if server.headers and not servers.still_verified(server):
            raise RuntimeError(f"{server.name}: the session is no longer verified")

    def rate(
        self, server: servers.Server, script: Path, seconds: float, connections: int | None = None
    ) -> dict[str, float]:
        helpers = {name: cpu_seconds(pid) for name, pid in self.helpers.items()}
        result = load.wrk(server, self.load(seconds), connections, script)
        for name, pid in self.helpers.items():
            result[f"{name}_cpu_us_per_request"] = (
                (cpu_seconds(pid) - helpers[name]) * 1e6 / result["requests"]
            )
        self.check(server)
        return result

    def run(self) -> dict[str, Any]:
        plan = self.plan
        script = self.root / "report.lua"
        script.write_text(load.REPORT_LUA)
        for server in self.targets + self.pairs + ([self.workers2] if self.workers2 else []):
            if not plan.warmup:
                break
            self.arrange(server)
            load.wrk(server, self.load(plan.warmup), None, script)
            load.wrk(server, self.load(plan.warmup / 2), 1, script)
        rounds = []
        for number in range(plan.rounds):
            shift = number % len(self.targets)
            order = self.targets[shift:] + self.targets[:shift]
            results: dict[str, dict[str, Any]] = {s.name: {} for s in order}
            for server in order:
                self.arrange(server)
                results[server.name]["rate"] = self.rate(server, script, plan.duration)
            for server in order:
                self.arrange(server)
                results[server.name]["latency"] = self.rate(
                    server, script, plan.latency_duration, 1
                )
            pairs: dict[str, dict[str, Any]] = {s.name: {} for s in self.pairs}
            for kind, seconds, connections in (
                ("rate", plan.duration, None),
                ("latency", plan.latency_duration, 1),
            ):
                for pair in self.pairs:  # nginx alone, its baseline, just before each pair
                    for server, key in ((self.nginx, f"nginx_{kind}"), (pair, kind)):
                        self.arrange(server)
                        pairs[pair.name][key] = self.rate(server, script, seconds, connections)
            for direction in ("down", "up"):
                for server in order:
                    self.arrange(server, alone=server.name != "direct")
                    results[server.name][direction] = load.transfers(
                        server, direction, plan.body_bytes, self.upload, plan.transfers
                    )
            pair_ratios = report.pair_ratios(pairs)
            rounds.append(
                {
                    "round": number + 1,
                    "order": [s.name for s in order],
                    "results": results,
                    "ratios": report.ratios(results),
                    "pairs": pairs,
                    "pair_ratios": pair_ratios,
                }
            )
            print(report.round_table(rounds[-1]), flush=True)
            print(report.pair_table(pair_ratios), flush=True)
        idle = {}
        for server in self.targets:
            self.arrange(server)
            idle[server.name] = load.idle_connections(server, plan.idle_connections, plan.settle)
        workers = self.scaling(script)
        self.arrange(None)
        measured: dict[str, Any] = {"rounds": rounds, "idle": idle, "workers": workers}
        if plan.scale:  # costs as work grows, on the same upstream
            measured["scale"] = scale.measure_scale(
                scale.ScalePlan(rounds=plan.rounds, duration=plan.duration),
                self.root,
                self.processes,
                self.other_cpus,
                self.subject_cpus,
                upstream=self.upstream_url,
                password_hash=self.password_hash,
            )
        return measured

    def scaling(self, script: Path) -> dict[str, Any]:
        """One worker against two, unpinned: the two gateways take turns."""
        one = next(s for s in self.targets if s.name == "gateway_sqlite")
        two = self.workers2
        assert two is not None
        self.arrange(None)
        rounds = []
        for _ in range(self.plan.workers_rounds):
            a = load.wrk(one, self.load(self.plan.duration, pinned=False), 64, script)
            b = load.wrk(two, self.load(self.plan.duration, pinned=False), 64, script)
            self.check(one)
            self.check(two)
            rounds.append(
                {
                    "workers_1_rps": a["requests_per_s"],
                    "workers_2_rps": b["requests_per_s"],
                    "scaling": b["requests_per_s"] / a["requests_per_s"],
                    "workers_1_cpu_us": a["cpu_us_per_request"],
                    "workers_2_cpu_us": b["cpu_us_per_request"],
                }
            )
        return {
            "connections": 64,
            "rounds": rounds,
            "median_scaling": statistics.median(r["scaling"] for r in rounds),
        }


def main(argv: list[str] | None = None) -> int:
    plan, output = parse(argv)
    ensure_tools()
    limit = raise_nofile()
    if limit < plan.idle_connections + 100:
        raise SystemExit(
            f"bench: the open-file limit is {limit}, need {plan.idle_connections + 100} (ulimit -n)"
        )

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    host = machine()  # before the harness pins itself
    root = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    started = time.monotonic()
    bench = Bench(plan, root)
    if bench.other_cpus:  # the harness, and curl that it starts, stay off the measured core
        os.sched_setaffinity(0, bench.other_cpus)
    try:
        bench.start()
        measured = bench.run()
    except BaseException:
        for name, _ in bench.processes:
            tail = bench.processes.log_tail(name).strip()
            if tail:
                print(f"--- {name} log ---\n{tail}", file=sys.stderr)
        raise
    finally:
        bench.processes.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "command": " ".join(["bench/run", *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "machine": host,
        "plan": vars(plan),
        "pinning": bench.pinning,
        "targets": {s.name: s.what for s in bench.targets + bench.pairs},
        "skipped": bench.skipped,
        **measured,
    }
    result["median"] = report.medians(measured["rounds"])
    result["pair_median"] = report.medians(measured["rounds"], "pair_ratios")
    result["checks"] = report.checks(result)
    if "scale" in result:
        result["scale"]["checks"] = scale_report.checks(result["scale"])
        result["checks"] += result["scale"]["checks"]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    if "scale" in result:
        print(scale_report.summary(result["scale"]), flush=True)
    print(report.summary(result), flush=True)
    print(f"bench: written to {output}", flush=True)
    return 0
