"""Local stand-ins for the five clouds' APIs (AWS, GCP, Azure, CoreWeave, OCI): finite capacity, the clouds' own errors, fault injection."""
