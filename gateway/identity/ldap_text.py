"""What a typed user name may become inside an LDAP request: checked (no control characters, no
NUL, a bounded length), then escaped for a search filter (RFC 4515) or a DN (RFC 4514), so that
`*`, `)(` or `\\` in a name is matched as itself and never changes the request. Also the RDN of
a group's DN directly under the groups' base (its name, unique among its siblings)."""

from __future__ import annotations

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

MAX_NAME = 256  # characters in a user name sent to the directory


def acceptable_name(name: str) -> bool:
    """A user name worth asking the directory about: not empty, not too long, no control
    characters (NUL above all: C libraries on the server side end the string there)."""
    return (
        0 < len(name) <= MAX_NAME
        and name == name.strip()
        and not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name)
    )


def escape_filter_value(value: str) -> str:
    """RFC 4515, section 3: `*`, `(`, `)`, `\\` and NUL as a backslash and two hex digits."""
    out = []
    for c in value:
        out.append(f"\\{ord(c):02x}" if c in "*()\\\x00" else c)
    return "".join(out)


def escape_dn_value(value: str) -> str:
    """RFC 4514, section 2.4: an attribute value inside a DN."""
    out = []
    for i, c in enumerate(value):
        if c in ',+"\\<>;=\x00' or (i == 0 and c in "# ") or (i == len(value) - 1 and c == " "):
            out.append(f"\\{ord(c):02x}")
        else:
            out.append(c)
    return "".join(out)


def fill(template: str, placeholder: str, value: str) -> str:
    """`template` with its placeholder replaced by `value` (escaped already by the caller): a
    plain replace, so braces elsewhere in a filter (`{...}` is legal there) mean nothing."""
    return template.replace(placeholder, value)


def dn_key(dn: str) -> tuple[tuple[str, str, str], ...] | None:
    """A DN as (attribute, value, separator) triples, attribute names and values without case
    or the spaces around them, for comparing DNs; None for text that is no DN."""
    if "=" not in dn:
        return None
    try:
        parsed = parse_dn(dn.strip(), escape=False, strip=True)
    except (LDAPInvalidDnError, ValueError):
        return None
    return tuple((k.lower(), v.strip().lower(), sep) for k, v, sep in parsed) or None


def rdn(dn: str, base_dn: str) -> tuple[str, str] | None:
    """(attribute, value) of the RDN of an entry directly under `base_dn`: `cn=Admins,ou=groups,
    dc=example,dc=org` under `ou=groups,dc=example,dc=org` -> ("cn", "Admins"). None for a DN
    anywhere else (deeper, or outside base_dn), with a multi-valued RDN, or no DN at all: a
    group's first value names it unambiguously only among its siblings (`cn=admins,ou=sales`
    and `cn=admins,ou=it` would both be "admins")."""
    key, base = dn_key(dn), dn_key(base_dn)
    if key is None or base is None or len(key) != len(base) + 1 or key[0][2] == "+":
        return None
    if [(k, v) for k, v, _ in key[1:]] != [(k, v) for k, v, _ in base]:
        return None
    first = parse_dn(dn.strip(), escape=False, strip=True)[0]
    return str(first[0]), str(first[1])


def plain(text: str, longest: int = 320) -> bool:
    """Text a header can carry as it is: not too long, no control character (C0, DEL, C1)."""
    return len(text) <= longest and not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def header_safe(name: str) -> bool:
    """A group name that can go into Remote-Groups: no comma (the separator), no control."""
    return bool(name) and "," not in name and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
