"""The deployments to copy (deploy/compose/, deploy/kubernetes/) are valid and check out.

- The compose files are validated against the Compose Specification's JSON schema as
  check-jsonschema ships it (`--builtin-schema vendor.compose-spec`), the manifests against the
  Kubernetes API's schemas as kubernetes-validate ships them (strict: an unknown field is an
  error), both offline, from the installed packages.
- The settings and policies they ship pass `gateway policy check`, run as the operator runs it,
  against a real redis-server started with the very arguments the compose file and the
  StatefulSet give Redis (so the gateway's durability check sees the shipped configuration).
  Paths inside the containers are mapped: the test lays each mount of the gateway's container
  out under a temporary root (a compose bind mount's folder, a ConfigMap's or Secret's keys as
  files, a compose secret as /run/secrets/NAME), and rewrites each mount path in the settings
  to the same path under that root. Only the store URL is changed beyond that (to the test's
  Redis), after checking that it names the Redis the deployment ships.
- The wiring the schemas cannot see: selectors, names, probes, and nginx's address.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import redis
import yaml

from gateway.crypto import generate_key
from gateway.identity.portal import UsersFile
from gateway.settings import load_settings
from gateway.settings.model import SettingsError
from tests.redisserver import redis_server_binary
from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose"
KUBERNETES = REPO / "deploy" / "kubernetes"
COMPOSE_FILES = [COMPOSE / "compose.yaml", COMPOSE / "compose.nginx.yaml"]
MANIFESTS = [*sorted(KUBERNETES.glob("*.yaml")), KUBERNETES / "secret" / "secret.yaml"]
# The oldest Kubernetes the manifests promise (deploy/kubernetes/README.md) and the newest the
# installed kubernetes-validate knows.
KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.latest_version()]


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@functools.cache
def _parsed() -> tuple[dict[str, Any], ...]:
    return tuple(doc for path in MANIFESTS for doc in _documents(path))


def _manifests() -> list[dict[str, Any]]:
    """The manifests' documents, a fresh copy each time (tests may change theirs)."""
    return copy.deepcopy(list(_parsed()))


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


# --- the schemas -------------------------------------------------------------------------------


def _check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("check-jsonschema")),
            "--builtin-schema",
            "vendor.compose-spec",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_files_follow_the_compose_specification(tmp_path: Path) -> None:
    # with a copy that misspells a key, which the same run must refuse: the pass of the shipped
    # files then means something
    bad = tmp_path / "misspelt.yaml"
    document = yaml.safe_load(COMPOSE_FILES[0].read_text())
    gateway = document["services"]["gateway"]
    gateway["helthcheck"] = gateway.pop("healthcheck")
    bad.write_text(yaml.safe_dump(document))
    result = _check_jsonschema(*COMPOSE_FILES, bad)
    errors = [line.strip() for line in result.stdout.splitlines() if "::" in line]
    assert result.returncode == 1, result.stdout + result.stderr
    assert errors and all(line.startswith(f"{bad}::") for line in errors), result.stdout
    assert "'helthcheck' was unexpected" in result.stdout, result.stdout


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_follow_the_kubernetes_schemas(version: str) -> None:
    documents = _manifests()
    for document in documents:
        name = f"{document['kind']}/{document['metadata']['name']}"
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{name} against Kubernetes {version}: {where}: {exc.message}")
    kinds = {d["kind"] for d in documents}
    expected = {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"}
    assert expected <= kinds | {"StatefulSet"}
    # strict: a field the API does not have is refused
    bad = copy.deepcopy(_one("Deployment", "gateway"))
    container = bad["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, version, strict=True)


# --- what the schemas cannot see ---------------------------------------------------------------


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_kubernetes_wiring() -> None:
    """Several replicas, probes on readyz and healthz, and every selector and name leads
    where it should."""
    deployment = _one("Deployment", "gateway")
    spec = deployment["spec"]
    pod = spec["template"]
    assert spec["replicas"] >= 2
    assert spec["selector"]["matchLabels"] == pod["metadata"]["labels"]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/.gateway/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/.gateway/healthz"
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in port_names
    service = _one("Service", "gateway")
    assert _matches(service["spec"]["selector"], pod["metadata"]["labels"])
    assert all(p["targetPort"] in port_names for p in service["spec"]["ports"])
    budget = _one("PodDisruptionBudget", "gateway")
    assert _matches(budget["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
    assert budget["spec"].get("maxUnavailable", 0) < spec["replicas"]
    # every volume mounted is declared, from a ConfigMap or Secret that the manifests hold
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            _one("ConfigMap", volume["configMap"]["name"])
        if "secret" in volume:
            _one("Secret", volume["secret"]["secretName"])
    # Redis: its Service selects its pods, and only the gateway's pods may reach it
    redis_set = _one("StatefulSet", "redis")
    redis_labels = redis_set["spec"]["template"]["metadata"]["labels"]
    assert _matches(_one("Service", "redis")["spec"]["selector"], redis_labels)
    policy = _one("NetworkPolicy", "redis")
    assert _matches(policy["spec"]["podSelector"]["matchLabels"], redis_labels)
    allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert _matches(allowed, pod["metadata"]["labels"])
    assert not _matches(allowed, redis_labels)


def _compose(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_wiring(path: Path) -> None:
    """Every network, secret and volume a service names is declared; the gateway's health
    check asks readyz; Redis and the application are on internal networks only."""
    document = _compose(path)
    services = document["services"]
    for name, service in services.items():
        for network in service.get("networks", []):
            assert network in document["networks"], f"{name}: network {network}"
        for secret in service.get("secrets", []):
            assert secret in document["secrets"], f"{name}: secret {secret}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in document["volumes"], volume
    assert "/.gateway/readyz" in " ".join(services["gateway"]["healthcheck"]["test"])
    for internal in ("redis", "app"):
        for network in services[internal]["networks"]:
            assert document["networks"][network].get("internal") is True, (internal, network)


def test_compose_nginx_address_is_the_gateways_trusted_proxy() -> None:
    """The nginx variant's gateway believes X-Forwarded-* from nginx's fixed address only."""
    document = _compose(COMPOSE / "compose.nginx.yaml")
    address = document["services"]["nginx"]["networks"]["auth"]["ipv4_address"]
    subnet = document["networks"]["auth"]["ipam"]["config"][0]["subnet"]
    settings = yaml.safe_load((COMPOSE / "config" / "gateway-nginx.yaml").read_text())
    assert settings["trusted_proxies"] == [f"{address}/32"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    assert document["services"]["gateway"].get("ports") is None  # nginx's to publish


def _directives(text: str) -> list[str]:
    """nginx directives without comments and blank lines, one per line, spaces collapsed."""
    lines = (re.sub(r"#.*", "", line).strip() for line in text.splitlines())
    return [" ".join(line.split()) for line in lines if line]


def test_compose_nginx_conf_is_deploy_nginx_with_compose_addresses() -> None:
    """nginx/app.conf says what deploy/nginx/gateway.conf says (which tests/forward_auth runs
    against a real nginx), but for the compose services' addresses: a fix to one that does not
    reach the other fails here."""
    original = _directives((REPO / "deploy" / "nginx" / "gateway.conf").read_text())
    compose = _directives((COMPOSE / "nginx" / "app.conf").read_text())
    addresses = {
        "server 127.0.0.1:9091;": "server gateway:8080;",
        "server 127.0.0.1:8000;": "server app:80;",
        "server_name app.example.com;": "server_name localhost;",
    }
    assert [addresses.get(line, line) for line in original] == compose


# --- gateway policy check on what they ship, on a Redis configured as they configure it --------


@dataclass
class Shipped:
    """A gateway container as a deployment describes it."""

    settings: str  # the settings file's path inside the container
    mounts: dict[str, dict[str, str | Path]]  # container path -> {relative name: text or folder}
    redis_args: list[str]
    redis_host: str  # the store URL's host: the deployment's Redis
    secrets_placeholders: bool = False


def _compose_shipped(name: str) -> Shipped:
    path = COMPOSE / name
    document = _compose(path)
    gateway = document["services"]["gateway"]
    command = gateway["command"]
    mounts: dict[str, dict[str, str | Path]] = {}
    for volume in gateway["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = {"": (path.parent / source).resolve()}
    secrets = {
        "gateway_session_keys": "a-session-key-of-more-than-32-characters-" * 2,
        "gateway_encryption_key": generate_key(),
    }
    assert set(gateway["secrets"]) == set(secrets)
    mounts["/run/secrets"] = dict(secrets)
    redis_command = document["services"]["redis"]["command"]
    assert redis_command[0] == "redis-server"
    return Shipped(command[command.index("--config") + 1], mounts, redis_command[1:], "redis")


def _kubernetes_shipped() -> Shipped:
    pod = _one("Deployment", "gateway")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: dict[str, dict[str, str | Path]] = {}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            mounts[mount["mountPath"]] = dict(
                _one("ConfigMap", volume["configMap"]["name"])["data"]
            )
        elif "secret" in volume:
            secret = _one("Secret", volume["secret"]["secretName"])
            mounts[mount["mountPath"]] = dict(secret["stringData"])
    args = container["args"]
    redis_args = _one("StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]["args"]
    return Shipped(
        args[args.index("--config") + 1],
        mounts,
        redis_args,
        _one("Service", "redis")["metadata"]["name"],
        secrets_placeholders=True,
    )


def _lay_out(shipped: Shipped, root: Path) -> Path:
    """The container's mounted files under `root`; returns the settings file there, with each
    mount path in it rewritten to the same path under `root`."""
    for target, content in shipped.mounts.items():
        where = root / target.lstrip("/")
        for name, value in content.items():
            if isinstance(value, Path):
                shutil.copytree(value, where / name, dirs_exist_ok=True)
            else:
                (where / name).parent.mkdir(parents=True, exist_ok=True)
                (where / name).write_text(value)
    settings = root / shipped.settings.lstrip("/")
    assert settings.is_file(), f"{shipped.settings} is in no mount"
    targets = "|".join(map(re.escape, sorted(shipped.mounts, key=len, reverse=True)))
    mounted = re.compile(rf"(?<![\w/.])({targets})(?=/|\s|$)")
    settings.write_text(mounted.sub(lambda m: f"{root}{m[1]}", settings.read_text()))
    return settings


def _start_redis(args: list[str], directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """redis-server with only a port and folder of its own and persistence off, then `args`
    (so that only they can turn persistence on); returns it once it answers, and its port."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    base = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [redis_server_binary(), *base, *args, "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                return process, port
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.02)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        client.close()


@dataclass
class Check:
    """`gateway policy check` running on one laid-out container."""

    shipped: Shipped
    root: Path
    settings_file: Path
    policy_dir: Path
    process: subprocess.Popen[str]

    def result(self) -> tuple[int, str, str]:
        stdout, stderr = self.process.communicate(timeout=60)
        return self.process.returncode, stdout, stderr


SHIPPED = {
    "compose": lambda: _compose_shipped("compose.yaml"),
    "compose-nginx": lambda: _compose_shipped("compose.nginx.yaml"),
    "kubernetes": _kubernetes_shipped,
}
CONTROL = "compose, Redis without the shipped arguments"


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Check]]:
    """For each deployment, and for the control, its container laid out, a Redis started with
    its Redis's arguments (the control's with none), and `gateway policy check POLICY_DIR -c
    SETTINGS` started with the store URL set to that Redis. They run at once (each takes a
    second or so, mostly Python starting); each test waits for its own."""
    variants = [(name, make()) for name, make in SHIPPED.items()]
    variants.append((CONTROL, _compose_shipped("compose.yaml")))
    servers: list[subprocess.Popen[bytes]] = []
    started: dict[str, Check] = {}
    try:
        for index, (name, shipped) in enumerate(variants):
            directory = tmp_path_factory.mktemp(f"deploy{index}")
            settings_file = _lay_out(shipped, directory / "container")
            redis_args = [] if name == CONTROL else shipped.redis_args
            server, port = _start_redis(redis_args, directory / "redis")
            servers.append(server)
            policy_dir = load_settings(settings_file).policy_dir
            text = settings_file.read_text()
            text, count = re.subn(r"(?m)^store: \S+", f"store: redis://127.0.0.1:{port}/0", text)
            assert count == 1
            check_file = settings_file.with_name("checked-" + settings_file.name)
            check_file.write_text(text)
            command = ["policy", "check", str(policy_dir), "-c", str(check_file)]
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway", *command],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            started[name] = Check(
                shipped, directory / "container", settings_file, policy_dir, process
            )
        yield started
    finally:
        for check in started.values():
            check.process.kill()
            check.process.communicate()
        for server in servers:
            server.kill()
            server.wait()


@pytest.mark.parametrize("variant", list(SHIPPED))
def test_policy_check_passes_on_the_shipped_settings(
    variant: str, checks: dict[str, Check]
) -> None:
    check = checks[variant]
    shipped, root = check.shipped, check.root
    settings = load_settings(check.settings_file)
    # the store is the deployment's own Redis
    url = settings.store
    assert re.fullmatch(rf"redis://{re.escape(shipped.redis_host)}:6379/\d+", url), url
    # every file the settings name is in one of the container's mounts
    named = [settings.policy_dir]
    named += [app.portal.users_file for app in settings.applications if app.portal]
    named += [s.file for s in (settings.secrets.session_keys, settings.secrets.encryption_key)]
    for path in named:
        assert path is not None and path.exists(), f"{path} is in no mount"
        assert path.resolve().is_relative_to(root.resolve()), f"{path} is outside the mounts"
    for app in settings.applications:
        if app.portal:
            UsersFile(app.portal.users_file)  # reads it, or raises
    if shipped.secrets_placeholders:
        # the placeholders are refused: nobody runs on a key printed in a repository
        with pytest.raises(SettingsError):
            settings.secrets.read_session_keys()
        with pytest.raises(SettingsError):
            settings.secrets.read_encryption_key()
    else:
        assert settings.secrets.read_session_keys() and settings.secrets.read_encryption_key()

    returncode, stdout, stderr = check.result()
    assert returncode == 0, stdout + stderr
    # the store was opened (its durability checked) and the ratchet compared
    expected = f"{check.policy_dir}: policy is valid; no enforced company is turned off"
    assert stdout.strip() == expected, stdout + stderr


def test_policy_check_refuses_a_redis_without_the_shipped_persistence(
    checks: dict[str, Check],
) -> None:
    """The control for the test above: without the shipped arguments, the same Redis is refused
    for want of persistence, so that test fails if appendonly goes from the deployments."""
    returncode, stdout, stderr = checks[CONTROL].result()
    assert returncode == 1, stdout + stderr
    assert "no persistence" in stderr, stderr
