"""Policies: documents, their merge order, CEL rules compiled once, caps, budgets and commitments."""

from controlplane.policy.cel_rules import MAX_EXPRESSION_CHARS, CelRule, compile_rule
from controlplane.policy.load import load_policies, merge, parse_policy_text, policy_files
from controlplane.policy.model import (
    AllowDeny,
    Commitment,
    DataClassRule,
    PolicyError,
    PolicySet,
    ProviderShareCap,
    TeamBudget,
    Weights,
)

__all__ = ["MAX_EXPRESSION_CHARS", "AllowDeny", "CelRule", "Commitment", "DataClassRule", "PolicyError",
           "PolicySet", "ProviderShareCap", "TeamBudget", "Weights", "compile_rule", "load_policies", "merge",
           "parse_policy_text", "policy_files"]
