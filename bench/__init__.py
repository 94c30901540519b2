"""Benchmarks. ``python -m bench`` runs every suite under ``bench/<suite>/run.py`` (see bench/__main__.py)."""
