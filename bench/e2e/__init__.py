"""End to end: submit -> placement -> provisioning -> dispatch -> all pods Running, through the real
Controller against the mock clouds (``python -m bench --suite e2e``)."""
