"""A real OpenLDAP slapd (Debian's) for the directory tests, in a temporary directory on a free
loopback port: slapd.conf style configuration, an mdb database, the memberof overlay (so users
carry memberOf, as in Active Directory) and the ppolicy overlay (an account is disabled by
`pwdAccountLockedTime: 000001010000Z`, which makes slapd refuse its binds whatever the
password). StartTLS on the ldap:// port, and LDAPS on a second port, with a certificate for
"localhost" signed by a CA made here with the `cryptography` package. The entries are added over LDAP as the root DN once slapd answers, so
the overlays maintain memberOf."""

from __future__ import annotations

import datetime
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ldap3 import MODIFY_REPLACE, Connection, Server

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
SERVICE_DN = f"cn=gateway,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "service-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
# name: (password, display name, mail, groups)
USERS = {
    "alice": ("alice-password", "Alice Liddell", "alice@example.org", ("staff", "admins")),
    "bob": ("bob-password", "Bob Builder", "bob@example.org", ("staff",)),
    "dave": ("dave-password", "Dave Disabled", "dave@example.org", ("staff",)),
    "erin": ("erin-password", "Erin Elsewhere", "erin@other.example", ("contractors",)),
    # a display name and an address a header cannot carry (a line break, a control character)
    "mallory": (
        "mallory-password",
        "Mallory\r\nRemote-User: alice",
        "mallory@example.org\x07",
        ("staff",),
    ),
}
DISABLED = "dave"


@dataclass
class Slapd:
    directory: Path
    port: int
    ca_file: Path
    tls_port: int = 0  # LDAPS
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://localhost:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://localhost:{self.tls_port}"

    def start(self) -> None:
        conf = self.directory / "slapd.conf"
        with open(self.directory / "slapd.log", "ab") as log_file:  # slapd keeps its own copy
            self.process = subprocess.Popen(
                [SLAPD, "-f", str(conf), "-h", self._listen(), "-d", "0"],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "slapd.log").read_text(errors="replace")
                raise RuntimeError(f"slapd exited with {self.process.returncode}: {log[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd did not answer in 10 s")

    def _listen(self) -> str:
        urls = [f"ldap://127.0.0.1:{self.port}/"]
        if self.tls_port:
            urls.append(f"ldaps://127.0.0.1:{self.tls_port}/")
        return " ".join(urls)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_slapd(directory: Path) -> Slapd:
    if not Path(SLAPD).exists():
        raise RuntimeError("slapd is not installed: run scripts/setup --test")
    (directory / "db").mkdir(parents=True)
    ca_file, cert, key = _certificates(directory)
    (directory / "slapd.conf").write_text(_config(directory, cert, key, ca_file))
    slapd = Slapd(directory, free_port(), ca_file, tls_port=free_port())
    slapd.start()
    _populate(slapd)
    return slapd


def _config(directory: Path, cert: Path, key: Path, ca_file: Path) -> str:
    return f"""\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload ppolicy
pidfile {directory}/slapd.pid
TLSCACertificateFile {ca_file}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {directory}/db
maxsize 10485760
overlay memberof
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{SUFFIX}"
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
"""


def _populate(slapd: Slapd) -> None:
    conn = Connection(Server(f"ldap://127.0.0.1:{slapd.port}"), ROOT_DN, ROOT_PASSWORD)
    assert conn.bind(), conn.result
    add = conn.add
    add(SUFFIX, ["dcObject", "organization"], {"dc": "example", "o": "Example"})
    for unit in ("people", "groups", "services", "policies"):
        add(f"ou={unit},{SUFFIX}", ["organizationalUnit"], {"ou": unit})
    add(
        f"cn=default,ou=policies,{SUFFIX}",
        ["organizationalRole", "pwdPolicy"],
        {"cn": "default", "pwdAttribute": "userPassword", "pwdLockout": True},
    )
    add(
        SERVICE_DN,
        ["organizationalRole", "simpleSecurityObject"],
        {"cn": "gateway", "userPassword": SERVICE_PASSWORD},
    )
    members: dict[str, list[str]] = {}
    for name, (password, display, mail, groups) in USERS.items():
        dn = f"uid={name},{PEOPLE}"
        attributes = {"uid": name, "cn": display, "sn": display.split()[-1], "mail": mail}
        assert add(dn, ["inetOrgPerson"], {**attributes, "userPassword": password}), conn.result
        for group in groups:
            members.setdefault(group, []).append(dn)
    for group, dns in members.items():
        assert add(f"cn={group},{GROUPS}", ["groupOfNames"], {"cn": group, "member": dns})
    # a referral under the people (as AD's root has to its DNS zones): every search there gets
    # a continuation reference (to a port where nothing listens) beside the entries, which is
    # neither an entry (two would make the user ambiguous) nor followed
    elsewhere = {"ou": "elsewhere", "ref": f"ldap://127.0.0.1:{free_port()}/{PEOPLE}"}
    assert add(f"ou=elsewhere,{PEOPLE}", ["referral", "extensibleObject"], elsewhere), conn.result
    locked = {"pwdAccountLockedTime": [(MODIFY_REPLACE, ["000001010000Z"])]}
    assert conn.modify(f"uid={DISABLED},{PEOPLE}", locked), conn.result
    conn.unbind()


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for localhost and 127.0.0.1 that it signs."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test directory CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / "server.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "server.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file
