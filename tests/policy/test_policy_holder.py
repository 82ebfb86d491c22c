"""The policy holder: one current policy, swapped whole, with a generation count."""

from gateway.policy import AccountType, Company, Policy, PolicyHolder


def test_holder_starts_empty_and_counts_replacements() -> None:
    """replace() swaps the policy and bumps the generation; readers see one or the other."""
    holder = PolicyHolder()
    assert holder.current is Policy.EMPTY
    assert holder.generation == 0
    company = Company("acme", "Acme", "acme.yaml", ("acme.example",), (), AccountType.PARTNER, ())
    new = Policy(companies=(company,), access_rules={})
    before = holder.current
    holder.replace(new)
    assert holder.current is new
    assert holder.generation == 1
    assert before.company_for("a@acme.example") is None  # a reader's copy is not changed
    holder.replace(Policy.EMPTY)
    assert holder.generation == 2


def test_holder_can_start_with_a_policy() -> None:
    """The first policy can be given at construction."""
    policy = Policy()
    assert PolicyHolder(policy).current is policy
