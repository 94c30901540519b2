"""Labels every GPU node carries in a stack's Kubernetes cluster, whatever the provider: what dispatch
selects pods onto (``nodeSelector``/affinity) and what the mock clusters put on the Nodes they register.

Well-known Kubernetes labels are used where they exist (region, zone, instance type); the rest are
Awan's, under ``awan.dev/``. GPUs are the ``nvidia.com/gpu`` extended resource (TPU chips
``google.com/tpu``).
"""

from __future__ import annotations

PROVIDER = "awan.dev/provider"               # aws | gcp | azure | coreweave
REGION = "topology.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
CAPACITY_TYPE = "awan.dev/capacity-type"     # on-demand | spot | reserved
POOL = "awan.dev/pool"                       # the Awan pool (awan:pool tag / awan-pool label of the machine)
WORKLOAD = "awan.dev/workload"
NVLINK_DOMAIN = "awan.dev/nvlink-domain"     # one NVLink/NVL72 domain (rack); only on multi-node domains
ULTRASERVER = "awan.dev/ultraserver-id"      # the AWS UltraServer the node belongs to (p6e-gb200)
GPU_PRODUCT = "nvidia.com/gpu.product"
GPU_RESOURCE = "nvidia.com/gpu"
TPU_RESOURCE = "google.com/tpu"
