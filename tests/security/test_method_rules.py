"""Access rules scoped by method (issue 15, item 2): a rule for GET covers HEAD, and the
method-override headers and `_method` parameter frameworks honour cannot move a request out of
a method's deny rule."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.method_override import overrides
from gateway.policy.model import Access, AccessRule, Policy
from tests.proxy.helpers import BYPASS_POLICIES, bypass_app

RULES = (
    "applications:\n  app:\n"
    "    - paths: ['/reports/**']\n      methods: [GET]\n      access: deny\n"
    "    - paths: ['/items/**']\n      methods: [DELETE, PUT]\n      access: deny\n"
    "    - paths: ['/**']\n      access: bypass\n"
)


@pytest.fixture
async def gateway(make_gateway: Any, upstream_url: str) -> Any:
    return await make_gateway(
        {"app": bypass_app(upstream_url)},
        {"example.yaml": BYPASS_POLICIES["example.yaml"], "applications.yaml": RULES},
    )


async def test_a_get_rule_covers_head(gateway: Any) -> None:
    assert (await gateway.get("/reports/q3")).status == 403
    assert (await gateway.head("/reports/q3")).status == 403
    assert (await gateway.head("/elsewhere")).status == 200


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/items/1", {"X-HTTP-Method-Override": "DELETE"}),
        ("/items/1", {"X-HTTP-Method": "put"}),
        ("/items/1", {"X-Method-Override": "Delete"}),
        ("/items/1?_method=DELETE", {}),
        ("/items/1?_METHOD=put", {}),
        ("/reports/q3", {"X-HTTP-Method-Override": "GET"}),
    ],
)
async def test_method_overrides_meet_the_method_rules(
    gateway: Any, target: str, headers: dict[str, str]
) -> None:
    """A POST that the application would take for a DELETE is denied like the DELETE."""
    answer = await gateway.post(target, headers=headers)
    assert answer.status == 403


def test_overrides_are_read_from_headers_and_query() -> None:
    assert overrides({"X-HTTP-Method-Override": "delete, put"}, "a=1&_method=patch") == (
        "DELETE",
        "PUT",
        "PATCH",
    )
    assert overrides({}, "") == ()


def test_the_strictest_method_wins_in_the_model() -> None:
    rule = AccessRule(("/x",), Access.DENY, ("DELETE",))
    policy = Policy(access_rules={"app": (rule,)})
    assert policy.access_for("app", "POST", "/x")[0] is Access.TWO_FACTOR
    assert policy.access_for("app", "POST", "/x", ("DELETE",))[0] is Access.DENY
