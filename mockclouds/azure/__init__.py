"""Fake Azure Resource Manager (Microsoft.Compute) for mockclouds."""
