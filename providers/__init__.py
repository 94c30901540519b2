"""The common Provider interface, the GPU catalog, and one adapter per cloud (aws, gcp, azure, coreweave)."""
