"""Kubernetes resource quantities (``500m``, ``16Gi``, ``2``) as numbers, for the scheduler's fit check."""

from __future__ import annotations

import re

_SUFFIX = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}
_QUANTITY = re.compile(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?")


def parse_quantity(value: object) -> float:
    """The quantity as a float in base units; ValueError for what Kubernetes would refuse."""
    if isinstance(value, bool):
        raise ValueError(f"quantities must match the regular expression: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    m = _QUANTITY.fullmatch(str(value).strip())
    if m is None:
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {value!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2) or ""]
