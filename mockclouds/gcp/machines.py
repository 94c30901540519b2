"""The cloud's own names for what the catalog sells: machine types, accelerator types, quota metrics.

The fake keeps its own table (it plays Google); the adapter has its own, so a naming bug on
either side shows up in the integration tests instead of cancelling out.
"""

from __future__ import annotations

from dataclasses import dataclass

from providers.catalog import InstanceType

# gpu_model -> (accelerator type, on-demand quota metric). a3-megagpu has its own card name and quota.
_GPU = {
    "H100": ("nvidia-h100-80gb", "NVIDIA_H100_GPUS"),
    "H200": ("nvidia-h200-141gb", "NVIDIA_H200_GPUS"),
    "B200": ("nvidia-b200", "NVIDIA_B200_GPUS"),
    "L4": ("nvidia-l4", "NVIDIA_L4_GPUS"),
    "A100": ("nvidia-tesla-a100", "NVIDIA_A100_GPUS"),
}
_MEGA = ("nvidia-h100-mega-80gb", "NVIDIA_H100_MEGA_GPUS")
_A100_80 = ("nvidia-a100-80gb", "NVIDIA_A100_80GB_GPUS")      # a2-ultragpu: its own card and quota

# Regional limits a fresh project gets in the fake (GPUs, or vCPUs for CPUS). Generous enough for the
# seeded capacity of a few zones; tests lower them to provoke QUOTA_EXCEEDED.
DEFAULT_LIMITS = {
    "CPUS": 24_000.0,
    "NVIDIA_H100_GPUS": 256.0, "NVIDIA_H100_MEGA_GPUS": 256.0, "NVIDIA_H200_GPUS": 256.0,
    "NVIDIA_B200_GPUS": 256.0, "NVIDIA_L4_GPUS": 256.0, "NVIDIA_A100_GPUS": 256.0, "NVIDIA_A100_80GB_GPUS": 256.0,
    "PREEMPTIBLE_NVIDIA_A100_GPUS": 512.0, "PREEMPTIBLE_NVIDIA_A100_80GB_GPUS": 512.0,
    "PREEMPTIBLE_NVIDIA_H100_GPUS": 512.0, "PREEMPTIBLE_NVIDIA_H100_MEGA_GPUS": 512.0,
    "PREEMPTIBLE_NVIDIA_H200_GPUS": 512.0, "PREEMPTIBLE_NVIDIA_B200_GPUS": 512.0,
    "PREEMPTIBLE_NVIDIA_L4_GPUS": 512.0,
}


@dataclass(frozen=True, slots=True)
class MachineSpec:
    name: str
    accelerator: str      # guestAcceleratorType
    cards: int
    vcpus: int
    memory_mb: int
    quota_metric: str     # on-demand GPU metric; spot uses PREEMPTIBLE_ + this


def is_tpu(catalog_type: str) -> bool:
    return catalog_type.startswith("tpu-")


def tpu_api_type(catalog_type: str) -> str:
    """tpu-v5p-8 (catalog) -> v5p-8 (Cloud TPU acceleratorType)."""
    return catalog_type.removeprefix("tpu-")


def tpu_catalog_type(api_type: str) -> str:
    return "tpu-" + api_type


def machine_spec(it: InstanceType) -> MachineSpec:
    accel, metric = _MEGA if it.name.startswith("a3-mega") else _A100_80 if it.name.startswith("a2-ultragpu") \
        else _GPU.get(it.gpu_model, ("", ""))
    if not accel:
        raise KeyError(f"no GCE accelerator for {it.name} ({it.gpu_model})")
    return MachineSpec(it.name, accel, it.gpus, it.vcpus, int(it.memory_gib * 1024), metric)


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]
