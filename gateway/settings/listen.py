"""The `listen:` section: the address and port, the TLS certificate and key (both or neither),
and what one client connection may take (how long its request head and body may take, how large
its body and header lines may be, how many headers it may send), which gateway.protocol enforces.
Timeouts are seconds or durations up to an hour; sizes are bytes or "512k", "10MB", "1GiB".
"""

from __future__ import annotations

import re
from pathlib import Path

from gateway.durations import parse_duration
from gateway.settings.model import Listen
from gateway.settings.values import read_path
from gateway.yaml_document import KeyPath, describe
from gateway.yamlsource import Keys, Reader
from gateway.yamlsource import setting_name as _name

_KEYS = Keys("settings", "listen", (
    "host", "port", "tls_cert", "tls_key",
    "header_timeout", "body_timeout", "max_body_size", "max_header_size", "max_headers",
))  # fmt: skip
_MAX_TIMEOUT = 3600.0
_SIZE = re.compile(r"([0-9]+)\s*(?:([kmg])(?:i?b)?|b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def read_listen(r: Reader, base: Path) -> Listen:
    r.mapping(("listen",))
    r.unknown_keys(("listen",), _KEYS)
    cert = read_path(r, ("listen", "tls_cert"), base)
    key = read_path(r, ("listen", "tls_key"), base)
    if (cert is None) != (key is None):
        message = "listen.tls_cert and listen.tls_key go together: give both or neither"
        r.error(("listen",), message, at_key=True)
    host = r.string(("listen", "host"), "127.0.0.1", required=r.has(("listen", "host")))
    default = Listen()
    return Listen(
        host.strip(),
        r.integer(("listen", "port"), 8080, 0, 65535),
        cert,
        key,
        header_timeout=_timeout(r, ("listen", "header_timeout"), default.header_timeout),
        body_timeout=_timeout(r, ("listen", "body_timeout"), default.body_timeout),
        max_body_size=_size(r, ("listen", "max_body_size"), 1, 1 << 40, "10MB"),
        max_header_size=_size(r, ("listen", "max_header_size"), 1024, 1 << 20, "16KB")
        or default.max_header_size,
        max_headers=r.integer(("listen", "max_headers"), default.max_headers, 16, 10_000),
    )


def _timeout(r: Reader, path: KeyPath, default: float) -> float:
    """Seconds (fractions allowed) or a duration such as "10s", above zero and at most an hour."""
    value = r.value(path)
    if value is None:
        return default
    try:
        seconds = value if isinstance(value, float) else parse_duration(value).total_seconds()
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= _MAX_TIMEOUT:
        message = f'{_name(path)} must be a duration above 0 and at most 1h, such as "10s" or "1m"'
        r.error(path, f"{message}, not {describe(value)}")
        return default
    return seconds


def _size(r: Reader, path: KeyPath, minimum: int, maximum: int, example: str) -> int | None:
    """Bytes, or a size such as "512k", "10MB" or "1GiB" (k, m, g: 1024, 1024², 1024³); None
    when absent or wrong."""
    value = r.value(path)
    if value is None:
        return None
    match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        size: int | None = value
    elif match:
        size = int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    else:
        size = None
    if size is None or not minimum <= size <= maximum:
        limits = f"from {_bytes(minimum)} to {_bytes(maximum)}"
        message = f'{_name(path)} must be a size {limits} such as "{example}" or a number of bytes'
        r.error(path, f"{message}, not {describe(value)}")
        return None
    return size


def _bytes(size: int) -> str:
    for unit, factor in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return "1 byte" if size == 1 else f"{size} bytes"
