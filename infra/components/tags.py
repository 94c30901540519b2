"""The owner/pool/workload/stack tags every Awan resource carries; adapters find what we own by them."""

from __future__ import annotations

import re

from infra.spec import NodePoolSpec
from providers.model import (
    LABEL_OWNER,
    LABEL_POOL,
    LABEL_STACK,
    LABEL_WORKLOAD,
    TAG_OWNER,
    TAG_POOL,
    TAG_STACK,
    TAG_WORKLOAD,
)

OWNER = "awan"
TAG_TEAM, LABEL_TEAM = "awan:team", "awan-team"


def aws_tags(stack: str, pool: NodePoolSpec | None = None) -> dict[str, str]:
    """AWS and Azure tags (``:`` allowed in keys)."""
    tags = {TAG_OWNER: OWNER, TAG_STACK: stack}
    if pool is not None:
        tags.update({TAG_POOL: pool.pool, TAG_WORKLOAD: pool.workload, TAG_TEAM: pool.team})
    return tags


_LABEL_VALUE = re.compile(r"[^a-z0-9_-]")


def label_value(v: str) -> str:
    """GCP label values: lowercase letters, digits, '_' and '-', at most 63 characters."""
    return _LABEL_VALUE.sub("-", v.lower())[:63]


def labels(stack: str, pool: NodePoolSpec | None = None) -> dict[str, str]:
    """GCP labels and Kubernetes label keys cannot hold ':'; same meaning, dashed keys."""
    out = {LABEL_OWNER: OWNER, LABEL_STACK: label_value(stack)}
    if pool is not None:
        out.update({LABEL_POOL: label_value(pool.pool), LABEL_WORKLOAD: label_value(pool.workload),
                    LABEL_TEAM: label_value(pool.team)})
    return out
