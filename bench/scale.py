"""Costs as work grows (issue 20, part 3): the same verified request against a gateway with a
small and with a large policy, store, and a slow store, as ratios within one run.

`python -m bench.scale [--quick] [--rounds N] [--duration S] [--output FILE]` runs it alone and
prints a table; bench/harness.py calls `measure_scale` (with its own processes, directory and
cores) and adds `checks(result)` to its own.

What runs (everything under ROOT/scale, on 127.0.0.1; one nginx upstream of its own unless
given one):

- policy: `policy_small` (1 company, 10 access rules) and `policy_large` (1,000 company files,
  10,000 access rules over 10 applications, 1,000 of them the benchmark application's: see
  bench/scale_policy.py), each on a SQLite store of its own;
- stores: `sqlite_small` / `sqlite_large` and `redis_small` / `redis_large` (two redis-servers):
  100 enrolled users and 100 sessions against 100,000 and 1,000,000, written through the
  gateway's own store classes and records (bench/scale_stores.py);
- store traffic: `sqlite_count` (bench/sqlite_count.py: the gateway with each SQL statement
  counted, on sqlite_small's store) and `redis_proxy0` / `redis_proxy1`, on redis_small's
  Redis through bench/delay_proxy.py with no delay and with `delay_ms`.

Each round measures every pair in turn (which of the two goes first alternates), with the
server under test alone on its core as bench/harness.py places it; ratios are within a round,
the result is their median.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import delay_proxy, load, scale_policy, scale_stores, servers
from bench.procs import Processes, cpu_seconds, pin, raise_nofile
from bench.scale_report import checks, summary


@dataclass
class ScalePlan:
    rounds: int = 5
    duration: float = 5.0  # seconds per wrk run
    connections: int = 32
    companies: int = 1000
    rules: int = 10_000
    applications: int = 10
    small_rules: int = 10
    sessions: int = 1_000_000
    users: int = 100_000
    small: int = 100  # users and sessions of the small stores
    active: int = 100  # sessions in use at once, for the store traffic and delay figures
    delay_ms: float = 1.0
    reloads: int = 5  # policy checks and reloads timed, per policy
    quick: bool = False


QUICK = ScalePlan(
    rounds=1,
    duration=0.3,
    connections=8,
    companies=20,
    rules=200,
    applications=2,
    sessions=2000,
    users=200,
    small=10,
    active=10,
    reloads=1,
    quick=True,
)

PAIRS = {  # figure -> (the small one, the large one)
    "policy": ("policy_small", "policy_large"),
    "sqlite": ("sqlite_small", "sqlite_large"),
    "redis": ("redis_small", "redis_large"),
    "delay": ("redis_proxy0", "redis_proxy1"),
}


def rotating_cookies_lua(cookies: list[str]) -> str:
    """wrk: each request carries the next of `cookies` (sessions in use at once), and the
    harness's exact report at the end."""
    quoted = ", ".join(json.dumps(c) for c in cookies)
    return (
        f"local cookies = {{{quoted}}}\nlocal n = 0\n"
        "request = function()\n  n = n % #cookies + 1\n"
        '  return wrk.format(nil, nil, {["Cookie"] = cookies[n], ["Host"] = wrk.headers["Host"]})\n'
        "end\n" + load.REPORT_LUA
    )


class Scale:
    def __init__(
        self,
        plan: ScalePlan,
        root: Path,
        processes: Processes,
        other_cpus: set[int] | None,
        subject_cpus: set[int] | None,
    ) -> None:
        self.plan = plan
        self.root = root / "scale"
        self.root.mkdir(parents=True, exist_ok=True)
        self.processes = processes
        self.other_cpus = other_cpus
        self.subject_cpus = subject_cpus
        self.servers: dict[str, servers.Server] = {}
        self.configs: dict[str, Path] = {}
        self.policy_dirs: dict[str, Path] = {}
        self.active: dict[str, list[str]] = {}  # store -> Cookie headers of its active sessions
        self.fills: dict[str, dict[str, Any]] = {}
        self.proxy_control: dict[str, int] = {}
        self.redis_ports: dict[str, int] = {}
        self.count_file = self.root / "sqlite-statements"
        self.script = self.root / "report.lua"
        self.script.write_text(load.REPORT_LUA)

    # -- starting ---------------------------------------------------------------------------
    def start(self, upstream: str | None, hash_: str | None) -> None:
        p, root, plan = self.processes, self.root, self.plan
        if upstream is None:
            site = servers.www(root, 0)
            port = servers.free_port()
            block = servers.upstream_block(port, site, servers.free_port())
            pid = servers.start_nginx(p, root, "scale_upstream", block)
            upstream = f"http://127.0.0.1:{port}"
            servers.wait_http(f"{upstream}/{servers.SMALL}", p, pid, "scale_upstream")
        hash_ = hash_ or servers.password_hash()
        for name in ("small", "large"):
            port = self.redis_ports[name] = servers.free_port()
            directory = root / f"redis-{name}"
            directory.mkdir(exist_ok=True)
            args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
            args += ["--dir", str(directory), "--save", "", "--appendonly", "no"]
            pid = p.start(f"scale_redis_{name}", args)
            servers.wait_redis(port, p, pid)
        for delay, name in ((0.0, "redis_proxy0"), (plan.delay_ms, "redis_proxy1")):
            listen, control = servers.free_port(), servers.free_port()
            self.proxy_control[name] = control
            self.redis_ports[name] = listen
            args = [str(listen), str(self.redis_ports["small"]), str(delay), str(control)]
            servers.start_python(p, f"scale_{name}_tcp", "bench.delay_proxy", *args)
        for name in PAIRS["delay"]:
            self._wait_port(self.redis_ports[name])

        def redis(name: str) -> str:
            return f"redis://127.0.0.1:{self.redis_ports[name]}/0?allow_volatile=yes"

        def sqlite(name: str) -> str:
            return f"sqlite://{root / 'gateway' / name}.db"

        small_policy = scale_policy.policy_files(1, plan.small_rules, 1)
        large_policy = scale_policy.policy_files(plan.companies, plan.rules, plan.applications)
        stores = {
            "policy_small": (sqlite("policy_small"), small_policy, 1),
            "policy_large": (sqlite("policy_large"), large_policy, plan.applications),
            "sqlite_small": (sqlite("sqlite_small"), None, 1),
            "sqlite_large": (sqlite("sqlite_large"), None, 1),
            "sqlite_count": (sqlite("sqlite_small"), None, 1),
            "redis_small": (redis("small"), None, 1),
            "redis_large": (redis("large"), None, 1),
            "redis_proxy0": (redis("redis_proxy0"), None, 1),
            "redis_proxy1": (redis("redis_proxy1"), None, 1),
        }
        ports = {name: servers.free_port() for name in stores}
        for name, (store, policy, apps) in stores.items():
            config = servers.gateway_config(root, name, ports[name], store, upstream, hash_, policy)
            if apps > 1:
                scale_policy.add_applications(config, apps)
            self.configs[name] = config
            self.policy_dirs[name] = Path(json.loads(config.read_text())["policy_dir"])
            if name == "sqlite_count":
                args = ["bench.sqlite_count", str(self.count_file), "run", "-c", str(config)]
                pid = servers.start_python(p, f"scale_{name}", *args)
            else:
                pid = servers.start_gateway(p, f"scale_{name}", config)
            url = f"http://127.0.0.1:{ports[name]}"
            self.servers[name] = servers.Server(name, f"gateway, {name}", url, pid)
        for server in self.servers.values():
            servers.wait_http(server.url + "/.gateway/healthz", p, server.pid, server.name, 300)
        key = (root / "gateway" / "encryption-key").read_text().strip()
        signed: dict[str, str] = {}
        for name in ("policy_small", "policy_large", "sqlite_small", "sqlite_large"):
            signed[name], _ = servers.sign_in(self.servers[name].url)
        signed["redis_small"], _ = servers.sign_in(self.servers["redis_small"].url)
        signed["redis_large"], _ = servers.sign_in(self.servers["redis_large"].url)
        signed["sqlite_count"] = signed["sqlite_small"]  # the same store
        signed["redis_proxy0"] = signed["redis_proxy1"] = signed["redis_small"]
        for name, cookie in signed.items():
            self.servers[name].headers = {"Cookie": cookie}
        for size, sessions, users, active in (
            ("small", plan.small, plan.small, plan.active),
            ("large", plan.sessions, plan.users, 0),
        ):
            cookie = signed[f"sqlite_{size}"]
            path = root / "gateway" / f"sqlite_{size}.db"
            figures = scale_stores.fill_sqlite(path, key, cookie, sessions, users, active)
            self.active[f"sqlite_{size}"] = figures.pop("active_cookies")
            self.fills[f"sqlite_{size}"] = figures
            url = f"redis://127.0.0.1:{self.redis_ports[size]}/0"
            figures = scale_stores.fill_redis(
                url, key, signed[f"redis_{size}"], sessions, users, active
            )
            self.active[f"redis_{size}"] = figures.pop("active_cookies")
            self.fills[f"redis_{size}"] = figures
        for server in self.servers.values():
            self.check(server)
        for store in ("sqlite_small", "redis_small"):
            for cookie in self.active[store][:3]:
                self.check(self.servers[store], cookie)

    def _wait_port(self, port: int) -> None:
        import socket

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nothing listens on {port}")

    def check(self, server: servers.Server, cookie: str | None = None) -> None:
        probe = (
            server
            if cookie is None
            else servers.Server(
                server.name, server.what, server.url, server.pid, {"Cookie": cookie}
            )
        )
        if not servers.still_verified(probe):
            raise RuntimeError(f"{server.name}: the session is not verified")

    # -- placing and loading ----------------------------------------------------------------
    def arrange(self, subject: servers.Server | None) -> None:
        """As bench/harness.py: the server under test alone on its core, the rest elsewhere."""
        if self.other_cpus is None or self.subject_cpus is None:
            return
        for _, process in self.processes:
            if process.poll() is None:
                pin(
                    process.pid, self.other_cpus if subject else self.other_cpus | self.subject_cpus
                )
        if subject is not None:
            pin(subject.pid, self.subject_cpus)

    def settle(self, server: servers.Server, limit: float = 60.0) -> None:
        """Wait until `server` is idle (under 4% of a core for half a second): a policy written
        less than a second before a load is read once more by the watcher, a second later, and
        that load must not be measured as the next run's requests' work."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = cpu_seconds(server.pid)
            time.sleep(0.5)
            if cpu_seconds(server.pid) - before < 0.02:
                return

    def wrk(
        self,
        server: servers.Server,
        connections: int | None = None,
        script: Path | None = None,
        seconds: float | None = None,
    ) -> dict[str, float]:
        self.arrange(server)
        plain = servers.Server(server.name, server.what, server.url, server.pid)
        target = server if script is None else plain  # the script sets the cookies itself
        setting = load.Load(self.plan.connections, seconds or self.plan.duration, self.other_cpus)
        result = load.wrk(target, setting, connections, script or self.script)
        self.check(server)
        return result

    def rotating_script(self, store: str) -> Path:
        path = self.root / f"rotate-{store}.lua"
        if not path.exists():
            path.write_text(rotating_cookies_lua(self.active[store]))
        return path

    # -- the rounds -------------------------------------------------------------------------
    def round(self, number: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for figure, pair in PAIRS.items():
            order = pair if number % 2 == 0 else pair[::-1]
            if figure == "delay":
                script = self.rotating_script("redis_small")
                runs = {name: self.wrk(self.servers[name], script=script) for name in order}
                small, large = (runs[name] for name in pair)
                out[figure] = {
                    "no_delay_rps": small["requests_per_s"],
                    "delay_rps": large["requests_per_s"],
                    "rps_ratio": large["requests_per_s"] / small["requests_per_s"],
                }
                continue
            for name in pair:
                self.settle(self.servers[name])
            runs = {name: self.wrk(self.servers[name]) for name in order}
            small, large = (runs[name] for name in pair)
            out[figure] = {
                "small_cpu_us": small["cpu_us_per_request"],
                "large_cpu_us": large["cpu_us_per_request"],
                "cpu_ratio": large["cpu_us_per_request"] / small["cpu_us_per_request"],
                "small_rps": small["requests_per_s"],
                "large_rps": large["requests_per_s"],
            }
        out["reload_latency"] = self.latency_under_reloads(number)
        return out

    # -- policy check and reloads -----------------------------------------------------------
    def policy_check_seconds(self, name: str) -> float:
        args = [sys.executable, "-m", "gateway", "policy", "check", "-c", str(self.configs[name])]
        started = time.monotonic()
        done = subprocess.run(
            [*args, str(self.policy_dirs[name])], capture_output=True, text=True, check=False
        )
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"policy check of {name} failed: {done.stdout}{done.stderr}")
        return seconds

    def probe_status(self, server: servers.Server) -> int:
        try:
            with urllib.request.urlopen(server.url + scale_policy.PROBE, timeout=5) as answer:  # noqa: S310
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def flip(self, name: str, signal_it: bool, timeout: float = 180.0) -> float:
        """Flip the probe rule in `name`'s policy files; seconds until the gateway applies it
        (SIGHUP right after the write, or the watcher alone)."""
        server = self.servers[name]
        file = self.policy_dirs[name] / "access-bench.yaml"
        text = file.read_text()
        denied = scale_policy.probe_rule("deny")
        now_denied = denied in text
        new = text.replace(
            denied if now_denied else scale_policy.probe_rule("bypass"),
            scale_policy.probe_rule("bypass" if now_denied else "deny"),
        )
        wanted = 404 if now_denied else 403  # bypassed: the upstream has no such file
        started = time.monotonic()
        file.write_text(new)
        if signal_it:
            os.kill(server.pid, signal.SIGHUP)
        while time.monotonic() - started < timeout:
            if self.probe_status(server) == wanted:
                return time.monotonic() - started
            time.sleep(0.002)
        raise RuntimeError(f"{name}: the changed policy was not in force after {timeout:.0f}s")

    def reload_times(self, name: str) -> dict[str, float]:
        self.arrange(self.servers[name])
        sighup, watched = [], []
        for _ in range(self.plan.reloads):
            self.settle(self.servers[name])  # the watcher re-reads files a load just read
            sighup.append(self.flip(name, True))
            time.sleep(1.1)
            self.settle(self.servers[name])
            watched.append(self.flip(name, False))
            time.sleep(1.1)
        return {
            "sighup_s": statistics.median(sighup),
            "watch_s": statistics.median(watched),
            "sighup_max_s": max(sighup),
            "watch_max_s": max(watched),
        }

    def latency_under_reloads(self, number: int) -> dict[str, float]:
        """One connection's latency on policy_large, steady and while its policy is reloaded
        again and again (SIGHUP, wait until in force, next)."""
        server = self.servers["policy_large"]
        seconds = max(self.plan.duration, 1.0)
        results: dict[str, dict[str, float]] = {}
        reloads = [0]

        def reloading(stop: threading.Event) -> None:
            while not stop.is_set():
                self.flip("policy_large", True)
                reloads[0] += 1

        for kind in ("steady", "reloading") if number % 2 == 0 else ("reloading", "steady"):
            time.sleep(1.1)  # past the watcher's next look, which may re-read the last reload
            self.settle(server)
            stop = threading.Event()
            worker = threading.Thread(target=reloading, args=(stop,), daemon=True)
            if kind == "reloading":
                worker.start()
            results[kind] = self.wrk(server, connections=1, seconds=seconds)
            stop.set()
            if kind == "reloading":
                worker.join()
        steady, busy = results["steady"], results["reloading"]
        return {
            "steady_p50_ms": steady["p50_ms"],
            "steady_p99_ms": steady["p99_ms"],
            "reloading_p50_ms": busy["p50_ms"],
            "reloading_p99_ms": busy["p99_ms"],
            "added_p99_ms": busy["p99_ms"] - steady["p99_ms"],
            "reloads": reloads[0],
        }

    # -- store traffic ------------------------------------------------------------------------
    def traffic(self) -> dict[str, Any]:
        """Store round trips per verified request (one session, as the CPU figures) and per
        second per session in use (the active sessions in turn)."""
        out: dict[str, Any] = {}
        count = self.servers["sqlite_count"]
        proxy = self.servers["redis_proxy0"]
        for store, server, counter in (
            ("sqlite", count, self._statements),
            (
                "redis",
                proxy,
                lambda: int(delay_proxy.counts(self.proxy_control["redis_proxy0"])["round_trips"]),
            ),
        ):
            before = counter()
            single = self.wrk(server)
            middle = counter()
            script = self.rotating_script(f"{store}_small")
            spread = self.wrk(server, script=script)
            after = counter()
            out[store] = {
                "round_trips_per_request": (middle - before) / single["requests"],
                "round_trips_per_s_per_active_session": (after - middle)
                / spread["wall_seconds"]
                / len(self.active[f"{store}_small"]),
                "active_sessions": len(self.active[f"{store}_small"]),
                "requests_per_s_spread": spread["requests_per_s"],
            }
        delayed = delay_proxy.counts(self.proxy_control["redis_proxy1"])
        out["redis"]["delay_proxy_mean_added_ms"] = delayed["mean_added_delay_ms"]
        return out

    def _statements(self) -> int:
        """The launcher's count as of now: from a write that began after this call did (two
        writes on; it writes every 50 ms, later when the gateway is busy)."""
        deadline = time.monotonic() + 30
        first: int | None = None
        while time.monotonic() < deadline:
            fields = self.count_file.read_text().split() if self.count_file.exists() else []
            if len(fields) == 2:
                count, written = int(fields[0]), int(fields[1])
                if first is None:
                    first = written
                elif written >= first + 2:
                    return count
            time.sleep(0.02)
        raise RuntimeError(f"{self.count_file}: the statement count stopped being written")

    # -- all --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        plan = self.plan
        if not plan.quick:  # warm-up: every gateway's first requests, compiled paths, caches
            for server in self.servers.values():
                self.wrk(server, seconds=1.0)
        rounds = []
        for number in range(plan.rounds):
            rounds.append(self.round(number))
            print(f"scale: round {number + 1} {json.dumps(rounds[-1])}", flush=True)
        checks_s = {
            name: statistics.median(self.policy_check_seconds(name) for _ in range(plan.reloads))
            for name in PAIRS["policy"]
        }
        reloads = {name: self.reload_times(name) for name in PAIRS["policy"]}
        traffic = self.traffic()
        self.arrange(None)

        def median(figure: str, key: str) -> float:
            return float(statistics.median(r[figure][key] for r in rounds))

        files = len(list(self.policy_dirs["policy_large"].glob("*.yaml")))
        return {
            "plan": asdict(plan),
            "rounds": rounds,
            "policy": {
                "files": files,
                "companies": plan.companies,
                "rules": plan.rules,
                "small_rules": plan.small_rules,
                "cpu_ratio": median("policy", "cpu_ratio"),
                "small_cpu_us": median("policy", "small_cpu_us"),
                "large_cpu_us": median("policy", "large_cpu_us"),
                "check_s": checks_s,
                "reload": reloads,
                "steady_p99_ms": median("reload_latency", "steady_p99_ms"),
                "reloading_p99_ms": median("reload_latency", "reloading_p99_ms"),
                "added_p99_ms": median("reload_latency", "added_p99_ms"),
            },
            "stores": {
                store: {
                    "cpu_ratio": median(store, "cpu_ratio"),
                    "small_cpu_us": median(store, "small_cpu_us"),
                    "large_cpu_us": median(store, "large_cpu_us"),
                    "small": self.fills[f"{store}_small"],
                    "large": self.fills[f"{store}_large"],
                }
                for store in ("sqlite", "redis")
            },
            "traffic": traffic
            | {
                "delay": {
                    "delay_ms": plan.delay_ms,
                    "rps_ratio": median("delay", "rps_ratio"),
                    "no_delay_rps": median("delay", "no_delay_rps"),
                    "delay_rps": median("delay", "delay_rps"),
                    "active_sessions": len(self.active["redis_small"]),
                }
            },
        }


def measure_scale(
    plan: ScalePlan,
    root: Path,
    processes: Processes,
    other_cpus: set[int] | None = None,
    subject_cpus: set[int] | None = None,
    upstream: str | None = None,
    password_hash: str | None = None,
) -> dict[str, Any]:
    """Start the scale servers (added to `processes`, which the caller stops; files under
    `root`/scale), measure, and return the figures (`checks` reads them). `other_cpus` /
    `subject_cpus`: where the load and helpers run and where the server under test runs alone
    (None, None: unpinned). `upstream`: an nginx serving servers.SMALL (else one of its own);
    `password_hash`: servers.password_hash() if the caller has it."""
    scale = Scale(plan, root, processes, other_cpus, subject_cpus)
    scale.start(upstream, password_hash)
    return scale.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes, seconds")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--reloads", type=int, help="policy checks and reloads timed (5)")
    parser.add_argument("--output", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else ScalePlan()
    if args.rounds:
        plan = dataclasses.replace(plan, rounds=args.rounds)
    if args.duration:
        plan = dataclasses.replace(plan, duration=args.duration)
    if args.reloads:
        plan = dataclasses.replace(plan, reloads=args.reloads)
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [tool for tool in ("wrk", "nginx", "redis-server") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"bench.scale: missing {', '.join(missing)}: run scripts/setup --test")
    raise_nofile()

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    cpus = sorted(os.sched_getaffinity(0))
    other, subject = (set(cpus[:-1]), {cpus[-1]}) if len(cpus) >= 2 else (None, None)
    if other:
        os.sched_setaffinity(0, other)
    root = Path(tempfile.mkdtemp(prefix="gateway-scale-"))
    root.chmod(0o755)  # nginx's workers may run as nobody
    processes = Processes(root)
    started = time.monotonic()
    try:
        result = measure_scale(plan, root, processes, other, subject)
    except BaseException:
        for name, _ in processes:
            tail = processes.log_tail(name).strip()
            if tail:
                print(f"--- {name} log ---\n{tail}", file=sys.stderr)
        raise
    finally:
        processes.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["checks"] = checks(result)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
