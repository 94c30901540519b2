"""The workload manifest: what users ask for (GPUWorkload) and how it is read and validated."""

from controlplane.model.manifest import ManifestError, parse_manifests
from controlplane.model.workload import (
    API_VERSION,
    GPUs,
    GPUWorkload,
    Location,
    Metadata,
    Spec,
    Topology,
    TopologyDomain,
    WorkloadKind,
)

__all__ = ["API_VERSION", "GPUWorkload", "GPUs", "Location", "ManifestError", "Metadata", "Spec", "Topology",
           "TopologyDomain", "WorkloadKind", "parse_manifests"]
