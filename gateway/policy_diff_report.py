"""The report of a policy diff (gateway.policy_diff): text for people, and JSON."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.policy_diff import KIND_TEXT, Kind, UserDiff, kinds


def text_lines(diffs: Sequence[UserDiff], seen: int, header: str) -> list[str]:
    """The report for people: one block per user affected, then the counts."""
    lines = [header, f"{seen} user(s) seen signing in; {len(diffs)} affected by the change"]
    for user_diff in diffs:
        user = user_diff.user
        before, after = user_diff.company_before, user_diff.company_after
        company = (
            _or_none(before) if before == after else f"{_or_none(before)} -> {_or_none(after)}"
        )
        where = f"last second factor from {user.address}" if user.address else "address not known"
        lines.append("")
        lines.append(f"{user.user} (company {company}; {where})")
        for change in user_diff.changes:
            places = ", ".join(str(place) for place in change.places)
            lines.append(f"  {change.app}: {change.before} -> {change.after} on {places}")
            lines.extend(f"      {reason}" for reason in change.reasons)
        if not user_diff.changes:
            lines.append("  no path is answered otherwise")
    counts = kinds(diffs)
    lines.append("")
    lines.append("; ".join(f"{KIND_TEXT[kind]}: {counts[kind]} user(s)" for kind in Kind))
    return lines


def _or_none(company: str | None) -> str:
    return company if company is not None else "(none)"


def as_json(diffs: Sequence[UserDiff], seen: int) -> dict[str, object]:
    counts = kinds(diffs)
    return {
        "users_seen": seen,
        "users_affected": len(diffs),
        "kinds": {str(kind): counts[kind] for kind in Kind},
        "users": [
            {
                "user": d.user.user,
                "address": d.user.address,
                "last_sign_in": d.user.last_sign_in,
                "company_before": d.company_before,
                "company_after": d.company_after,
                "changes": [
                    {
                        "app": c.app,
                        "places": [
                            {"path": p.path, "pattern": p.pattern, "methods": list(p.methods)}
                            for p in c.places
                        ],
                        "from": c.before.outcome.value,
                        "to": c.after.outcome.value,
                        "may_defer_before": c.before.may_defer,
                        "may_defer_after": c.after.may_defer,
                        "kind": c.kind.value,
                        "reasons": list(c.reasons),
                    }
                    for c in d.changes
                ],
            }
            for d in diffs
        ],
    }
