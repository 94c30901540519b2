"""GCP's names for what the catalog sells, and the names and labels Awan gives what it creates.

GCE names must match ``[a-z]([-a-z0-9]{0,61}[a-z0-9])?``; label keys and values are lowercase letters,
digits, ``-`` and ``_`` (keys cannot hold ``:``, hence providers.model's LABEL_* constants).
"""

from __future__ import annotations

import hashlib
import re
import uuid

from providers.model import (
    LABEL_OWNER,
    LABEL_POOL,
    LABEL_STACK,
    LABEL_WORKLOAD,
    TAG_POOL,
    TAG_STACK,
    TAG_WORKLOAD,
)

OWNER = "awan"
# GPU quota metric per catalog gpu model; a3-megagpu has a metric of its own. Spot uses PREEMPTIBLE_<metric>.
_GPU_METRIC = {"H100": "NVIDIA_H100_GPUS", "H200": "NVIDIA_H200_GPUS", "B200": "NVIDIA_B200_GPUS",
               "L4": "NVIDIA_L4_GPUS", "A100": "NVIDIA_A100_GPUS"}
_MEGA_METRIC = "NVIDIA_H100_MEGA_GPUS"
_A100_80_METRIC = "NVIDIA_A100_80GB_GPUS"     # a2-ultragpu (A100 80GB) is metered apart from a2-highgpu
# requestId must be a UUID; v5 over a fixed namespace makes it a pure function of (key, index).
_REQUEST_NS = uuid.UUID("5b1c6f0e-8d1e-4c7a-9a51-6177616e0001")
_BAD_NAME = re.compile(r"[^a-z0-9-]+")
_BAD_LABEL = re.compile(r"[^a-z0-9_-]+")
# Awan's own tags map onto the fixed label keys; anything else is sanitised.
_TAG_LABELS = {TAG_POOL: LABEL_POOL, TAG_WORKLOAD: LABEL_WORKLOAD, TAG_STACK: LABEL_STACK}


def is_tpu(instance_type: str) -> bool:
    return instance_type.startswith("tpu-")


def tpu_accelerator(instance_type: str) -> str:
    """tpu-v5p-8 (catalog) -> v5p-8 (Cloud TPU acceleratorType)."""
    return instance_type.removeprefix("tpu-")


def tpu_instance_type(accelerator_type: str) -> str:
    return "tpu-" + accelerator_type.rsplit("/", 1)[-1]


def quota_metric(instance_type: str, gpu_model: str, spot: bool) -> str | None:
    base = _MEGA_METRIC if instance_type.startswith("a3-mega") else _A100_80_METRIC \
        if instance_type.startswith("a2-ultragpu") else _GPU_METRIC.get(gpu_model)
    if base is None:
        return None
    return "PREEMPTIBLE_" + base if spot else base


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def last_segment(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def resource_name(pool: str, index: int, idempotency_key: str = "") -> str:
    """The name of node ``index`` of one create request: f"{pool}-{key hash}-{index}" made a valid GCE/TPU
    name (lowercase, <= 63 characters, starts with a letter).

    The key's hash is in the name because a pool is filled by many requests (the local engine asks for
    one node at a time, and a replacement node comes with a new key): with f"{pool}-{index}" alone, every
    count=1 request of a pool would be named "<pool>-0" and collide with the node already there. The same
    key always gives the same names, so a repeated request finds its nodes (ALREADY_EXISTS) instead of
    making more. A pool name that had to be changed or shortened gets a hash of its own, so two different
    pools never share names. Without a key (queued-resource node ids) the name is f"{pool}-{index}".
    """
    suffix = f"-{_digest(idempotency_key, 8)}-{index}" if idempotency_key else f"-{index}"
    clean = _BAD_NAME.sub("-", pool.lower()).strip("-") or "pool"
    if not clean[0].isalpha():
        clean = "p-" + clean
    if clean != pool or len(clean) + len(suffix) > 63:
        clean = f"{clean[:63 - len(suffix) - 7].rstrip('-')}-{_digest(pool, 6)}"
    return clean + suffix


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def request_id(idempotency_key: str, index: int) -> str:
    return str(uuid.uuid5(_REQUEST_NS, f"{idempotency_key}/{index}"))


def instance_request_id(idempotency_key: str, zone: str, index: int) -> str:
    """The requestId of VM ``index`` of a request in ``zone``. The zone is part of it: the same pool asked
    for again in another zone (after a stock-out) is a new request, and GCE would otherwise answer it with
    the first zone's operation."""
    return request_id(f"{idempotency_key}/{zone}", index)


def label_value(value: str) -> str:
    return _BAD_LABEL.sub("-", value.lower())[:63]


def label_key(tag: str) -> str:
    if tag in _TAG_LABELS:
        return _TAG_LABELS[tag]
    key = _BAD_LABEL.sub("-", tag.lower()).strip("-_")[:63]
    return key if key[:1].isalpha() else f"t-{key}"[:63]


def labels_for(pool: str, workload: str, tags: dict[str, str]) -> dict[str, str]:
    labels = {label_key(k): label_value(v) for k, v in tags.items()}
    labels.update({LABEL_OWNER: OWNER, LABEL_POOL: label_value(pool), LABEL_WORKLOAD: label_value(workload)})
    return labels


OWNER_FILTER = f'labels.{LABEL_OWNER} = "{OWNER}"'
