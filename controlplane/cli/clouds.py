"""Which clouds a command talks to. A command that needs clouds and has no configuration does not start
five mock clouds behind the user's back (about a minute each time): it says how to get clouds, once."""

from __future__ import annotations

from typing import Annotated

import typer

from controlplane.cli.output import fail

ConfigOpt = Annotated[str | None, typer.Option(
    "--config", "-c", envvar="AWAN_CONFIG", show_envvar=True,
    help="awan.yaml naming the clouds (default ./awan.yaml, which `awan mockclouds up` writes)")]
MockOpt = Annotated[bool, typer.Option(
    "--mock", help="start embedded mock clouds for this command only (slow: `awan mockclouds up` keeps "
    "them running for every command)")]

HINT = ("no clouds configured: start the mock clouds once with `awan mockclouds up` (in another terminal; "
        "it writes ./awan.yaml, which every command then uses), pass --config FILE (or AWAN_CONFIG) for "
        "real clouds, or --mock to start throw-away mock clouds for this command")


def require_clouds(config: str | None, mock: bool) -> str | None:
    """The configuration to open (None: embedded mock clouds, only when --mock asked for them)."""
    from controlplane.environment import config_path

    path = config_path(config)
    if path is None and not mock:
        fail(HINT)
    return str(path) if path is not None else None
