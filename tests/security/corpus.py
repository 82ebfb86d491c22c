"""Attack payloads shared by the security suite, and the browser's reading of a Location.

The redirect corpus is built from families (host prefixes x look-alike hosts, schemes x hosts,
header injection, control characters), each also percent-encoded once and twice, so it grows
with every family added rather than by copy and paste.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, unquote, urlsplit

EVIL = "evil.example"

# What a browser (or an application that decodes once more) may read as "another host".
HOST_PREFIXES = [
    "//",
    "///",
    "////",
    "/\\",
    "\\\\",
    "\\/",
    "/\\/",
    "/%5c",
    "/%5C",
    "%5c%5c",
    "%2f%2f",
    "%2F%2F",
    "/%2f",
    "%2f/",
    "/%252f",
    "%252f%252f",
    "/%255c",
    "/%09/",
    "/%0a/",
    "/%0d/",
    "/%00/",
    "%20//",
    "%09//",
    "%0a//",
    "/./\\",
    "/%2e/%5c",
    "/.%2f/",
    "\\",
    "%E3%80%80//",  # ideographic space, which some parsers strip
    "/%E2%80%8B/",  # zero-width space
]
LOOKALIKE_HOSTS = [
    EVIL,
    f"{EVIL}/",
    f"{EVIL}:443/x",
    f"app.test.{EVIL}",
    f"app.test@{EVIL}",
    f"user:pass@{EVIL}",
    f"%40{EVIL}",
    f"{EVIL}%2523@app.test",
    f"{EVIL}?@app.test",
    f"{EVIL}%E3%80%82",  # ideographic full stop
    "evil%E3%80%82example",
    "0x7f000001.evil.example",
]
SCHEMES = [
    "https://",
    "http://",
    "HTTPS://",
    "hTtP://",
    "https:",
    "https:/",
    "https:\\\\",
    "https:%2f%2f",
    "https%3a//",
    "https%3A%2F%2F",
    "ftp://",
    "file://",
    "ws://",
    "blob:https://",
    "%01https://",
    "%20https://",
]
SCRIPT = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "javascript%3Aalert(1)",
    "java%09script:alert(1)",
    "java%0ascript:alert(1)",
    "java%0dscript:alert(1)",
    "%6a%61%76%61%73%63%72%69%70%74:alert(1)",
    "%01javascript:alert(1)",
    "%20javascript:alert(1)",
    "javascript://%0aalert(1)",
    "data:text/html,%3Cscript%3Ealert(1)%3C/script%3E",
    "data:text/html;base64,PHNjcmlwdD4=",
    "vbscript:msgbox(1)",
]
INJECTION = [
    "/%0d%0aSet-Cookie:%20evil=1",
    "/%0aSet-Cookie:%20evil=1",
    "/%0dSet-Cookie:%20evil=1",
    "/%250d%250aSet-Cookie:%20evil=1",
    "/%E5%98%8A%E5%98%8DSet-Cookie:%20evil=1",  # U+560A U+560D: CR LF after a lossy cast
    "/%0d%0aLocation:%20https://evil.example",
    "/x%0d%0a%0d%0a%3Cscript%3Eevil%3C/script%3E",
    "/%00https://evil.example",
    "/%7f//evil.example",
    "/%c0%afevil.example",  # overlong "/"
    "/%e0%80%afevil.example",
]
OTHER = [
    EVIL,
    f"{EVIL}/x",
    "/" + "a" * 4096 + EVIL,
    "",
    "%",
    "%zz",
    "/%",
    "?//evil.example",
    "#//evil.example",
    ".//evil.example",
    "..//evil.example",
    "@evil.example",
    "/@evil.example",  # harmless alone, here as a control of the look-alike family
]


def _encoded(payload: str) -> list[str]:
    once = quote(payload, safe="")
    return [payload, once, quote(once, safe="")]


def redirect_corpus() -> list[str]:
    """Values of `rd` exactly as they appear in a query string (so often already encoded)."""
    bases = [prefix + host for prefix in HOST_PREFIXES for host in LOOKALIKE_HOSTS[:4]]
    bases += ["//" + host for host in LOOKALIKE_HOSTS] + ["/\\" + host for host in LOOKALIKE_HOSTS]
    bases += [scheme + host for scheme in SCHEMES for host in LOOKALIKE_HOSTS[:3]]
    bases += SCRIPT + INJECTION + OTHER
    seen: dict[str, None] = {}
    for base in bases:
        for variant in _encoded(base):
            seen.setdefault(variant, None)
    return list(seen)


# Raw bytes a client library would refuse or clean: sent byte for byte over a socket.
RAW_REDIRECTS = [
    "/\t/evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\x0b/evil.example",
    "/\x0c/evil.example",
    "/\x7f/evil.example",
    "/\x1b//evil.example",
    "\x00//evil.example",
]


def browser_reading(location: str) -> str:
    """How a browser reads a Location (WHATWG URL parser): leading and trailing C0 controls and
    spaces stripped, tabs and newlines removed anywhere, a backslash taken as a slash."""
    cleaned = location.strip("".join(chr(c) for c in range(0x21)))
    cleaned = cleaned.replace("\t", "").replace("\n", "").replace("\r", "")
    return cleaned.replace("\\", "/")


def off_site_reasons(location: str) -> list[str]:
    """Why a Location could leave the site; empty when it cannot.

    Read as a browser reads it, and again after each of three percent-decodings (an application
    behind the gateway may decode what the gateway passed on)."""
    reasons = []
    if any(not 0x21 <= ord(c) <= 0x7E for c in location):
        reasons.append("a control, space or non-ASCII character")
    target = location
    for _ in range(4):
        read = browser_reading(target)
        parts = urlsplit(read)
        if not read.startswith("/") or read.startswith("//"):
            reasons.append(f"{read[:40]!r} is not a single-slash path")
        if parts.scheme or parts.netloc:
            reasons.append(f"{read[:40]!r} names a scheme or host")
        decoded = unquote(target)
        if decoded == target:
            break
        target = decoded
    return reasons


# Path tricks against the rules of tests.security.conftest.ACCESS: each of these must never be
# answered as the bypass rule /public/** (forwarded without sign-in) while the application may
# route it elsewhere. Written as sent on the wire.
BYPASS_TRICKS = [
    "/public/../admin",
    "/public/./../admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "/public/.%2e/admin",
    "/public/%2e./admin",
    "/public/..%2fadmin",
    "/public/..%2Fadmin",
    "/public%2f..%2fadmin",
    "/public/..%5cadmin",
    "/public/..\\admin",
    "/public\\..\\admin",
    "/public/%252e%252e/admin",
    "/public/%252e%252e%252fadmin",
    "/public/..;/admin",
    "/public/.;/../admin",
    "/public/..;x=1/admin",
    "/public;/../admin",
    "/public/%2e%2e;/admin",
    "/public/..%00/admin",
    "/public/%00/../admin",
    "/public/..%0d/admin",
    "/public/..%09/admin",
    "/public/%c0%ae%c0%ae/admin",  # overlong "."
    "/public/%uff0e%uff0e/admin",
    "/public/\uff0e\uff0e/admin".encode().decode("latin-1"),  # fullwidth dots, raw UTF-8
    "/public/%ef%bc%8e%ef%bc%8e/admin",
    "/public//../admin",
    "//public/../admin",
    "/public/....//admin",
    "/public/admin?/../../admin",
    "/public/x#/../../admin",
    # `#`, `?` and dots that a pattern or a reading may widen (oauth2-proxy GHSA-7rh7-c77v-6434,
    # CVE-2026-41059, Traefik CVE-2026-40912)
    "/public%23/../admin",
    "/public%3f/../admin",
    "/public/%23/../../admin",
    "/public/x%3F/../../admin",
    "/public./../admin",
    "/public%2e/../admin",
    "/public/x%23/%2e%2e/%2e%2e/admin",
]

# Path tricks against the deny rule /internal/**: none may reach the upstream.
DENY_TRICKS = [
    "/internal/x",
    "/internal",
    "/internal/",
    "//internal/x",
    "/./internal/x",
    "/x/../internal/x",
    "/%69nternal/x",
    "/%2finternal/x",
    "/internal%2fx",
    "/internal//x",
    "/internal/./x",
    "/public/../internal/x",
    "/public/%2e%2e/internal/x",
    "/internal/;/x",
    "/internal/..;/internal/x",
    "/internal%00/x",
    "/internal\\x",
    "/internal%5cx",
    "/internal%09/x",
    "/internal/x?/public/",
    "/internal%2e/x",
    "/internal./x",
    "/internal%2E%2E/x",
    "/internal%20/x",
    "/internal. /x",
    "/internal/x#/../../public/",
]
# The same against rules that match the path exactly as normalised: path parameters and case.
DENY_TRICKS_MATCHING = [
    "/internal;/x",
    "/internal;jsessionid=1/x",
    "/INTERNAL/x",
    "/Internal/x",
]


def application_reading(raw_path: str) -> str:
    """The path an application server behind the gateway may route a raw path to, read
    loosely as some do: decoded once, folded (NFKC), a backslash taken as a slash, path
    parameters dropped, dot segments resolved, trailing dots and spaces dropped, lower case."""
    path = unicodedata.normalize("NFKC", unquote(raw_path.split("?", 1)[0].split("#", 1)[0]))
    segments: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        part = part.split(";", 1)[0]
        if part == "..":
            if segments:
                segments.pop()
            continue
        part = part.rstrip(". ")  # Windows and IIS drop trailing dots and spaces
        if part:
            segments.append(part)
    return "/" + "/".join(segments).lower()
