"""Recovery codes: ten single-use codes, shown once, kept only as salted argon2id hashes.

A code is 10 characters of Crockford's base32 (50 random bits), shown as `xxxxx-xxxxx`. What
people type is forgiven: case, spaces and dashes, and the letters o, i and l read as 0, 1 and 1.
One salt serves a whole set, so checking a typed code costs one hash however many codes are left.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from argon2.low_level import Type, hash_secret_raw

RECOVERY = "recovery"  # the method's name in policies and in the store
COUNT = 10
LENGTH = 10  # characters: 10 x 5 bits = 50 bits a code
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32: no i, l, o, u
_LOOKALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})
_IGNORED = frozenset(" \t-_")
# argon2id at OWASP's lowest recommended cost: about 20 ms a code on one core
KDF = {"name": "argon2id", "t": 2, "m": 19456, "p": 1}
SALT_BYTES = 16


@dataclass(frozen=True)
class CodeSet:
    codes: list[str]  # to show once, as `xxxxx-xxxxx`
    record: dict[str, Any]  # to store: the hashes, the salt and how they were made


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalise(typed: str) -> str | None:
    """The code as generated (without its dash), or None when it cannot be one."""
    code = "".join(ch for ch in typed.lower() if ch not in _IGNORED).translate(_LOOKALIKES)
    if len(code) != LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def _hash(code: str, salt: bytes, kdf: dict[str, Any]) -> str:
    if kdf.get("name") != "argon2id":
        raise ValueError(f"unknown recovery-code hash {kdf.get('name')!r}")
    digest = hash_secret_raw(
        code.encode("ascii"),
        salt,
        time_cost=int(kdf["t"]),
        memory_cost=int(kdf["m"]),
        parallelism=int(kdf["p"]),
        hash_len=32,
        type=Type.ID,
    )
    return digest.hex()


def generate(now: float, count: int = COUNT) -> CodeSet:
    """A new set: `count` distinct codes and the record that stands for them."""
    codes: list[str] = []
    while len(codes) < count:
        code = new_code()
        if code not in codes:
            codes.append(code)
    salt = secrets.token_bytes(SALT_BYTES)
    hashes = [_hash(code.replace("-", ""), salt, KDF) for code in codes]
    record = {
        "codes": hashes,
        "salt": base64.b64encode(salt).decode("ascii"),
        "kdf": dict(KDF),
        "created": now,
    }
    return CodeSet(codes=codes, record=record)


def remaining(record: dict[str, Any] | None) -> int:
    return len(record.get("codes", [])) if record else 0


def match(record: dict[str, Any], typed: str) -> str | None:
    """The stored hash that `typed` matches, or None. Every stored hash is compared, in constant
    time, so the answer's timing says nothing about which one matched."""
    code = normalise(typed)
    stored = [h for h in record.get("codes", []) if isinstance(h, str)]
    if code is None or not stored:
        return None
    candidate = _hash(code, base64.b64decode(str(record["salt"])), dict(record["kdf"]))
    found: str | None = None
    for h in stored:
        if hmac.compare_digest(h.encode("ascii"), candidate.encode("ascii")):
            found = h
    return found


def without(record: dict[str, Any], used: str) -> dict[str, Any]:
    """The record once the code with hash `used` has been spent."""
    return dict(record, codes=[h for h in record.get("codes", []) if h != used])
