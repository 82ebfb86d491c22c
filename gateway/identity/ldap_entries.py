"""What a directory entry says: an attribute's values (names compared without case), two DNs
naming one entry, and the name of a group directly under groups.base_dn."""

from __future__ import annotations

from typing import Any

from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import parse_dn

from gateway.identity.ldap_text import rdn
from gateway.settings.model import LdapGroups


def group_name(lookup: LdapGroups, group: str, attributes: dict[str, Any]) -> str | None:
    """The name of a group directly under groups.base_dn: its RDN's value when the RDN is
    name_attribute (cn), unique among its siblings; else its one name_attribute value
    (found by a search only; memberOf gives DNs). None for any other group."""
    place = rdn(group, lookup.base_dn)
    if place is None:
        return None  # deeper, elsewhere, or no DN
    if place[0].lower() == lookup.name_attribute.lower():
        return place[1].strip()
    values = attribute_values(attributes, lookup.name_attribute)
    return values[0].strip() if len(values) == 1 and not lookup.attribute else None


def attribute_values(attributes: dict[str, Any], name: str) -> list[str]:
    for key, value in attributes.items():
        if key.lower() == name.lower():
            items = value if isinstance(value, list | tuple) else [value]
            return [str(item) for item in items if item not in (None, b"", "")]
    return []


def same_dn(one: str, other: str) -> bool:
    """Two DNs naming the same entry (attribute names and values compared without case or
    the spaces around separators)."""
    try:
        a, b = parse_dn(one.strip()), parse_dn(other.strip())
    except LDAPException:
        return False
    return [(k.lower(), v.strip().lower()) for k, v, _ in a] == [
        (k.lower(), v.strip().lower()) for k, v, _ in b
    ]


def first_value(attributes: dict[str, Any], name: str) -> str:
    values = attribute_values(attributes, name)
    return values[0] if values else ""
