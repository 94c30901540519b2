"""`awan mockclouds up`: the five mock clouds on loopback, with a configuration file pointing at them."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from controlplane.cli.output import console, fail

mock_app = typer.Typer(help="Local stand-ins for the five clouds (testing and demos).", no_args_is_help=True)


@mock_app.command("up")
def up(
    host: Annotated[str, typer.Option(help="bind address (loopback unless told otherwise)")] = "127.0.0.1",
    port_base: Annotated[int, typer.Option(help="aws on PORT, gcp +1, azure +2, coreweave +3, oci +4; 0 picks free ports")]
    = 0,
    write_config: Annotated[str, typer.Option(help="write the provider configuration here")] = "awan.yaml",
) -> None:
    """Start AWS (moto + capacity layer), GCE/TPU, ARM and Kubernetes (CoreWeave) fakes until Ctrl-C.

    It writes ./awan.yaml pointing at them, so every other command (offerings, providers, plan, stack,
    serve) reuses these mock clouds instead of starting its own; the file is removed again on Ctrl-C.

    \b
    Examples:
      awan mockclouds up                       # in one terminal
      awan offerings --gpu H100                # in another: reads ./awan.yaml
      awan mockclouds up --port-base 7000 --write-config /tmp/mock.yaml
    """
    from mockclouds.launcher import CLOUDS, MockClouds

    ports = {c: port_base + i for i, c in enumerate(CLOUDS)} if port_base else None
    try:
        mc = MockClouds(host=host, ports=ports).start()
    except OSError as e:
        fail(f"cannot start mock clouds on {host}: {e}")
    path = mc.write_config(write_config)
    written = path.read_bytes()
    for name, url in mc.urls.items():
        console.print(f"  {name:<10} {url}", highlight=False, soft_wrap=True)
    console.print(f"configuration written to {path}: commands run here use these mock clouds. "
                  "Fault API: POST <url>/_mock/faults. Ctrl-C stops.", highlight=False, soft_wrap=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping the mock clouds...", highlight=False)
        mc.stop()
        # A configuration that points at stopped mocks would only give "unreachable" errors later.
        if path.exists() and path.read_bytes() == written:
            path.unlink()
            console.print(f"removed {path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(mock_app, name="mockclouds")
