"""Fuzzing policy loading: whatever a policy file holds, loading it either gives a Policy or
raises ConfigInvalid listing errors with file, line and a one-line sentence; never another
exception, never unbounded time or memory.

Inputs: random bytes and text, YAML dumped from random structures over the real policy keys,
mutations of the example policies shipped in policies/, and hand-shaped attacks (alias bombs,
deep nesting, huge numbers, duplicate keys, merge keys, Python tags, non-UTF-8 bytes).

The run is deterministic and short by default. To fuzz longer, with fresh random inputs:

    GATEWAY_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/security/test_policy_fuzz.py

A failure prints the input and a `@reproduce_failure` line to replay it.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.policy import Policy, check_policy_dir, load_policy_dir
from gateway.policy.model import AttemptLimits
from gateway.yamlsource import ConfigInvalid, parse_yaml

LONG_RUN = os.environ.get("GATEWAY_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(LONG_RUN) if LONG_RUN else 150,
    derandomize=not LONG_RUN,  # CI: the same inputs every run; a long run: new ones
    database=None,
    deadline=None,  # a loaded 2-core machine; time is bounded by the checks below instead
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# for the inputs that are expensive by design (expansions up to the limits, deep nesting)
FUZZ_FEW = settings(FUZZ, max_examples=int(LONG_RUN) // 10 if LONG_RUN else 12)
EXAMPLES = Path(__file__).parents[2] / "policies"
# Generous: a file of a few kilobytes loads in milliseconds; a runaway expansion takes minutes.
MAX_SECONDS = 10.0
MAX_MESSAGE = 400

POLICY_KEYS = [
    "company", "members", "domains", "users", "account_type", "admins", "methods", "allowed",
    "default", "codes", "valid_for", "tries", "resend_after", "sends_per_hour", "enforce_2fa",
    "deferral", "trusted_networks", "networks", "reprompt_after", "branding", "name", "logo",
    "colour", "session", "idle_timeout", "lifetime", "attempts", "applications", "paths",
    "access", "<<", *AttemptLimits.__dataclass_fields__,
]  # fmt: skip
INTERESTING_TEXT = [
    "acme.example", "@acme.example", "alice@acme.example", "partner", "client", "totp", "sms",
    "webauthn", "bypass", "deny", "one_factor", "two_factor", "10.0.0.0/8", "10.0.0.1/8",
    "::/0", "2001:db8::/32", "48h", "21d", "0s", "1h30m", "99999999999999999999w", "-1",
    "#aa3300", "#zzz", "/logo.png", "//evil.example/x.png", "javascript:alert(1)", "/**",
    "/**/**/**/x", "/*a*a*a*b", "/a/../b", "/static/**?x", "GET", "post", "", " ", "\t",
    "x\ny", "\x00", "\u2028", "é", "\ufeff",
]  # fmt: skip
YAML_TOKENS = [
    "&a ", "*a", "<<: *a\n", "<<: [*a, *a]\n", "? ", ": ", "- ", "{", "}", "[", "]", ",", "#",
    "\n", "  ", "\t", "'", '"', "|\n", ">-\n", "---\n", "...\n", "%YAML 1.1\n", "!!str ",
    "!!int ", "!!float ", "!!bool ", "!!binary ", "!!timestamp ", "!!set ", "!!omap ",
    "!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!custom ",
    "0x" + "f" * 5000, "1" * 5000, "1e999", ".nan", "-.inf", "0o777", "1:30", "~", "null",
    "yes", "no", "2001-12-14t21:59:43.10-05:00", "[" * 300, "{a: " * 300,
]  # fmt: skip


def _scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(10**5000), max_value=10**5000),
        st.floats(),
        st.sampled_from(INTERESTING_TEXT),
        st.text(max_size=20),
    )


def _structures() -> st.SearchStrategy[Any]:
    keys = st.sampled_from(POLICY_KEYS) | st.text(max_size=8)
    return st.recursive(
        _scalars(),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6)
        ),
        max_leaves=30,
    )


def _policy_like() -> st.SearchStrategy[dict[str, Any]]:
    """A mapping with company: or applications: at the top, the rest random."""
    top = st.sampled_from(["company", "applications"])
    return st.builds(
        lambda first, value, rest: {first: value, **rest},
        top,
        _structures(),
        st.dictionaries(st.sampled_from(POLICY_KEYS), _structures(), max_size=8),
    )


def _dump(data: Any) -> str:
    # int > 4300 digits cannot be written by PyYAML: such a number is written by hand instead
    try:
        return yaml.safe_dump(data, allow_unicode=True, default_flow_style=None)
    except ValueError:
        return "company: x\nattempts: {free: " + "9" * 5000 + "}\n"


@st.composite
def _mutated_example(draw: st.DrawFn) -> bytes:
    """One of the shipped example policies, cut, spliced and sprinkled with YAML tokens."""
    files = sorted(EXAMPLES.glob("*.yaml"))
    text = draw(st.sampled_from(files)).read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        end = draw(st.integers(at, min(len(text), at + 40)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        token = draw(st.sampled_from(YAML_TOKENS) | st.sampled_from(INTERESTING_TEXT))
        if kind == "insert":
            text = text[:at] + token + text[at:]
        elif kind == "delete":
            text = text[:at] + text[end:]
        elif kind == "replace":
            text = text[:at] + token + text[end:]
        else:
            text = text[:end] + text[at:end] + text[end:]
    data = text.encode("utf-8")
    if draw(st.booleans()):  # now and then, a byte that is not UTF-8
        at = draw(st.integers(0, len(data)))
        data = (
            data[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80"]))
            + data[at:]
        )
    return data


def _token_soup() -> st.SearchStrategy[bytes]:
    return st.lists(
        st.sampled_from(YAML_TOKENS)
        | st.sampled_from(POLICY_KEYS)
        | st.sampled_from(INTERESTING_TEXT),
        max_size=40,
    ).map(lambda tokens: "".join(tokens).encode("utf-8"))


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzzed-policies")


def assert_loads_or_refuses(directory: Path, content: bytes, name: str = "fuzzed.yaml") -> None:
    """Load a directory holding `content` as a policy file, with the shipped examples beside it."""
    for old in directory.iterdir():
        old.unlink()
    for example in EXAMPLES.glob("*.yaml"):
        (directory / example.name).write_bytes(example.read_bytes())
    file = directory / name
    file.write_bytes(content)
    started = time.process_time()
    try:
        policy = load_policy_dir(directory)
    except ConfigInvalid as exc:
        errors = exc.errors
        assert errors, "ConfigInvalid must say what is wrong"
        assert check_policy_dir(directory) == errors
        for error in errors:
            assert error.file in (str(file), str(directory)) or error.file.startswith(
                str(directory)
            ), error
            assert error.line >= 0
            assert error.message.strip(), error
            assert "\n" not in error.message and "\r" not in error.message, error
            assert len(error.message) <= MAX_MESSAGE, error
            assert "Traceback" not in error.message
    else:
        assert isinstance(policy, Policy)
        _use(policy)
    assert time.process_time() - started < MAX_SECONDS


def _use(policy: Policy) -> None:
    """What a running gateway does with a loaded policy must work too."""
    for company in policy.companies:
        for domain in company.domains:
            assert policy.company_for(f"someone@{domain}") is not None
    for app in policy.access_rules:
        for path in ("/", "/static/app.js", "/internal/x", "/" + "a/" * 2000):
            policy.access_for(app, "GET", path)


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes(policy_dir: Path, content: bytes) -> None:
    assert_loads_or_refuses(policy_dir, content)


@FUZZ
@given(st.text(max_size=2000))
def test_random_text(policy_dir: Path, text: str) -> None:
    assert_loads_or_refuses(policy_dir, text.encode())


@FUZZ
@given(_token_soup())
def test_yaml_token_soup(policy_dir: Path, content: bytes) -> None:
    assert_loads_or_refuses(policy_dir, content)


@FUZZ
@given(_policy_like())
def test_random_structures_over_the_policy_keys(policy_dir: Path, data: dict[str, Any]) -> None:
    assert_loads_or_refuses(policy_dir, _dump(data).encode("utf-8"))


@FUZZ
@given(_mutated_example())
def test_mutated_example_policies(policy_dir: Path, content: bytes) -> None:
    assert_loads_or_refuses(policy_dir, content)


@FUZZ_FEW
@given(st.integers(2, 40), st.integers(2, 12), st.booleans())
def test_alias_bombs_of_any_shape(policy_dir: Path, width: int, depth: int, text: bool) -> None:
    """Billion laughs, of values or of long text, under a real policy key."""
    first = '"' + "x" * 100_000 + '"' if text else "x"
    lines = ["company: Bomb", "members: {domains: [bomb.example]}", "branding:"]
    lines.append(f"  name: &l0 [{', '.join([first] * width)}]")
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth + 1)]
    lines.append(f"admins: *l{depth}")
    assert_loads_or_refuses(policy_dir, ("\n".join(lines) + "\n").encode())


@FUZZ_FEW
@given(st.integers(1, 1500), st.sampled_from(["flow list", "flow mapping", "list", "mapping"]))
def test_nesting_of_any_depth(policy_dir: Path, depth: int, style: str) -> None:
    if style == "flow list":
        members = " " + "[" * depth + "x" + "]" * depth
    elif style == "flow mapping":
        members = " " + "{a: " * depth + "x" + "}" * depth
    elif style == "list":
        members = "\n  " + "- " * depth + "x"
    else:
        members = "".join("\n" + "  " * (level + 1) + "k:" for level in range(depth)) + " x"
    assert_loads_or_refuses(policy_dir, f"company: Deep\nmembers:{members}\n".encode())


def test_self_and_mutually_referencing_aliases_and_merges(policy_dir: Path) -> None:
    for content in [
        "company: &a [*a]\n",
        "company: X\nmembers: &m {domains: [x.example], <<: *m}\n",
        "company: X\nmembers: &m {domains: [x.example]}\nbranding: {<<: [*m, 1, [2]]}\n",
        "company: X\nmembers: {domains: [x.example]}\n<<: {company: Y}\n",
        "company: X\n<<: &q {<<: *q}\n",
        "? [a, b]\n: c\ncompany: X\n",
        "company: X\ncompany: Y\nmembers: {domains: [x.example], domains: [y.example]}\n",
        "company: !!python/object/apply:os.system ['touch /tmp/pwned-by-policy']\n",
        "company: !!binary aGVsbG8=\nmembers: {domains: [x.example]}\n",
        "company: X\nmembers: {domains: [x.example]}\nenforce_2fa: !!bool maybe\n",
        "applications:\n  app:\n    - paths: ['/**/**/**/**/**/x']\n      access: deny\n",
    ]:
        assert_loads_or_refuses(policy_dir, content.encode())
    assert not Path("/tmp/pwned-by-policy").exists()


def test_a_huge_file_is_refused_without_reading_it_all(policy_dir: Path) -> None:
    content = b"company: X\n# " + b"x" * (8 * 1024 * 1024) + b"\n"
    assert_loads_or_refuses(policy_dir, content)
    with pytest.raises(ConfigInvalid, match="larger than"):
        load_policy_dir(policy_dir)


def test_alias_bomb_memory_and_time_stay_bounded() -> None:
    """The worst expansion the limits allow: text values through aliases, measured."""
    lines = ['l0: &l0 ["' + "x" * 500_000 + '"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "\n".join(lines) + "\n"
    tracemalloc.start()
    started = time.process_time()
    try:
        document = parse_yaml(text, "bomb.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.process_time() - started < MAX_SECONDS
    assert peak < 200 * 1024 * 1024
    assert document.data is None
    assert [error.message for error in document.errors] == [
        "the file expands to more than 10000000 characters through its aliases"
    ]


def test_error_lines_cannot_be_forged_by_quoted_values(policy_dir: Path) -> None:
    """A value holding a newline is quoted on the same line, so CI output shows one error."""
    content = 'company: X\nmembers: {domains: ["a\\npolicies/ok.yaml:1: fine"]}\n'
    assert_loads_or_refuses(policy_dir, content.encode())
    with pytest.raises(ConfigInvalid) as caught:
        load_policy_dir(policy_dir)
    assert str(caught.value).count("\n") == len(caught.value.errors) - 1
