"""The compiled access-rule matcher (RuleIndex, gateway.policy.globs.PathIndex) answers exactly
what the plain scan of the rules in order answers (`_first_match`): the same rule, for every
rule set, method and path, the order of the rules deciding."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy.globs import PathPattern
from gateway.policy.model import (
    OTHER_METHOD,
    Access,
    AccessRule,
    Policy,
    RuleIndex,
    _asks_more,
    _first_match,
    readings,
)

PIECES = ("a", "b", "ab", "A", "x.js", "", "*", "**", "a*", "*b", "*.js", "a**", "**b", ";p")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", OTHER_METHOD, "get")

pieces = st.sampled_from(PIECES)
patterns = st.lists(pieces, min_size=0, max_size=5).map(lambda parts: "/" + "/".join(parts))
paths = st.lists(
    st.sampled_from(("a", "b", "ab", "A", "x.js", "", "zz", "a.", "ab;p", "B")), max_size=6
).map(lambda parts: "/" + "/".join(parts))
rules = st.builds(
    lambda paths, access, methods: AccessRule(tuple(paths), access, methods),
    st.lists(patterns, min_size=1, max_size=3),
    st.sampled_from(tuple(Access)),
    st.one_of(
        st.none(),
        st.lists(st.sampled_from(("GET", "HEAD", "POST", "PUT", "DELETE")), min_size=1).map(tuple),
    ),
)


def concrete(pattern: str, fill: str) -> str:
    """A path the pattern may well match: its wildcards filled in."""
    return pattern.replace("**", f"{fill}/{fill}").replace("*", fill)


@settings(max_examples=600, deadline=None)
@given(
    st.lists(rules, min_size=1, max_size=25),
    st.lists(paths, min_size=1, max_size=8),
    st.sampled_from(("", "a", "x", "a/b")),
)
def test_the_index_answers_what_the_scan_answers(
    ruleset: list[AccessRule], some_paths: list[str], fill: str
) -> None:
    ordered = tuple(ruleset)
    index = RuleIndex(ordered)
    candidates = some_paths + [concrete(p, fill) for rule in ordered for p in rule.paths]
    for path in candidates:
        for method in METHODS:
            expected = _first_match(ordered, method, path)
            found = index.first_match(method, path)
            assert found[0] is expected[0] and found[1] is expected[1], (method, path, ordered)


def reference_access_for(
    policy: Policy, app: str, method: str, path: str, overrides: tuple[str, ...] = ()
) -> tuple[Access, AccessRule | None]:
    """Policy.access_for as it was before the index: every reading, by the plain scan."""
    rules = policy.access_rules.get(app, ())
    if not rules:
        return Access.TWO_FACTOR, None
    decided = _first_match(rules, method, path)
    for candidate in dict.fromkeys((method, *overrides)):
        for reading in readings(path):
            other = _first_match(rules, candidate, reading)
            if other[1] is not decided[1] and _asks_more(other, decided):
                decided = other
    return decided


@settings(max_examples=300, deadline=None)
@given(
    st.lists(rules, min_size=1, max_size=15),
    st.lists(paths, min_size=1, max_size=5),
    st.sampled_from(("GET", "HEAD", "POST", "DELETE")),
)
def test_access_for_decides_as_before(
    ruleset: list[AccessRule], some_paths: list[str], method: str
) -> None:
    policy = Policy(access_rules={"app": tuple(ruleset)})
    overrides = policy.any_method("app")
    for path in some_paths + [p.upper() + "/" for p in some_paths]:
        for extra in ((), overrides):
            expected = reference_access_for(policy, "app", method, path, extra)
            found = policy.access_for("app", method, path, extra)
            assert found[0] is expected[0] and found[1] is expected[1], (method, path, extra)


def test_any_method_lists_the_methods_rules_name_in_order() -> None:
    policy = Policy(
        access_rules={
            "app": (
                AccessRule(("/a/**",), Access.DENY, ("POST", "put")),
                AccessRule(("/b",), Access.BYPASS),
                AccessRule(("/c",), Access.ONE_FACTOR, ("GET", "POST")),
            )
        }
    )
    assert policy.any_method("app") == ("POST", "PUT", "GET", OTHER_METHOD)
    assert policy.any_method("other") == (OTHER_METHOD,)


def test_leading_segments() -> None:
    assert PathPattern("/api/v1/**").leading_segments() == ("api", "v1")
    assert PathPattern("/api/v1/x*").leading_segments() == ("api", "v1")
    assert PathPattern("/a/**/b").leading_segments() == ("a",)
    assert PathPattern("/**/x.php").leading_segments() == ()
    assert PathPattern("/x*").leading_segments() == ()
    assert PathPattern("/**").leading_segments() == ()
    assert PathPattern("/exact/path").leading_segments() is None


def test_the_cost_of_a_lookup_does_not_grow_with_the_rules() -> None:
    """10,000 rules, none for the path asked: a lookup tries only the few filed along it, so it
    takes about as long as with 10 (a scan took a thousand times longer)."""

    def many(count: int) -> tuple[AccessRule, ...]:
        return tuple(
            AccessRule((f"/api/r{n}/**", f"/static/s{n}/*.js"), Access.ONE_FACTOR, ("POST",))
            for n in range(count)
        )

    def lookup_seconds(index: RuleIndex) -> float:
        started = time.perf_counter()
        for _ in range(2000):
            index.first_match("GET", "/small.html")
            index.first_match("POST", "/api/r5/x")
        return time.perf_counter() - started

    small, large = RuleIndex(many(10)), RuleIndex(many(10_000))
    assert large.first_match("POST", "/api/r5/x")[1] is not None
    ratios = sorted(lookup_seconds(large) / lookup_seconds(small) for _ in range(5))
    assert ratios[2] < 3, ratios  # the median; a scan of 10,000 would be ~1000x
