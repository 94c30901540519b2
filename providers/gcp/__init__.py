"""Google Cloud adapter: Compute Engine (google-cloud-compute) for GPU VMs, Cloud TPU (google-cloud-tpu) for TPU
slices. SDKs are imported lazily (compute_v1 alone costs about a second)."""
