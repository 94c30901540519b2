"""Running workloads on their nodes: Kubernetes objects rendered from a workload, created in its clusters."""
