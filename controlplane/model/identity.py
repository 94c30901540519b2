"""A workload's identity outside the store: the key its cloud resources are tagged with and the names of
its node pools.

Names are unique per team (as Kubernetes names are per namespace), so two teams may both run ``train``:
the cloud tag must hold the team too. Team and name are DNS-1123 labels (no ``_``), so ``team_name`` is
unambiguous, and it is a valid GCP label value and Kubernetes label value. When the two together exceed
63 characters the key is cut and ends in a hash of the whole, marked by a second ``_`` that no uncut key
can hold, so a cut key never equals another workload's key.
"""

from __future__ import annotations

import hashlib
import re

_MAX = 63
_POOL_MAX = 40    # room for what providers add around a pool name (awan-<pool>-n<nodes>, <pool>-<i>)


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def workload_key(team: str, name: str) -> str:
    """The cloud-facing identity of workload ``name`` of ``team``: at most 63 characters, unique."""
    key = f"{team}_{name}"
    if len(key) <= _MAX:
        return key
    return f"{key[:_MAX - 10].rstrip('-_')}_{_digest(key, 9)}"


def pool_name(name: str, index: int, identity: str = "") -> str:
    """DNS-1123 label for assignment ``index`` of a workload: its (shortened) name for people to read, a
    short hash of its whole identity (team, name and incarnation) so that no two workloads' pools can
    share a name, whatever their names look like, and the index."""
    suffix = f"-{_digest(identity or name, 6)}-{index}"
    base = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:_POOL_MAX - len(suffix)].rstrip("-") or "pool"
    return base + suffix
