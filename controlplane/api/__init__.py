"""The HTTP API: routers -> services -> store. ``create_app(settings)`` builds it."""

from controlplane.api.app import create_app

__all__ = ["create_app"]
