"""TLS to the directory with Python's ssl module: ldap3's own host name check is gone in
Python 3.12, so the handshake is the default client context's."""

from __future__ import annotations

import ssl

from ldap3 import Connection, Tls


class DirectoryTls(Tls):
    """TLS by Python's default client context: the CA file (else the system's), TLS 1.2 or
    later, and the host name checked by the ssl module during the handshake (ldap3's own check
    calls ssl.match_hostname, deprecated since Python 3.7 and gone in 3.12)."""

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED)
        self._context = context
        self._host = host

    def wrap_socket(self, connection: Connection, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=self._host,
        )
