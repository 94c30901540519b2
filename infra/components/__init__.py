"""Pulumi ComponentResources, one per thing a user thinks of ("GPU node pool on AWS").

Each module imports its provider SDK at import time, so import the one you need, not this package's
siblings: ``from infra.components.aws import AwsGpuNodePool``.
"""
