"""A real redis-server for the tests: started on a free port in a directory of its own, with an
append-only file synced on every write, so a server killed and started again keeps its data."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from tests.support import free_port

MISSING = "redis-server is not installed: run scripts/setup --test (it apt-installs it)"
DATABASES = 4096  # a fresh database number per test


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        raise RuntimeError(MISSING)
    return found


class RedisServer:
    def __init__(self, directory: Path, port: int = 0, *, password: str | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def start(self, *extra: str) -> RedisServer:
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--databases",
            str(DATABASES),
            "--logfile",
            "redis.log",
            *(["--requirepass", self.password] if self.password else []),
            *extra,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_or_kill()
        return self

    def _wait_or_kill(self) -> None:
        try:
            self.wait_ready()
        except BaseException:
            self.kill()
            raise

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(
            port=self.port, db=db, password=self.password, socket_timeout=2, decode_responses=True
        )

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log()}")
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server on port {self.port} did not answer") from None
                time.sleep(0.02)

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """A clean shutdown (SIGTERM)."""
        self._end(kill=False)

    def kill(self) -> None:
        """SIGKILL: the server dies mid-flight, as in a crash; the append-only file remains."""
        self._end(kill=True)

    def _end(self, kill: bool) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
        self.process.wait(10)
        self.process = None


class SentinelServer(RedisServer):
    """A real redis-sentinel watching `master_port` as the service `service`."""

    def __init__(self, directory: Path, master_port: int, service: str) -> None:
        super().__init__(directory)
        self.config = directory / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\nlogfile sentinel.log\n"
            f"sentinel monitor {service} 127.0.0.1 {master_port} 1\n"
        )

    def start(self, *extra: str) -> SentinelServer:
        args = [redis_server_binary(), str(self.config), "--sentinel", *extra]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_or_kill()
        return self


def cluster_port() -> int:
    """A free port below 55536 whose cluster bus port (10000 higher) is free too."""
    while True:
        port = 20000 + secrets.randbelow(35000)
        try:
            with socket.socket() as first, socket.socket() as bus:
                first.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


class RedisCluster:
    """Three real redis-server masters joined into a Redis Cluster (no replicas)."""

    def __init__(self, directory: Path) -> None:
        self.nodes = [RedisServer(directory / f"node{n}", cluster_port()) for n in range(3)]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> RedisCluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        for node in self.nodes:
            node.start("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        cli = str(Path(redis_server_binary()).with_name("redis-cli"))
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 15
        while not all(self._ready(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise TimeoutError("the Redis Cluster did not come up")
            time.sleep(0.05)

    @staticmethod
    def _ready(node: RedisServer) -> bool:
        with node.client() as client:
            info = str(client.execute_command("CLUSTER", "INFO"))
            return "cluster_state:ok" in info and int(client.dbsize()) >= 0

    def flush(self) -> None:
        for node in self.nodes:
            with node.client() as client:
                client.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
