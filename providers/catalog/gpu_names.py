"""GPU names as users write them: the catalog's (``H100``), SkyPilot's (``A100-80GB``), the clouds' own
(GCE accelerator types ``nvidia-tesla-a100``, ``nvidia-a100-80gb``, ``nvidia-h100-mega-80gb``), with or
without a memory size. Each resolves to a catalog GPU model and, when the name carries one, the minimum
memory per GPU in GiB (cloud "80GB" is the catalog's 80 GiB figure: the same number the clouds print).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# GCE accelerator types whose names do not carry the model plainly
_CLOUD_NAMES = {"NVIDIA-TESLA-A100": ("A100", 40.0)}
_SIZE = re.compile(r"(?P<base>.+?)-(?P<gb>\d+(?:\.\d+)?)\s*GI?B")
_VARIANTS = ("-MEGA", "-SXM", "-PCIE", "-NVL", "-SXM4", "-SXM5")   # same GPU model, another package/machine


def resolve(name: str, known: Iterable[str]) -> tuple[str, float | None] | None:
    """(catalog model, minimum GiB per GPU or None) for ``name``, or None when it names no known model.
    ``known``: the catalog's models."""
    models = {m.upper(): m for m in known}
    n = name.strip().upper().replace("_", "-").replace(" ", "-")
    if n in _CLOUD_NAMES:
        return _CLOUD_NAMES[n]
    n = n.removeprefix("NVIDIA-").removeprefix("TESLA-").removeprefix("AMD-").removeprefix("INSTINCT-")
    memory: float | None = None
    m = _SIZE.fullmatch(n)
    if m:
        n, memory = m.group("base"), float(m.group("gb"))
    for v in _VARIANTS:
        n = n.removesuffix(v)
    if n in models:
        return models[n], memory
    return None


def parse_memory(v: object) -> float:
    """``80``, ``"80"``, ``"80GB"``, ``"80GiB"`` -> 80.0 (GiB per GPU)."""
    if isinstance(v, bool):
        raise ValueError("gpus.memory: a size such as 80GB")
    if isinstance(v, int | float):
        out = float(v)
    elif isinstance(v, str) and (m := re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:GI?B)?\s*", v.upper())):
        out = float(m.group(1))
    else:
        raise ValueError(f"not a memory size: {v!r} (write e.g. 80GB)")
    if not 0 < out <= 4096:
        raise ValueError(f"memory {out:g} GiB per GPU is out of range")
    return out
