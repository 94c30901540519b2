"""Azure adapter: Microsoft.Compute through azure-mgmt-compute."""
