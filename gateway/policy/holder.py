"""The policy in force, swapped whole when a new one is loaded, so readers never see a mix."""

from __future__ import annotations

from gateway.policy.model import Policy


class PolicyHolder:
    """Readers take `.current` once per request and use that one object throughout."""

    __slots__ = ("_current", "_generation")

    def __init__(self, policy: Policy = Policy.EMPTY) -> None:
        self._current = policy
        self._generation = 0

    @property
    def current(self) -> Policy:
        return self._current

    @property
    def generation(self) -> int:
        """How many times the policy has been replaced since start."""
        return self._generation

    def replace(self, policy: Policy) -> None:
        # One reference assignment: a reader gets the old policy or the new one, never a mix.
        self._current = policy
        self._generation += 1
