"""How much capacity a zone nominally has of one instance type: the one rule both the mock clouds
(their finite pools) and catalog-based planning (``awan plan --capacity catalog``, the bench) seed from.

Two whole NVLink racks for NVL72 types, 16 nodes of 8-GPU types, else 64 GPUs' worth. TPU slice types are
shapes cut from one pool of chips, not separate machines (a zone offers six or seven per generation), so a
slice type is seeded by chips, ``TPU_SEED_CHIPS`` worth, at least one slice; seeding each like a GPU type
made TPU chips ~80% of a catalog fleet, where real fleets are mostly GPUs.
"""

from __future__ import annotations

from providers.catalog.model import InstanceType

TPU_SEED_CHIPS = 64


def is_tpu(it: InstanceType) -> bool:
    return it.gpu_model.startswith("TPU-")


def nominal_free_nodes(it: InstanceType) -> int:
    if is_tpu(it):
        return max(1, TPU_SEED_CHIPS // it.gpus)
    if it.nodes_per_domain > 1:
        return 2 * it.nodes_per_domain
    if it.gpus >= 8:
        return 16
    return max(4, 64 // max(1, it.gpus))
