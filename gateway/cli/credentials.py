"""`gateway hash-password` and `gateway keygen`: the secrets an operator writes into files, an
argon2id hash for a users file (the password asked twice on the terminal, or read from standard
input) and a new encryption key and session key for the settings."""

from __future__ import annotations

import getpass
import sys

from gateway.cli.common import EXIT_INVALID, EXIT_OK


def hash_password_command(from_stdin: bool) -> int:
    from gateway.identity.portal import hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("The two passwords differ.", file=sys.stderr)
            return EXIT_INVALID
    if not password:
        print("An empty password cannot be hashed.", file=sys.stderr)
        return EXIT_INVALID
    print(hash_password(password))
    return EXIT_OK


def keygen_command() -> int:
    import secrets

    from gateway.crypto import generate_key

    print(f"encryption key: {generate_key()}")
    print(f"session key:    {secrets.token_urlsafe(48)}")
    return EXIT_OK
