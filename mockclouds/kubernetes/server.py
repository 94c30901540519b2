"""Start the fake CoreWeave CKS apiserver: ``start(host, port) -> RunningServer`` (``.backend`` is a
CoreWeaveBackend, which implements mockclouds.control.MockBackend).

``start(..., tls=True)`` serves https with a fresh self-signed certificate (``.ca_pem``): kubectl sends a
kubeconfig's token only over TLS. ``backend=`` lets a second listener serve the same cluster.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from werkzeug.serving import make_server

from mockclouds.kubernetes.api import KubeApi
from mockclouds.kubernetes.backend import CoreWeaveBackend
from mockclouds.kubernetes.tls import self_signed
from mockclouds.serving import RunningServer, serve_in_thread


@dataclass
class TlsRunningServer(RunningServer):
    ca_pem: bytes = b""

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        assert isinstance(host, str)        # an AF_INET/AF_INET6 socket: getsockname() gives a str host
        return f"https://{host}:{port}"


def _token() -> str:
    # Imported late: the launcher imports this module, and the mock secrets live with the launcher.
    from mockclouds.launcher import MOCK_SECRETS

    return MOCK_SECRETS["coreweave"]["token"]


def start(host: str = "127.0.0.1", port: int = 0, *, default_zone: str | None = None, tls: bool = False,
          backend: CoreWeaveBackend | None = None) -> RunningServer:
    backend = backend or CoreWeaveBackend(default_zone=default_zone)
    token = _token()
    regions = sorted({backend.ledger.zones[z] for z in backend.ledger.zones})
    # One CKS endpoint spans every CoreWeave region here; it is listed once per region.
    clusters = [{"name": f"coreweave-{r}", "provider": "coreweave", "region": r, "server": "{server}",
                 "token": token} for r in regions]
    app = KubeApi(backend, token, control=backend, clusters=clusters, requests=backend.requests)
    if not tls:
        return serve_in_thread("coreweave", app, backend, host, port)
    cert = self_signed(host)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server(host, port, app, threaded=True, ssl_context=cert.server_context())
    thread = threading.Thread(target=server.serve_forever, name="mock-coreweave-tls", daemon=True)
    thread.start()
    return TlsRunningServer("coreweave", server, thread, backend, cert.cert_pem)
