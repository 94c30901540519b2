"""Start the AWS mock: moto's server app (EC2 and the rest) wrapped in ``moto_plus``, on a loopback port."""

from __future__ import annotations

import os

from mockclouds.aws.backend import AwsMockBackend
from mockclouds.aws.middleware import MotoPlus
from mockclouds.serving import RunningServer, serve_in_thread
from providers.catalog import Catalog, default_catalog


def build_app(catalog: Catalog | None = None) -> MotoPlus:
    # Must be set before moto reads its settings: unknown instance types are refused, as EC2 does.
    os.environ.setdefault("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
    from moto import settings
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from mockclouds.aws.moto_patch import apply_catalog

    settings.EC2_ENABLE_INSTANCE_TYPE_VALIDATION = True
    cat = catalog or default_catalog()
    apply_catalog(cat)
    return MotoPlus(DomainDispatcherApplication(create_backend_app), AwsMockBackend(cat))


def start(host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    from mockclouds.kubernetes.regional import mount

    app = build_app()
    wsgi = mount("aws", app, app.backend, app.backend.catalog, app.backend.faults)   # + /_k8s/<region>/
    return serve_in_thread("aws", wsgi, app.backend, host, port)
