"""Capacity over time (issue 10): waiting for capacity that starts later, contracts over their term, and the
what-if simulator. Everything here drives the one placement engine (controlplane.placement) with a clock."""
