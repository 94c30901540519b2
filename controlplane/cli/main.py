"""The `awan` command. Each sub-module registers its commands with ``register(app)``."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(name="awan", help="Place GPU workloads across clouds by policy; provision them through Pulumi.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)

_COMMAND_MODULES = (
    "controlplane.cli.catalog_cmds",     # offerings, providers
    "controlplane.cli.mockclouds_cmds",  # mockclouds up
    "controlplane.cli.plan_cmds",        # plan
    "controlplane.cli.stack_cmds",       # stack list|preview|up|destroy|refresh, deploy
    "controlplane.cli.service_cmds",     # serve, submit, get, describe, delete
    "controlplane.cli.demo_cmds",        # demo (make run)
)

for _name in _COMMAND_MODULES:
    try:
        _mod = importlib.import_module(_name)
    except ModuleNotFoundError as _e:   # TODO(integration): drop once every module exists
        if _e.name != _name:
            raise
        continue
    _mod.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
