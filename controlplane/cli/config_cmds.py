"""`awan config`: contexts of the client config (several servers, as in a kubeconfig)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from controlplane.cli.client import ClientConfig, client_config_path
from controlplane.cli.output import fail, print_columns

config_app = typer.Typer(help="Client contexts: which Awan server and token the CLI uses.", no_args_is_help=True)


@config_app.command("get-contexts")
def get_contexts() -> None:
    """List the contexts; '*' marks the current one.

    \b
    Examples:
      awan config get-contexts
    """
    cfg = ClientConfig.load()
    print_columns(["CURRENT", "NAME", "SERVER"],
                  [["*" if n == cfg.current else "", n, c.get("server", "")] for n, c in sorted(cfg.contexts.items())])


@config_app.command("current-context")
def current_context() -> None:
    """Print the current context's name.

    \b
    Examples:
      awan config current-context
    """
    cfg = ClientConfig.load()
    if not cfg.current:
        fail(f"no current context in {client_config_path()}")
    sys.stdout.write(cfg.current + "\n")


@config_app.command("use-context")
def use_context(name: Annotated[str, typer.Argument(help="a context from `awan config get-contexts`")]) -> None:
    """Make NAME the current context.

    \b
    Examples:
      awan config use-context prod
    """
    cfg = ClientConfig.load()
    if name not in cfg.contexts:
        fail(f"context {name!r} is not in {client_config_path()} (known: {', '.join(sorted(cfg.contexts)) or 'none'})")
    cfg.current = name
    cfg.save()
    sys.stdout.write(f"switched to context {name!r}\n")


@config_app.command("set-context")
def set_context(
    name: Annotated[str, typer.Argument(help="context name")],
    server: Annotated[str | None, typer.Option("--server", help="the API URL, e.g. https://awan.example.com")] = None,
    token: Annotated[str | None, typer.Option("--token", help="an API token (`awan token create`)")] = None,
    use: Annotated[bool, typer.Option("--use", help="also make it the current context")] = False,
) -> None:
    """Add or change a context (the file is written with mode 0600: it holds tokens).

    \b
    Examples:
      awan config set-context prod --server https://awan.example.com --token awan_... --use
    """
    cfg = ClientConfig.load()
    ctx = dict(cfg.contexts.get(name, {}))
    if server:
        if not server.startswith(("http://", "https://")):
            fail(f"--server: {server!r} must start with http:// or https://")
        ctx["server"] = server.rstrip("/")
    if token:
        ctx["token"] = token
    if "server" not in ctx:
        fail("--server: required for a new context")
    cfg.contexts[name] = ctx
    if use or cfg.current is None:
        cfg.current = name
    path = cfg.save()
    sys.stdout.write(f"context {name!r} written to {path}\n")


@config_app.command("delete-context")
def delete_context(name: Annotated[str, typer.Argument(help="context name")]) -> None:
    """Remove a context.

    \b
    Examples:
      awan config delete-context old-lab
    """
    cfg = ClientConfig.load()
    if cfg.contexts.pop(name, None) is None:
        fail(f"context {name!r} is not in {client_config_path()}")
    if cfg.current == name:
        cfg.current = None
    cfg.save()
    sys.stdout.write(f"deleted context {name!r}\n")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
