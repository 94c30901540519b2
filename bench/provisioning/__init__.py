"""The provisioning benchmark: converge 100 to 5,000 node pools on the four mock clouds with the local engine."""
