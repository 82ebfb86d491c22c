"""Company policy: the model, the loader that validates policy files, and the holder in force."""

from gateway.policy.holder import PolicyHolder
from gateway.policy.loader import check_policy_dir, load_policy_dir
from gateway.policy.model import METHODS, Access, AccessRule, AccountType, Company, Policy

__all__ = [
    "METHODS",
    "Access",
    "AccessRule",
    "AccountType",
    "Company",
    "Policy",
    "PolicyHolder",
    "check_policy_dir",
    "load_policy_dir",
]
