"""Properties (hypothesis) of the pure security core: the decision, the redirect check, the path
normaliser, and access rules matched on normalised paths.

Deterministic by default (the same examples every run). To search longer, with fresh inputs:

    GATEWAY_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/security/test_properties.py
"""

from __future__ import annotations

import os
import re
import time
from itertools import pairwise
from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.decision import Mode, Outcome, Standing, decide, second_factor
from gateway.paths import BadPath, encode_path, normalise_path
from gateway.policy.globs import PathPattern, glob_to_regex
from gateway.policy.model import STRICTNESS, Access, AccessRule, Policy, readings
from gateway.redirects import is_safe_redirect, safe_redirect
from gateway.sessions import Level

LONG_RUN = os.environ.get("GATEWAY_FUZZ_EXAMPLES")
PROPERTY = settings(
    max_examples=int(LONG_RUN) if LONG_RUN else 200,
    derandomize=not LONG_RUN,  # CI: the same inputs every run; a long run: new ones
    database=None,
    deadline=None,  # a loaded 2-core machine; the one timing property measures for itself
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# ---------------------------------------------------------------------------------------------
# The decision

IDENTITY = {Outcome.FORWARD, Outcome.SKIP_TRUSTED, Outcome.SKIP_DEFERRED}  # in, as the user
THROUGH = IDENTITY | {Outcome.FORWARD_ANONYMOUS}  # reaches the application at all
RULE_ORDER = [Access.ONE_FACTOR, Access.TWO_FACTOR, Access.DENY]  # laxer to stricter

standings = st.builds(
    Standing,
    enrolled=st.booleans(),
    enforced=st.booleans(),
    deferred_until=st.none() | st.floats(),  # NaN and infinities too: they must fail closed
    trusted=st.booleans(),
    client_account=st.booleans(),
    now=st.floats(),
)
accesses = st.sampled_from(Access)
modes = st.sampled_from(Mode)
levels = st.sampled_from(Level)


@PROPERTY
@given(modes, levels, standings)
def test_deny_always_wins(mode: Mode, level: Level, standing: Standing) -> None:
    assert decide(Access.DENY, mode, level, standing).outcome is Outcome.DENY


@PROPERTY
@given(accesses, modes, levels, standings)
def test_only_a_deny_rule_denies(
    access: Access, mode: Mode, level: Level, standing: Standing
) -> None:
    if decide(access, mode, level, standing).outcome is Outcome.DENY:
        assert access is Access.DENY


@PROPERTY
@given(modes, levels, standings)
def test_bypass_needs_no_session_and_carries_no_identity(
    mode: Mode, level: Level, standing: Standing
) -> None:
    assert decide(Access.BYPASS, mode, level, standing).outcome is Outcome.FORWARD_ANONYMOUS


@PROPERTY
@given(accesses, modes, levels, standings)
def test_identity_is_forwarded_only_after_the_factors_the_rule_asks(
    access: Access, mode: Mode, level: Level, standing: Standing
) -> None:
    if decide(access, mode, level, standing).outcome is Outcome.FORWARD:
        assert (access is Access.TWO_FACTOR and level is Level.VERIFIED) or (
            access is Access.ONE_FACTOR and level >= Level.FIRST_FACTOR
        )


@PROPERTY
@given(modes, standings)
def test_the_second_factor_is_skipped_only_for_the_documented_reasons(
    mode: Mode, standing: Standing
) -> None:
    """After the password, on a two-factor path: a trusted-network cookie for an enrolled partner,
    or a live deferral of a partner whose company does not enforce; anything else is asked."""
    outcome = decide(Access.TWO_FACTOR, mode, Level.FIRST_FACTOR, standing).outcome
    s = standing
    if outcome is Outcome.SKIP_TRUSTED:
        assert s.enrolled and s.trusted and not s.client_account
    elif outcome is Outcome.SKIP_DEFERRED:
        assert not (s.enrolled or s.enforced or s.client_account)
        assert s.deferred_until is not None and s.now < s.deferred_until
    else:
        assert outcome is (Outcome.CHALLENGE if s.enrolled else Outcome.ENROL)


@PROPERTY
@given(modes, standings)
def test_enforcement_without_enrolment_always_enrols(mode: Mode, standing: Standing) -> None:
    """Enforced: no "remind me later", whatever deferral the store still holds."""
    standing = Standing(**{**standing.__dict__, "enrolled": False, "enforced": True})
    assert decide(Access.TWO_FACTOR, mode, Level.FIRST_FACTOR, standing).outcome is Outcome.ENROL


@PROPERTY
@given(modes, standings)
def test_client_accounts_are_asked_at_every_login(mode: Mode, standing: Standing) -> None:
    standing = Standing(**{**standing.__dict__, "client_account": True})
    outcome = decide(Access.TWO_FACTOR, mode, Level.FIRST_FACTOR, standing).outcome
    assert outcome in (Outcome.CHALLENGE, Outcome.ENROL)


@PROPERTY
@given(accesses, modes, standings)
def test_no_identity_without_a_first_factor(access: Access, mode: Mode, standing: Standing) -> None:
    """Anonymous: never forwarded as someone; forwarded at all on a protected path only in
    intercept mode, where the application's own login form is what it reaches."""
    outcome = decide(access, mode, Level.ANONYMOUS, standing).outcome
    assert outcome not in IDENTITY
    if outcome is Outcome.FORWARD_ANONYMOUS and access is not Access.BYPASS:
        assert mode is Mode.INTERCEPT


@PROPERTY
@given(st.sampled_from(list(pairwise(RULE_ORDER))), modes, levels, standings)
def test_a_stricter_rule_never_lets_more_through(
    pair: tuple[Access, Access], mode: Mode, level: Level, standing: Standing
) -> None:
    laxer, stricter = pair
    strict = decide(stricter, mode, level, standing).outcome
    lax = decide(laxer, mode, level, standing).outcome
    if strict in THROUGH:
        assert lax in THROUGH
    if strict in IDENTITY:
        assert lax in IDENTITY


@PROPERTY
@given(accesses, modes, levels, levels, standings)
def test_more_factors_never_get_less(
    access: Access, mode: Mode, one: Level, other: Level, standing: Standing
) -> None:
    lower, higher = sorted((one, other))
    if decide(access, mode, lower, standing).outcome in IDENTITY:
        assert decide(access, mode, higher, standing).outcome in IDENTITY
    if lower >= Level.FIRST_FACTOR and decide(access, mode, lower, standing).outcome in THROUGH:
        assert decide(access, mode, higher, standing).outcome in THROUGH


@PROPERTY
@given(
    accesses,
    modes,
    levels,
    standings,
    st.sampled_from(
        [("enforced", True), ("client_account", True), ("trusted", False), ("deferred_until", None)]
    ),
)
def test_a_stricter_standing_never_lets_more_through(
    access: Access,
    mode: Mode,
    level: Level,
    standing: Standing,
    stricter: tuple[str, object],
) -> None:
    field, value = stricter
    strict = Standing(**{**standing.__dict__, field: value})
    if decide(access, mode, level, strict).outcome in IDENTITY:
        assert decide(access, mode, level, standing).outcome in IDENTITY


@PROPERTY
@given(modes, standings)
def test_the_login_step_and_the_proxy_agree(mode: Mode, standing: Standing) -> None:
    """after_first_factor asks second_factor(); the proxy asks decide(): one answer."""
    assert second_factor(standing) == decide(Access.TWO_FACTOR, mode, Level.FIRST_FACTOR, standing)


@PROPERTY
@given(accesses, modes, levels, standings)
def test_every_decision_is_pure_and_says_why(
    access: Access, mode: Mode, level: Level, standing: Standing
) -> None:
    decision = decide(access, mode, level, standing)
    assert decision.reason.strip()
    assert decide(access, mode, level, standing) == decision


# ---------------------------------------------------------------------------------------------
# The redirect check

EVIL = "evil.example"
REDIRECT_TOKENS = [
    "/", "//", "\\", "/\\", ".", "..", "%", "%2f", "%2F", "%5c", "%5C", "%25", "%252f", "%2e",
    "%09", "%0a", "%0d", "%00", "%20", "%7f", ":", "http:", "https:", "javascript:", "data:",
    EVIL, "@", "?", "#", "&", "=", "a", "b", "\t", "\n", "\r", " ", "\x7f", "\x00", "é",
    "%C3%A9", "%E3%80%80", "%E2%80%8B", "\u3000", "\ufeff",
]  # fmt: skip
targets = st.lists(st.sampled_from(REDIRECT_TOKENS) | st.text(max_size=3), max_size=12).map(
    "".join
) | st.text(max_size=40)
MAX_ROUNDS = 3  # the decodings is_safe_redirect promises to look through


def _stays_on_the_application(candidate: str) -> bool:
    return (
        candidate.startswith("/")
        and not candidate.startswith("//")
        and "\\" not in candidate
        and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in candidate)
        and not urlsplit(candidate).scheme
        and not urlsplit(candidate).netloc
    )


def _decodings(target: str, rounds: int) -> list[str]:
    """`target` and each percent-decoding of it, until it stops changing or after `rounds`."""
    found = [target]
    for _ in range(rounds):
        decoded = unquote(found[-1])
        if decoded == found[-1]:
            break
        found.append(decoded)
    return found


@PROPERTY
@given(targets)
def test_an_accepted_target_is_a_path_on_the_same_application(target: str) -> None:
    if not is_safe_redirect(target):
        assert safe_redirect(target) == "/"
        return
    assert safe_redirect(target) == target
    assert len(target) <= 2048 and all(0x21 <= ord(c) <= 0x7E for c in target)
    for candidate in _decodings(target, MAX_ROUNDS):
        assert _stays_on_the_application(candidate), candidate
    # and as a browser resolves it against the page it is on
    resolved = urlsplit(urljoin("https://app.example/a/b?c=d", target))
    assert (resolved.scheme, resolved.netloc) == ("https", "app.example")


@PROPERTY
@given(targets, st.sampled_from(["/", "/home", "/a/b?c=d"]))
def test_safe_redirect_is_idempotent_and_always_safe(target: str, default: str) -> None:
    once = safe_redirect(target, default)
    assert safe_redirect(once, default) == once
    assert once in (target, default)
    assert is_safe_redirect(once)


segment_text = st.text(
    st.sampled_from("abcxyzABC019-._~!$&'()*+,;=:@"), min_size=1, max_size=8
).filter(lambda s: s not in (".", ".."))


@PROPERTY
@given(st.lists(segment_text, max_size=5), st.none() | segment_text, st.booleans())
def test_ordinary_paths_are_accepted(segments: list[str], query: str | None, slash: bool) -> None:
    """The check refuses what it must, not everything: an ordinary path passes as it is."""
    target = "/" + "/".join(segments) + ("/" if slash and segments else "")
    if query is not None:
        target += "?q=" + quote(query, safe="")
    assert is_safe_redirect(target)


@PROPERTY
@given(
    st.sampled_from(["//" + EVIL, "/\\" + EVIL, "\\\\" + EVIL, "https://" + EVIL]),
    st.integers(0, 6),
)
def test_no_decoding_of_an_accepted_target_leaves_the_application(
    payload: str, layers: int
) -> None:
    target = payload
    for _ in range(layers):
        target = quote(target, safe="")
    target = "/" + target
    if is_safe_redirect(target):
        for candidate in _decodings(target, rounds=20):
            assert _stays_on_the_application(candidate), (target, candidate)


# ---------------------------------------------------------------------------------------------
# The path normaliser, and access rules on the path it gives

PATH_TOKENS = [
    "/", "//", ".", "..", "./", "../", "%2e", "%2E", "%2e%2e", ".%2e", "%2f", "%2F", "%5c",
    "%5C", "%00", "%25", "%252e", "%252f", "%", "%zz", "%ff", "%C3%A9", "%3f", "%23", "\\", "?",
    "#", ";", "a", "b", "static", "internal", "é", "\x00", "\t", "%09", "%7f", " ", "+",
]  # fmt: skip
raw_paths = st.lists(st.sampled_from(PATH_TOKENS) | st.text(max_size=3), max_size=14).map(
    lambda tokens: "/" + "".join(tokens)
)


def _well_formed(path: str) -> None:
    assert path.startswith("/")
    assert "//" not in path
    assert not any(segment in (".", "..") for segment in path.split("/"))
    assert "\\" not in path
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in path)


@PROPERTY
@given(raw_paths)
def test_a_normalised_path_is_well_formed_and_is_what_is_forwarded(raw: str) -> None:
    try:
        path = normalise_path(raw)
    except BadPath:
        return
    _well_formed(path)
    wire = encode_path(path)
    assert wire.isascii() and not any(c in wire for c in "?# \\")
    assert normalise_path(wire) == path  # what the application decodes is what the rules saw
    if "%" not in path:  # decoded once: idempotent where nothing is left to decode
        assert normalise_path(path) == path


@PROPERTY
@given(raw_paths)
def test_encoded_separators_and_nul_are_refused(raw: str) -> None:
    lowered = raw.lower()
    decoded = unquote(raw, errors="surrogateescape")
    if any(token in lowered for token in ("%2f", "%5c", "%00")) or "\\" in decoded:
        with pytest.raises(BadPath):
            normalise_path(raw)


def _percent(char: str, upper: bool) -> str:
    encoded = "".join(f"%{byte:02X}" for byte in char.encode())
    return encoded if upper else encoded.lower()


@st.composite
def disguised(draw: st.DrawFn) -> tuple[str, str]:
    """(a canonical path, the same path disguised): characters percent-encoded, and before each
    segment a detour that normalisation removes ("./", "//", "x/../", "static/%2e%2e/"...)."""
    top = draw(st.sampled_from(["internal", "static", "light", "app", "a"]))
    segments = [top, *draw(st.lists(segment_text | st.sampled_from(["é", "ü"]), max_size=4))]
    canonical = "/" + "/".join(segments)
    detours = st.sampled_from(
        ["", "./", "/", "%2e/", "%2E/", "x/../", "static/../", "static/%2e%2e/", "a/.%2e/"]
    )
    disguise = "/"
    for index, segment in enumerate(segments):
        disguise += "".join(draw(st.lists(detours, max_size=2)))
        for char in segment:
            disguise += _percent(char, draw(st.booleans())) if draw(st.booleans()) else char
        if index < len(segments) - 1:
            disguise += "/"
    return canonical, disguise


RULES = Policy(
    access_rules={
        "legacy": (
            AccessRule(("/static/**", "/favicon.ico"), Access.BYPASS),
            AccessRule(("/internal/**",), Access.DENY),
            AccessRule(("/light/*/view", "/light/**/*.txt"), Access.ONE_FACTOR),
        )
    }
)


@PROPERTY
@given(disguised(), st.sampled_from(["GET", "POST", "get"]))
def test_encodings_and_dot_segments_cannot_change_the_rule(
    case: tuple[str, str], method: str
) -> None:
    canonical, disguise = case
    assert normalise_path(disguise) == canonical
    expected = RULES.access_for("legacy", method, canonical)
    assert RULES.access_for("legacy", method, normalise_path(disguise)) == expected
    if canonical.startswith("/internal"):
        assert expected[0] is Access.DENY


@PROPERTY
@given(raw_paths | disguised().map(lambda case: case[1]))
def test_any_path_that_normalises_into_a_denied_prefix_is_denied(raw: str) -> None:
    try:
        path = normalise_path(raw)
    except BadPath:
        return
    access, _ = RULES.access_for("legacy", "GET", path)
    if path == "/internal" or path.startswith("/internal/"):
        assert access is Access.DENY
    # and the path forwarded gets the same rule again
    assert RULES.access_for("legacy", "GET", normalise_path(encode_path(path)))[0] is access


@st.composite
def loosely_read(draw: st.DrawFn) -> str:
    """A path under /internal as an application server may still route it there: letters in
    another case (IIS and many frameworks), ";parameters" on segments (Tomcat, Jetty, Spring)."""
    segments = [
        "internal",
        *draw(st.lists(segment_text.filter(lambda s: ";" not in s), max_size=3)),
    ]
    path = ""
    for segment in segments:
        flips = draw(st.lists(st.booleans(), min_size=len(segment), max_size=len(segment)))
        path += "/" + "".join(
            c.swapcase() if flip else c for c, flip in zip(segment, flips, strict=True)
        )
        if draw(st.booleans()):
            path += ";" + draw(st.sampled_from(["", "x", "jsessionid=1", "a=b"]))
    return path


@PROPERTY
@given(loosely_read())
def test_a_deny_rule_holds_for_every_reading_of_the_path(raw: str) -> None:
    assert RULES.access_for("legacy", "GET", normalise_path(raw))[0] is Access.DENY


@PROPERTY
@given(raw_paths | disguised().map(lambda case: case[1]) | loosely_read())
def test_the_strictest_reading_decides(raw: str) -> None:
    try:
        path = normalise_path(raw)
    except BadPath:
        return
    decided, _ = RULES.access_for("legacy", "GET", path)
    rules = RULES.access_rules["legacy"]
    for reading in readings(path):
        alone = next((rule.access for rule in rules if rule.matches("GET", reading)), None)
        assert STRICTNESS[decided] >= STRICTNESS[alone or Access.TWO_FACTOR], (path, reading)


# ---------------------------------------------------------------------------------------------
# The access-rule pattern matcher

patterns = st.lists(
    st.sampled_from(["/", "a", "b", ".", "-", "*", "**", "/**", "/**/"]), max_size=8
).map(lambda parts: "/" + "".join(parts))
small_paths = st.text(st.sampled_from("ab/.-"), max_size=12).map(lambda text: "/" + text)


@PROPERTY
@given(patterns, small_paths)
def test_the_matcher_means_what_the_pattern_syntax_says(pattern: str, path: str) -> None:
    """Both ways of matching agree with the patterns' regular expression (their definition)."""
    expected = re.fullmatch(glob_to_regex(pattern), path, re.DOTALL) is not None
    compiled = PathPattern(pattern)
    assert compiled.automaton_matches(path) is expected
    assert compiled.matches(path) is expected
    assert AccessRule((pattern, "/zzz"), Access.DENY).matches("GET", path) is expected


@settings(PROPERTY, max_examples=int(LONG_RUN) // 10 if LONG_RUN else 25)
@given(patterns, st.text(st.sampled_from("ab/.-"), min_size=1, max_size=4))
def test_matching_time_is_linear_in_the_path(pattern: str, unit: str) -> None:
    """A client controls the path (up to ~8 KB): no pattern may make matching it blow up.
    A backtracking regular expression of "/**/*-*-*.js" took seconds on 4 KB of "-",
    "/**/**/**/x" minutes on 8 KB of "a/"."""
    rule = AccessRule((pattern,), Access.DENY)
    path = "/" + unit * (8000 // len(unit))
    started = time.process_time()
    rule.matches("GET", path)
    rule.matches("GET", path + "!")  # a near miss is the slow case for backtracking
    assert time.process_time() - started < 1.0


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("/**/*-*-*.js", "/" + "-" * 8000),
        ("/**/**/**/x", "/" + "a/" * 4000),
        ("/*a*a*a*b", "/" + "a" * 8000),
        ("/**/a/**/b/**/c", "/" + "a/b/" * 2000),
    ],
)
def test_known_catastrophic_patterns_match_quickly(pattern: str, path: str) -> None:
    started = time.process_time()
    assert not AccessRule((pattern,), Access.DENY).matches("GET", path)
    assert time.process_time() - started < 1.0
