"""The GPU catalog: instance types, regions and offerings of every provider Awan knows."""

from providers.catalog.load import Catalog, default_catalog, load_catalog
from providers.catalog.model import PROVIDERS, CapacityType, InstanceType, Offering, Region

__all__ = ["PROVIDERS", "CapacityType", "Catalog", "InstanceType", "Offering", "Region",
           "default_catalog", "load_catalog"]
