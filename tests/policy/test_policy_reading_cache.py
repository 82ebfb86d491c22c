"""A reload reads again only the policy files whose content changed, and compiles only their
access rules: what it gives (the policy, every error with its line) is exactly what a load
with nothing cached gives, cross-file errors included, whichever file changed."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config_errors import ConfigError, ConfigInvalid
from gateway.policy import loader
from gateway.policy.loader import check_policy_dir, load_policy_dir
from gateway.policy.model import Policy


@pytest.fixture(autouse=True)
def _no_cache_from_other_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "_documents", {})
    monkeypatch.setattr(loader, "_readings", {})
    monkeypatch.setattr(loader, "_policy", Policy.EMPTY)


def _uncached(
    directory: Path, known_apps: Collection[str] | None
) -> tuple[Policy, list[ConfigError]]:
    """A load with nothing cached, leaving the caches as they were."""
    kept = loader._documents, loader._readings, loader._policy
    loader._documents, loader._readings, loader._policy = {}, {}, Policy.EMPTY
    try:
        return loader._load(directory, known_apps)
    finally:
        loader._documents, loader._readings, loader._policy = kept


def _same_as_uncached(directory: Path, known_apps: Collection[str] | None = None) -> Policy:
    """The cached load, checked against an uncached one; the policy (EMPTY if refused)."""
    cold_policy, cold_errors = _uncached(directory, known_apps)
    errors = check_policy_dir(directory, known_apps)
    assert errors == cold_errors
    try:
        policy = load_policy_dir(directory, known_apps)
    except ConfigInvalid as exc:
        assert exc.errors == cold_errors
        return Policy.EMPTY
    assert not cold_errors and policy == cold_policy
    for app, rules in policy.access_rules.items():  # each index compiled from these very rules
        assert not rules or policy._indexes[app].rules is rules
    return policy


def _messages(
    directory: Path, known_apps: Collection[str] | None = None
) -> list[tuple[str, int, str]]:
    return [
        (Path(error.file).name, error.line, error.message)
        for error in check_policy_dir(directory, known_apps)
    ]


ACME = "company: Acme\nmembers:\n  domains: [acme.example]\n  users: [pat@x.example]\n"
GLOBEX = "company: Globex\nmembers:\n  domains: [globex.example]\n"
WIKI = "applications:\n  wiki:\n    - paths: [/static/**]\n      access: bypass\n"
CRM = "applications:\n  crm:\n    - paths: [/internal/**]\n      access: deny\n"


def _write(directory: Path, files: dict[str, str | None]) -> None:
    for name, text in files.items():
        if text is None:
            (directory / name).unlink(missing_ok=True)
        else:
            (directory / name).write_text(text)


def test_an_unchanged_file_is_reused_and_a_changed_one_read_again(tmp_path: Path) -> None:
    _write(tmp_path, {"acme.yaml": ACME, "globex.yaml": GLOBEX, "wiki.yaml": WIKI, "crm.yaml": CRM})
    first = _same_as_uncached(tmp_path)
    _write(tmp_path, {"globex.yaml": GLOBEX + "enforce_2fa: true\n", "crm.yaml": CRM + "\n  # x\n"})
    second = _same_as_uncached(tmp_path)
    acme, globex = (second.company_by_id(name) for name in ("acme", "globex"))
    assert acme is first.company_by_id("acme")
    assert globex is not None and globex.enforce_2fa and globex is not first.company_by_id("globex")
    assert second.access_rules["wiki"] is first.access_rules["wiki"]
    assert second._indexes["wiki"] is first._indexes["wiki"]  # not compiled again
    # crm.yaml's content changed (a comment), so its rules are read and compiled again
    assert second.access_rules["crm"] == first.access_rules["crm"]
    assert second.access_rules["crm"] is not first.access_rules["crm"]
    assert second._indexes["crm"] is not first._indexes["crm"]


def test_a_member_claimed_twice_appears_and_goes_with_one_file(tmp_path: Path) -> None:
    _write(tmp_path, {"acme.yaml": ACME, "globex.yaml": GLOBEX})
    _same_as_uncached(tmp_path)
    _write(
        tmp_path,
        {"globex.yaml": GLOBEX.replace("[globex.example]", "[globex.example, acme.example]")},
    )
    assert _same_as_uncached(tmp_path) is Policy.EMPTY
    assert _messages(tmp_path) == [
        (
            "globex.yaml",
            3,
            f'domain "acme.example" is already claimed by company "Acme" in {tmp_path / "acme.yaml"}',
        )
    ]
    # the first claimer changes: now the other file is the one in the wrong
    _write(tmp_path, {"acme.yaml": None, "aaa.yaml": ACME.replace("Acme", "Aaa")})
    assert _same_as_uncached(tmp_path) is Policy.EMPTY
    assert [message for _, _, message in _messages(tmp_path)] == [
        f'domain "acme.example" is already claimed by company "Aaa" in {tmp_path / "aaa.yaml"}'
    ]
    _write(tmp_path, {"globex.yaml": GLOBEX})
    assert {c.id for c in _same_as_uncached(tmp_path).companies} == {"aaa", "globex"}


def test_an_application_in_two_files_and_a_company_id_clash(tmp_path: Path) -> None:
    _write(tmp_path, {"acme.yaml": ACME, "wiki.yaml": WIKI})
    _same_as_uncached(tmp_path)
    _write(tmp_path, {"z.yaml": WIKI, "acme.yml": GLOBEX})
    assert _same_as_uncached(tmp_path) is Policy.EMPTY
    assert _messages(tmp_path) == [
        (
            "acme.yml",
            1,
            f'the company id "acme" (the file name) is taken by {tmp_path / "acme.yaml"}',
        ),
        (
            "z.yaml",
            2,
            f'application "wiki" already has rules in {tmp_path / "wiki.yaml"}; keep them in '
            "one file",
        ),
    ]
    _write(tmp_path, {"z.yaml": CRM, "acme.yml": None})
    policy = _same_as_uncached(tmp_path)
    assert sorted(policy.access_rules) == ["crm", "wiki"]


def test_known_applications_changing_between_loads(tmp_path: Path) -> None:
    _write(tmp_path, {"acme.yaml": ACME, "wiki.yaml": WIKI, "crm.yaml": CRM})
    assert sorted(_same_as_uncached(tmp_path, ["crm", "wiki"]).access_rules) == ["crm", "wiki"]
    assert _same_as_uncached(tmp_path, ["wiki"]) is Policy.EMPTY
    assert _messages(tmp_path, ["wiki"]) == [
        ("crm.yaml", 2, 'no application named "crm" in the settings; known: wiki')
    ]
    assert _same_as_uncached(tmp_path, None) != Policy.EMPTY
    assert _messages(tmp_path, []) == [
        ("crm.yaml", 2, 'no application named "crm" in the settings; known: none'),
        ("wiki.yaml", 2, 'no application named "wiki" in the settings; known: none'),
    ]


def test_a_cross_file_error_keeps_its_place_among_the_files_own(tmp_path: Path) -> None:
    """Errors on one line keep the order that checking while reading gave them (the loader
    before readings were cached printed exactly these)."""
    _write(tmp_path, {"acme.yaml": ACME})
    _same_as_uncached(tmp_path)
    _write(
        tmp_path,
        {
            "acme.yml": '{company: B, members: {domains: [acme.example, "@x"], '
            "users: [pat@x.example]}, account_type: nobody}\n"
        },
    )
    _same_as_uncached(tmp_path)
    first = tmp_path / "acme.yaml"
    assert _messages(tmp_path) == [
        ("acme.yml", 1, f'the company id "acme" (the file name) is taken by {first}'),
        ("acme.yml", 1, 'write the domain without "@": "x"'),
        ("acme.yml", 1, f'domain "acme.example" is already claimed by company "Acme" in {first}'),
        ("acme.yml", 1, f'user "pat@x.example" is already claimed by company "Acme" in {first}'),
        ("acme.yml", 1, 'account_type must be one of partner, client, not "nobody"'),
    ]


# -- many random edits: the cached load always says what an uncached one says ----------------

# each file's possible contents (None: the file is not there)
VARIANTS: dict[str, list[str | None]] = {
    "acme.yaml": [ACME, None, ACME + "enforce_2fa: true\n", ACME + "account_type: nobody\n"],
    "acme.yml": [None, GLOBEX.replace("globex", "other")],
    "globex.yaml": [
        GLOBEX,
        None,
        GLOBEX.replace("[globex.example]", "[globex.example, acme.example]"),
        "company: Globex\nmembers:\n  users: [PAT@x.example]\n  groups: [staff]\n",
        "company: [\n",
    ],
    "initech.yaml": [None, "company: Initech\nmembers:\n  groups: [Staff, ops]\n", "{}\n"],
    "wiki.yaml": [WIKI, None, WIKI.replace("bypass", "deny"), WIKI + "  crm: []\n"],
    "crm.yaml": [
        CRM,
        None,
        CRM.replace("crm", "wiki"),
        CRM + "    - paths: [x]\n      access: deny\n",
    ],
    "zz.yaml": [None, "", "applications: {}\n", "applications:\n  ghost: []\n"],
}
KNOWN: list[list[str] | None] = [None, ["wiki", "crm"], ["wiki"], ["crm", "ghost", "wiki"]]


def _edits() -> st.SearchStrategy[list[tuple[str, int, int]]]:
    one = st.sampled_from(sorted(VARIANTS)).flatmap(
        lambda name: st.tuples(
            st.just(name),
            st.integers(0, len(VARIANTS[name]) - 1),
            st.integers(0, len(KNOWN) - 1),
        )
    )
    return st.lists(one, min_size=1, max_size=12)


@pytest.fixture(scope="module")
def _directories(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pytest.TempPathFactory]:
    yield tmp_path_factory


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=_edits())
def test_random_edits_load_as_an_uncached_load_does(
    _directories: pytest.TempPathFactory, edits: list[tuple[str, int, int]]
) -> None:
    directory = _directories.mktemp("edits")
    _write(directory, {name: variants[0] for name, variants in VARIANTS.items()})
    _same_as_uncached(directory)
    for name, variant, known in edits:
        _write(directory, {name: VARIANTS[name][variant]})
        _same_as_uncached(directory, KNOWN[known])
