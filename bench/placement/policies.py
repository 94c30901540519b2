"""The policy set the benchmark runs with: residency, a provider cap and a CEL rule, on top of the defaults.

Built from the policy dataclasses directly (not YAML) so the benchmark states exactly what is in force;
the policy loader has its own tests.
"""

from __future__ import annotations

from controlplane.policy.cel_rules import compile_rule
from controlplane.policy.model import DataClassRule, PolicySet, ProviderShareCap

PROVIDER_SHARE = 0.6
# Spot capacity can be taken back at two minutes' notice: a training job may use it only if it says so by
# asking for spot alone (batch sweeps and inference may mix it in). A typical platform rule, written in CEL.
CEL_RULE = 'workload.kind != "training" || candidate.capacityType != "spot"'


def bench_policies() -> PolicySet:
    return PolicySet(
        data_classes=(DataClassRule(name="eu-personal", geo=("eu",), source="bench: GDPR residency"),),
        provider_share=ProviderShareCap(max_share=PROVIDER_SHARE, source="bench: no provider above 60%"),
        rules=(compile_rule("training-not-on-spot", CEL_RULE, "training jobs do not run on spot",
                            source="bench"),),
        sources=("bench/placement/policies.py",),
    )
