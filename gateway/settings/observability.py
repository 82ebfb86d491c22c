"""The `audit:` and `metrics:` sections: where the audit log's JSON lines go (standard output,
or appended to the file `audit.path` names, which is required then and refused otherwise), and
which client networks may read /.gateway/metrics (this machine only unless `metrics.networks`
lists others; an empty list is an error, not "nobody").
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from gateway.settings.model import LOOPBACK, AuditSettings, AuditTo, MetricsSettings
from gateway.settings.values import read_path
from gateway.yaml_document import KeyPath
from gateway.yamlsource import Keys, Reader

_AUDIT_KEYS = Keys("settings", "audit", ("to", "path"))
_METRICS_KEYS = Keys("settings", "metrics", ("networks",))


def read_audit(r: Reader, base: Path) -> AuditSettings:
    p: KeyPath = ("audit",)
    r.mapping(p)
    r.unknown_keys(p, _AUDIT_KEYS)
    to = cast(AuditTo, r.choice((*p, "to"), ("stdout", "file"), "stdout"))
    path = read_path(r, (*p, "path"), base)
    if to == "file" and path is None and not r.has((*p, "path")):
        message = "audit.path is required with to: file (the file the lines are appended to)"
        r.error(p, message, at_key=True)
    elif to == "stdout" and path is not None:
        r.error((*p, "path"), "audit.path is only used with to: file", at_key=True)
    return AuditSettings(to, path if to == "file" else None)


def read_metrics(r: Reader) -> MetricsSettings:
    p: KeyPath = ("metrics",)
    r.mapping(p)
    r.unknown_keys(p, _METRICS_KEYS)
    if not r.has((*p, "networks")):
        return MetricsSettings()
    if r.value((*p, "networks")) == []:
        message = (
            'metrics.networks must list at least one network (["0.0.0.0/0", "::/0"] for '
            "every address)"
        )
        r.error((*p, "networks"), message)
        return MetricsSettings()
    return MetricsSettings(r.networks((*p, "networks")) or LOOPBACK)
