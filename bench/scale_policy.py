"""Policy directories for the scale figures: many companies and many access rules, written as an
operator would (company files, one access file per application), and the gateway settings that
know those applications.

The rules are spread as a large site's would be: per application, API resources with methods
(exact paths for exports, globs for the resource tree), static trees that bypass, admin
sections with a step-up, internal trees that are denied, report files matched by "*", and a
few patterns that start with a wildcard ("/**/*.php"). None matches the benchmark's page
(/small.html), so a request is decided by the default after every rule has been considered:
the worst case for a plain scan, and the same for the small policy.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import servers

RESOURCES = ("users", "orders", "invoices", "items", "reports", "tickets", "files", "teams")


def company_file(number: int) -> str:
    """One company's policy file, of the size and shape of the shipped examples."""
    name = f"Company {number:04d}"
    domain = f"c{number:04d}.example"
    enforce = "true" if number % 3 else "false"
    return (
        f"# {name}: generated for the benchmark\n"
        f"company: {name}\n"
        f"members:\n  domains: [{domain}, mail.{domain}]\n"
        f"  users: [contractor{number}@freelance.example]\n"
        f"account_type: {'client' if number % 10 == 0 else 'partner'}\n"
        f"admins: [admin@{domain}]\n"
        "methods:\n  allowed: [totp, webauthn, recovery]\n  default: totp\n"
        f"enforce_2fa: {enforce}\n"
        "trusted_networks:\n"
        f"  networks: [10.{number // 256 % 256}.{number % 256}.0/24]\n"
        "  reprompt_after: 21d\n"
        f'branding:\n  name: C{number}\n  colour: "#{number * 2654435761 % 0xFFFFFF:06x}"\n'
        "session:\n  idle_timeout: 30m\n  lifetime: 12h\n"
        "attempts:\n  window: 15m\n  per_user_and_address: 10\n  per_user: 30\n"
    )


def rule(app: int, number: int) -> str:
    """The `number`th access rule of an application, in YAML (a list item)."""
    kind = number % 10
    version = 1 + number // 400
    resource = f"{RESOURCES[number % len(RESOURCES)]}{number // len(RESOURCES)}"
    base = f"/api/v{version}/{resource}"
    if kind in (0, 1):
        return (
            f'    - paths: ["{base}/**"]\n      methods: [POST, PUT, DELETE]\n'
            "      access: two_factor\n"
        )
    if kind == 2:
        return f'    - paths: ["{base}/**"]\n      methods: [GET]\n      access: one_factor\n'
    if kind == 3:
        return f'    - paths: ["{base}/export", "{base}/export.csv"]\n      access: two_factor\n'
    if kind == 4:
        return (
            f'    - paths: ["/static/a{app}/{resource}/**", "/assets/{resource}.js"]\n'
            "      access: bypass\n"
        )
    if kind == 5:
        return (
            f'    - paths: ["/admin/{resource}/**"]\n      access: two_factor\n'
            "      reauthenticate_after: 1h\n"
        )
    if kind == 6:
        return f'    - paths: ["/internal/{resource}/**"]\n      access: deny\n'
    if kind == 7:
        return f'    - paths: ["/reports/*/{resource}.pdf"]\n      access: one_factor\n'
    if kind == 8:
        return f'    - paths: ["/health/{resource}", "/{resource}/status"]\n      access: bypass\n'
    if number % 100 == 9:  # about 1 in 100: a pattern that starts with a wildcard
        return f'    - paths: ["/**/{resource}.php"]\n      access: deny\n'
    return f'    - paths: ["/pages/{resource}/*/edit"]\n      access: two_factor\n'


PROBE = "/scale-probe/x"  # denied (403) or bypassed (the upstream's 404): which policy is in force


def probe_rule(access: str) -> str:
    return f'    - paths: ["/scale-probe/**"]\n      access: {access}\n'


def access_file(app: str, app_number: int, rules: int, probe: str | None = None) -> str:
    """An application's access file; `probe`: the access of a first rule for /scale-probe/**,
    which a reload test flips (it is counted among the `rules`)."""
    first = probe_rule(probe) if probe is not None else ""
    body = "".join(rule(app_number, number) for number in range(rules - bool(first)))
    return f"applications:\n  {app}:\n{first}{body}"


def apps(count: int) -> list[str]:
    """The application names: the benchmark's own ("bench") and count - 1 others."""
    return ["bench", *(f"app{n:02d}" for n in range(1, count))]


def policy_files(
    companies: int, rules: int, applications: int, probe: str = "deny"
) -> dict[str, str]:
    """A policy directory's files: the benchmark's company (its user's domain), `companies` - 1
    others, and `rules` access rules spread evenly over `applications` applications, the
    benchmark application's first one the probe rule (`probe`: its access)."""
    files = {"bench.yaml": servers.POLICY}
    for number in range(1, companies):
        files[f"company-{number:04d}.yaml"] = company_file(number)
    names = apps(applications)
    per_app = rules // len(names)
    for index, app in enumerate(names):
        count = per_app + (1 if index < rules % len(names) else 0)
        files[f"access-{app}.yaml"] = access_file(app, index, count, probe if index == 0 else None)
    return files


def add_applications(config: Path, applications: int) -> None:
    """Give the settings written by servers.gateway_config the other applications the access
    files name: each on a host of its own, with the same upstream and users."""
    settings = json.loads(config.read_text())
    bench = settings["applications"]["bench"]
    for app in apps(applications)[1:]:
        settings["applications"][app] = {**bench, "hosts": [f"{app}.example"]}
    config.write_text(json.dumps(settings, indent=2))


def count_rules(files: dict[str, str]) -> int:
    return sum(text.count("\n    - paths:") for text in files.values())
