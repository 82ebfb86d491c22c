"""Deployment settings: the example loads, every mistake is reported with its line, secrets read."""

import base64
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from gateway.identity.cookie_names import CookieNames
from gateway.intercept_settings import Credentials, LoginRequest, Logout, Signals, Whoami
from gateway.settings import (
    Application,
    AuditSettings,
    HeaderIdentity,
    Intercept,
    Listen,
    MetricsSettings,
    Portal,
    Secrets,
    SecretSource,
    SettingsError,
    Timeouts,
    load_settings,
    settings_from_dict,
)
from gateway.yamlsource import ConfigInvalid

ROOT = Path(__file__).resolve().parents[1]
KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


def test_the_example_settings_load() -> None:
    """gateway.example.yaml is valid and resolves paths next to itself."""
    settings = load_settings(ROOT / "gateway.example.yaml")
    assert settings.source == ROOT / "gateway.example.yaml"
    assert settings.policy_dir == ROOT / "policies"
    assert settings.listen.host == "127.0.0.1"
    assert settings.listen.port == 8080
    assert settings.store == "sqlite:///var/lib/gateway/gateway.db"
    assert settings.secrets.session_keys == SecretSource(env="GATEWAY_SESSION_KEYS")
    assert settings.trusted_proxies == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    [legacy] = settings.applications
    assert legacy == Application(
        name="legacy",
        upstream="http://127.0.0.1:9000",
        hosts=("legacy.example", "legacy.example:8443"),
        identity="intercept",
        intercept=Intercept(
            session_cookies=CookieNames(["LEGACYSESSID"]),
            login=LoginRequest(
                success=Signals(statuses=(302,)), failure=Signals(locations=("/login",))
            ),
            whoami=Whoami(path="/api/me", json=("user",)),
            logout=Logout(path="/logout", methods=("POST",)),
            credentials=Credentials(headers=("x-api-key",), query=("api_key",)),
        ),
        timeouts=Timeouts(connect=5.0, read=300.0),
    )
    assert settings.cookie_secure == "auto"
    assert settings.session_cookie == "gateway_session"
    assert settings.log_level == "info"


def _minimal(**extra: Any) -> dict[str, Any]:
    return {
        "secrets": {"session_keys": {"env": "SK"}, "encryption_key": {"file": "key.txt"}},
        "applications": {
            "wiki": {"upstream": "http://127.0.0.1:9000/", "hosts": ["Wiki.Example"], **extra}
        },
    }


def test_settings_from_dict_fills_defaults_and_resolves_paths(tmp_path: Path) -> None:
    """In-memory settings get the same defaults; relative paths hang off the source's directory."""
    data = _minimal(identity="portal", portal={"users_file": "users.yaml"})
    settings = settings_from_dict(data, tmp_path / "gateway.yaml")
    assert settings.policy_dir == tmp_path / "policies"
    assert settings.store == "sqlite:///var/lib/gateway/gateway.db"
    assert settings.secrets.encryption_key == SecretSource(file=tmp_path / "key.txt")
    [wiki] = settings.applications
    assert wiki.upstream == "http://127.0.0.1:9000"
    assert wiki.hosts == ("wiki.example",)
    assert wiki.portal == Portal(tmp_path / "users.yaml")
    assert wiki.intercept is None
    assert wiki.header is None
    assert wiki.preserve_host is True
    assert wiki.timeouts == Timeouts()


def test_header_identity_defaults_and_numeric_timeouts(tmp_path: Path) -> None:
    """A header application may omit its block; timeouts take numbers or durations."""
    data = _minimal(identity="header", timeouts={"connect": 2.5, "read": "2m"})
    data["trusted_proxies"] = ["10.1.2.3", "2001:db8::/48"]
    data["policy_dir"] = tmp_path / "elsewhere"
    settings = settings_from_dict(data, Path("gateway.yaml"))
    [wiki] = settings.applications
    assert wiki.header == HeaderIdentity("Remote-User")
    assert wiki.timeouts == Timeouts(connect=2.5, read=120.0)
    assert settings.trusted_proxies[0] == ipaddress.ip_network("10.1.2.3/32")
    assert settings.policy_dir == tmp_path / "elsewhere"


def test_settings_from_dict_reports_errors_with_line_zero(tmp_path: Path) -> None:
    """The same validation runs; there are no lines, so every error says 0."""
    with pytest.raises(ConfigInvalid) as caught:
        settings_from_dict(_minimal(identity="portal"), tmp_path / "memory")
    assert [str(error) for error in caught.value.errors] == [
        f'{tmp_path / "memory"}:0: missing required setting "applications.wiki.portal"'
    ]


BROKEN = """\
listen:
  port: 99999
  tls_cert: cert.pem
store: mysql://db
secrets:
  session_keys: "s3cret-value"
  encryption_key: {env: KEY, file: key.txt}
trusted_proxies: [10.0.0.1/8]
cookie_secure: sometimes
log_levle: debug
applications:
  wiki:
    upstream: ftp://wiki
    hosts: ["https://wiki.example", shared.example]
    identity: portal
    intercept: {session_cookies: [a]}
    preserve_host: yes
    timeouts: {connect: 5x}
  crm:
    upstream: http://user:pw@crm
    hosts: [shared.example]
    identity: header
    header: {user_header: "Remote User"}
  shop:
    hosts: ["*"]
    identity: intercept
    intercept:
      session_cookies: []
      login: {method: "P OST", success: {status: [200, 700]}, failure: {location: [login]}}
  shop:
    upstream: http://x
"""


def test_a_broken_settings_file_reports_every_error_with_its_line(tmp_path: Path) -> None:
    """One pass, sorted by line, each a plain sentence; the inline secret is never echoed."""
    path = tmp_path / "gateway.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigInvalid) as caught:
        load_settings(path)
    errors = [(error.line, error.message) for error in caught.value.errors]
    assert errors == [
        (1, "listen.tls_cert and listen.tls_key go together: give both or neither"),
        (2, "listen.port must be a whole number from 0 to 65535, not 99999"),
        (
            4,
            'store must be a sqlite:/// or redis:// URL such as "sqlite:///var/lib/gateway/'
            'gateway.db" or "redis://localhost:6379/0"',
        ),
        (
            6,
            "secrets.session_keys must say where the secret is kept "
            "({env: NAME} or {file: path}), not hold the secret itself",
        ),
        (7, "secrets.encryption_key takes env: or file:, not both"),
        (8, '"10.0.0.1/8" has host bits set; did you mean "10.0.0.0/8"?'),
        (9, 'cookie_secure must be one of auto, always, never, not "sometimes"'),
        (10, 'unknown setting "log_levle" (did you mean "log_level"?)'),
        (12, 'missing required setting "applications.wiki.portal"'),
        (
            13,
            'applications.wiki.upstream must be an http(s) URL such as "http://127.0.0.1:8000", '
            'not "ftp://wiki"',
        ),
        (
            14,
            '"https://wiki.example" is not a host name such as "wiki.example" or '
            '"wiki.example:8443"',
        ),
        (16, 'applications.wiki.intercept is given but identity is "portal"'),
        (17, 'applications.wiki.preserve_host must be true or false, not "yes"'),
        (
            18,
            'applications.wiki.timeouts.connect must be a duration such as "30m", "48h" or '
            '"21d", not "5x"',
        ),
        (20, "applications.crm.upstream must not hold a user name or password"),
        (21, 'the host "shared.example" is already served by application "wiki"'),
        (
            22,
            'application "crm" takes the user name from a request header, which is only safe '
            "behind a proxy that sets it: list that proxy under trusted_proxies",
        ),
        (23, '"Remote User" is not a header name'),
        (24, 'missing required setting "applications.shop.upstream"'),
        (28, "applications.shop.intercept.session_cookies must list at least one item"),
        (29, '"P OST" is not an HTTP method such as POST'),
        (
            29,
            "applications.shop.intercept.login.success.status[1] must be a whole number "
            "from 100 to 599, not 700",
        ),
        (
            29,
            "applications.shop.intercept.login.failure.location[0] must be a path starting "
            'with "/", not "login"',
        ),
        (30, 'duplicate key "shop" (first given on line 24)'),
    ]
    assert "s3cret-value" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the settings file must be a mapping such as listen: and applications:"),
        ("[1, 2]\n", "the settings file must be a mapping such as listen: and applications:"),
        ("a: [\n", "YAML syntax error"),
    ],
)
def test_files_that_are_not_settings_at_all(tmp_path: Path, text: str, message: str) -> None:
    """Empty, non-mapping and unparsable files are one error each."""
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigInvalid) as caught:
        load_settings(path)
    [error] = caught.value.errors
    assert error.message.startswith(message)


def test_a_missing_settings_file_is_one_error(tmp_path: Path) -> None:
    """No traceback for a wrong path."""
    with pytest.raises(ConfigInvalid, match="cannot read the file"):
        load_settings(tmp_path / "absent.yaml")


def test_settings_need_secrets_and_an_application(tmp_path: Path) -> None:
    """secrets and at least one application are required; store accepts the redis family."""
    with pytest.raises(ConfigInvalid) as caught:
        settings_from_dict({"applications": {}, "secrets": {}}, tmp_path / "g.yaml")
    assert [error.message for error in caught.value.errors] == [
        'missing required setting "secrets.session_keys"',
        'missing required setting "secrets.encryption_key"',
        "applications must list at least one application",
    ]
    for store in (
        "redis://r:6379/0",
        "rediss://r",
        "redis+sentinel://a:26379,b:26379/m",
        "redis+cluster://a:7000",
        "rediss+cluster://a:7000",
    ):
        assert (
            settings_from_dict(
                {**_minimal(identity="portal", portal={"users_file": "u"}), "store": store},
                tmp_path / "g.yaml",
            ).store
            == store
        )


def test_secret_source_reads_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variable's value, stripped."""
    monkeypatch.setenv("GW_TEST_SECRET", "  from-env \n")
    assert SecretSource(env="GW_TEST_SECRET").read() == "from-env"


def test_secret_source_falls_back_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset variable with a file given reads the file, stripped."""
    monkeypatch.delenv("GW_TEST_SECRET", raising=False)
    secret = tmp_path / "secret"
    secret.write_text("from-file\n", encoding="utf-8")
    assert SecretSource(env="GW_TEST_SECRET", file=secret).read() == "from-file"
    assert SecretSource(file=secret).read() == "from-file"


def test_secret_source_errors_are_plain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset variable, missing file, empty file and no source at all each say what is wrong."""
    monkeypatch.delenv("GW_TEST_SECRET", raising=False)
    with pytest.raises(SettingsError, match="GW_TEST_SECRET is not set"):
        SecretSource(env="GW_TEST_SECRET").read()
    with pytest.raises(SettingsError, match="cannot read the secret file"):
        SecretSource(file=tmp_path / "absent").read()
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="is empty"):
        SecretSource(file=tmp_path / "empty").read()
    with pytest.raises(SettingsError, match="no environment variable or file"):
        SecretSource().read()


def test_secrets_split_session_keys_and_check_the_encryption_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Session keys split on commas and spaces; the encryption key must be 32 bytes."""
    monkeypatch.setenv(
        "GW_KEYS",
        "first-key-0123456789-0123456789ab, second-key-0123456789-0123456789a\n"
        "third-key-0123456789-0123456789ab",
    )
    monkeypatch.setenv("GW_ENC", KEY)
    secrets = Secrets(SecretSource(env="GW_KEYS"), SecretSource(env="GW_ENC"))
    assert secrets.read_session_keys() == (
        "first-key-0123456789-0123456789ab",
        "second-key-0123456789-0123456789a",
        "third-key-0123456789-0123456789ab",
    )
    assert secrets.read_encryption_key() == KEY
    monkeypatch.setenv("GW_KEYS", "short")
    with pytest.raises(SettingsError, match="at least 32"):
        secrets.read_session_keys()
    monkeypatch.setenv("GW_ENC", base64.urlsafe_b64encode(b"x" * 16).decode())
    with pytest.raises(SettingsError, match="32 bytes"):
        secrets.read_encryption_key()
    monkeypatch.setenv("GW_ENC", "not base64 !!")
    with pytest.raises(SettingsError, match="32 bytes"):
        secrets.read_encryption_key()


def test_audit_and_metrics_settings(tmp_path: Path) -> None:
    """Audit lines go to stdout unless a file is named (relative to the settings file);
    metrics are for this machine unless networks are listed."""
    default = settings_from_dict(
        _minimal(identity="portal", portal={"users_file": "u"}), tmp_path / "g.yaml"
    )
    assert default.audit == AuditSettings("stdout", None)
    assert default.metrics == MetricsSettings(
        (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    )
    data = {
        **_minimal(identity="portal", portal={"users_file": "u"}),
        "audit": {"to": "file", "path": "logs/audit.log"},
        "metrics": {"networks": ["10.0.0.0/8", "192.0.2.7"]},
    }
    settings = settings_from_dict(data, tmp_path / "g.yaml")
    assert settings.audit == AuditSettings("file", tmp_path / "logs" / "audit.log")
    assert settings.metrics.networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.7/32"),
    )


AUDIT_METRICS_BROKEN = """\
secrets:
  session_keys: {env: SK}
  encryption_key: {env: EK}
applications:
  wiki: {upstream: "http://127.0.0.1:9000", hosts: [wiki.example], identity: intercept,
         intercept: {session_cookies: [s]}}
audit:
  to: syslog
  file: audit.log
metrics:
  networks: [10.0.0.1/8]
  allow: all
"""


def test_audit_and_metrics_mistakes_are_reported_with_their_lines(tmp_path: Path) -> None:
    """Each mistake in audit: and metrics: is one error at its line."""
    path = tmp_path / "gateway.yaml"
    path.write_text(AUDIT_METRICS_BROKEN, encoding="utf-8")
    with pytest.raises(ConfigInvalid) as caught:
        load_settings(path)
    assert [(error.line, error.message) for error in caught.value.errors] == [
        (8, 'audit.to must be one of stdout, file, not "syslog"'),
        (9, 'unknown setting "file" in audit'),
        (11, '"10.0.0.1/8" has host bits set; did you mean "10.0.0.0/8"?'),
        (12, 'unknown setting "allow" in metrics'),
    ]
    for text, expected in [
        ("audit: {to: file}\n", (1, "audit.path is required with to: file")),
        ("audit:\n  path: a.log\n", (2, "audit.path is only used with to: file")),
        ("metrics:\n  networks: []\n", (2, "metrics.networks must list at least one network")),
        ("audit: stdout\n", (1, "audit must be a mapping of settings, not")),
    ]:
        path.write_text(AUDIT_METRICS_BROKEN.split("audit:")[0] + text, encoding="utf-8")
        with pytest.raises(ConfigInvalid) as caught:
            load_settings(path)
        [error] = caught.value.errors
        assert (error.line - 6, error.message[: len(expected[1])]) == expected, error


def test_the_example_shows_the_listen_limits_at_their_defaults() -> None:
    """gateway.example.yaml documents the connection limits with the values the gateway uses when they are left out."""
    shown = load_settings(ROOT / "gateway.example.yaml").listen
    assert shown == Listen(port=8080)
    assert (shown.header_timeout, shown.body_timeout, shown.max_body_size) == (10.0, 60.0, None)
    assert (shown.max_header_size, shown.max_headers) == (8190, 128)


def test_listen_limits_take_durations_and_sizes(tmp_path: Path) -> None:
    """Timeouts as durations or seconds (fractions too), sizes as bytes or with k/M/G (1024-based)."""
    listen = {
        "header_timeout": 0.5,
        "body_timeout": "2m",
        "max_body_size": "10MB",
        "max_header_size": "16k",
        "max_headers": 200,
    }
    settings = settings_from_dict(
        {**_minimal(identity="portal", portal={"users_file": "u"}), "listen": listen},
        tmp_path / "g.yaml",
    )
    assert settings.listen == Listen(
        header_timeout=0.5,
        body_timeout=120.0,
        max_body_size=10 << 20,
        max_header_size=16 << 10,
        max_headers=200,
    )
    for written, size in (("512k", 512 << 10), ("1GiB", 1 << 30), ("3 mb", 3 << 20), (4096, 4096)):
        data = {
            **_minimal(identity="portal", portal={"users_file": "u"}),
            "listen": {"max_body_size": written},
        }
        assert settings_from_dict(data, tmp_path / "g.yaml").listen.max_body_size == size, written


LISTEN_LIMITS_BROKEN = """\
listen:
  header_timeout: 0
  body_timeout: 2h
  max_body_size: 10 parsecs
  max_header_size: 100
  max_headers: 5
  max_body_sise: 1MB
secrets:
  session_keys: {env: SK}
  encryption_key: {env: EK}
applications:
  wiki:
    upstream: http://127.0.0.1:9000
    hosts: [wiki.example]
    identity: portal
    portal: {users_file: users.yaml}
"""


def test_wrong_listen_limits_are_each_reported_with_their_line(tmp_path: Path) -> None:
    """Every wrong limit in one pass, at its line, saying what would be right."""
    path = tmp_path / "gateway.yaml"
    path.write_text(LISTEN_LIMITS_BROKEN, encoding="utf-8")
    with pytest.raises(ConfigInvalid) as caught:
        load_settings(path)
    assert [(error.line, error.message) for error in caught.value.errors] == [
        (
            2,
            'listen.header_timeout must be a duration above 0 and at most 1h, such as "10s" or '
            '"1m", not 0',
        ),
        (
            3,
            'listen.body_timeout must be a duration above 0 and at most 1h, such as "10s" or '
            '"1m", not "2h"',
        ),
        (
            4,
            'listen.max_body_size must be a size from 1 byte to 1TB such as "10MB" or a number '
            'of bytes, not "10 parsecs"',
        ),
        (
            5,
            'listen.max_header_size must be a size from 1KB to 1MB such as "16KB" or a number '
            "of bytes, not 100",
        ),
        (6, "listen.max_headers must be a whole number from 16 to 10000, not 5"),
        (7, 'unknown setting "max_body_sise" in listen (did you mean "max_body_size"?)'),
    ]
