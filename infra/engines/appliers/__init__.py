"""How the local engine applies a recorded Pulumi resource to a cloud, one module per provider.

Each module maps Pulumi type tokens to a ``Handler``; types not in the table are *virtual* (kept in
state only: the mocks have no VPCs, subnets, resource groups or CKS clusters to create).
"""

from __future__ import annotations

import importlib

from infra.engines.appliers.base import Handler

_MODULES = {"aws": "infra.engines.appliers.aws", "gcp": "infra.engines.appliers.gcp",
            "azure": "infra.engines.appliers.azure", "coreweave": "infra.engines.appliers.coreweave",
            "oci": "infra.engines.appliers.oci"}


def handlers_for(provider: str) -> dict[str, Handler]:
    handlers: dict[str, Handler] = importlib.import_module(_MODULES[provider]).HANDLERS
    return handlers
