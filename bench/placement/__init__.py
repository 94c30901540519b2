"""The placement benchmark: a 500,000-GPU fleet, a 100,000-workload stream, the LP bound, SkyPilot as a peer."""
