"""The `awan` command. Each sub-module registers its commands with ``register(app)``.

Every command module imports only typer and the standard library at the top; clouds, placement, the store
and the SDKs load inside the command that needs them, so `awan --help` and `awan get` stay fast."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from controlplane.cli import (
    catalog_cmds,
    config_cmds,
    demo_cmds,
    logs_cmds,
    mockclouds_cmds,
    plan_cmds,
    policy_cmds,
    purchase_cmds,
    resource_cmds,
    service_cmds,
    simulate_cmds,
    stack_cmds,
    token_cmds,
)
from controlplane.cli.client import OPTIONS

HELP = """Place GPU workloads across clouds by policy; provision them through Pulumi.

\b
Start here:
  make run                                  # mock clouds + service + examples; writes the client context
  awan get workloads                        # what runs where
  awan describe workload NAME               # why it runs there
  awan apply -f examples/finetune-eu.yaml --wait
  awan offerings --gpu H100                 # needs clouds: `awan mockclouds up` or --config awan.yaml
"""

app = typer.Typer(name="awan", help=HELP, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"],
                                                           "max_content_width": 110})


def _version(value: bool) -> None:
    if value:
        from controlplane import __version__

        sys.stdout.write(f"awan {__version__}\n")
        raise typer.Exit()


@app.callback()
def main_options(
    context: Annotated[str | None, typer.Option("--context", envvar="AWAN_CONTEXT", show_envvar=True,
                                                help="client context to use (`awan config get-contexts`)")] = None,
    server: Annotated[str | None, typer.Option("--server", envvar="AWAN_URL", show_envvar=True,
                                               help="API URL, overrides the context's")] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="AWAN_TOKEN", show_envvar=True,
                                              help="API token, overrides the context's")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    OPTIONS.context, OPTIONS.server, OPTIONS.token = context, server, token


for _mod in (resource_cmds, token_cmds, config_cmds, catalog_cmds, plan_cmds, stack_cmds, service_cmds,
             mockclouds_cmds, demo_cmds, logs_cmds, simulate_cmds, policy_cmds, purchase_cmds):
    _mod.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
