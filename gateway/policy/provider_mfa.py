"""A company's `provider_mfa:` whether an OpenID provider's own second factor (portal mode's
`oidc:`) counts as the second factor for its members, or the gateway still asks its own.

    provider_mfa: ask     # the default: the gateway's own second factor, whatever the provider did
    provider_mfa: accept  # an ID token whose amr/acr show the provider's MFA, as the
                          # application's settings describe it (portal.oidc.provider_mfa)
    provider_mfa:         # the policy's own lists: amr holding one of these, or acr one of these
      amr: [hwk]
      acr: ["http://schemas.openid.net/pape/policies/2007/06/multi-factor"]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.yamlsource import Keys, Reader

KEY = "provider_mfa"
_KEYS = Keys("company", KEY, ("amr", "acr"))


@dataclass(frozen=True)
class ProviderMfa:
    """Accepted: None lists mean the application's settings' lists."""

    amr: tuple[str, ...] | None = None
    acr: tuple[str, ...] | None = None

    def lists(
        self, settings_amr: Collection[str], settings_acr: Collection[str]
    ) -> tuple[Collection[str], Collection[str]]:
        if self.amr is None and self.acr is None:
            return settings_amr, settings_acr
        return self.amr or (), self.acr or ()


def provider_mfa_counts(
    claims: Mapping[str, Any],
    accepted: ProviderMfa | None,
    settings_amr: Collection[str],
    settings_acr: Collection[str],
) -> bool:
    """The provider says it asked a second factor, and the company accepts it."""
    if accepted is None:
        return False
    amr_values, acr_values = accepted.lists(settings_amr, settings_acr)
    amr = claims.get("amr")
    if isinstance(amr, list) and any(isinstance(v, str) and v in amr_values for v in amr):
        return True
    acr = claims.get("acr")
    return isinstance(acr, str) and acr in acr_values


def read_provider_mfa(reader: Reader) -> ProviderMfa | None:
    path = (KEY,)
    if not reader.has(path):
        return None
    value = reader.value(path)
    if value == "ask":
        return None
    if value == "accept":
        return ProviderMfa()
    if not isinstance(value, dict):
        reader.error(path, f"{KEY} must be ask, accept, or a mapping of amr and acr lists")
        return None
    reader.unknown_keys(path, _KEYS)
    amr = tuple(text.strip() for _, text in reader.strings((*path, "amr")) if text.strip())
    acr = tuple(text.strip() for _, text in reader.strings((*path, "acr")) if text.strip())
    if not amr and not acr:
        reader.error(path, f"{KEY} needs amr or acr values (or say accept)", at_key=True)
        return None
    return ProviderMfa(amr, acr)
