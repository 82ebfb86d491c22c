"""Deployment settings (listen address, store, secrets, applications) read from one YAML file:
model.py holds the frozen dataclasses they become; load.py reads the file and its top level and
collects every error; listen.py, applications.py, senders.py and observability.py (audit and
metrics) each read one section; values.py reads what sections share (paths, secrets, seconds).
An application's `intercept:` settings are read in gateway.intercept_settings. Import from here.
"""

from gateway.intercept_settings import Intercept
from gateway.settings.load import _validate as _validate
from gateway.settings.load import load_settings, settings_from_dict
from gateway.settings.model import (
    DEFAULT_PROVIDER,
    DEFAULT_STORE,
    LOOPBACK,
    Application,
    AuditSettings,
    AuditTo,
    CookieSecure,
    HeaderIdentity,
    Identity,
    Listen,
    MetricsSettings,
    Portal,
    Secrets,
    SecretSource,
    SenderConfig,
    SenderKind,
    SendersConfig,
    Settings,
    SettingsError,
    Timeouts,
)

__all__ = [
    "DEFAULT_PROVIDER",
    "DEFAULT_STORE",
    "LOOPBACK",
    "Application",
    "AuditSettings",
    "AuditTo",
    "CookieSecure",
    "HeaderIdentity",
    "Identity",
    "Intercept",
    "Listen",
    "MetricsSettings",
    "Portal",
    "SecretSource",
    "Secrets",
    "SenderConfig",
    "SenderKind",
    "SendersConfig",
    "Settings",
    "SettingsError",
    "Timeouts",
    "load_settings",
    "settings_from_dict",
]
