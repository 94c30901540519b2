"""``awan policy apply -f FILE|DIR...`` and ``awan policy get``: the policy document every replica places
and admits by (placement policies and queue policies in one), stored through ``PUT /v1/policies``.

The stored document replaces the configured policy files as a whole, so ``apply`` takes every file that
should be in force (a directory contributes its ``*.yaml`` files in name order, as ``--policies`` does)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controlplane.cli.client import request
from controlplane.cli.output import fail, print_json

policy_app = typer.Typer(help="the policy document in force (placement and queues); cluster-admin.\n\n"
                         "\b\nExamples:\n  awan policy apply -f policies/ -f policies/examples/queues.yaml\n"
                         "  awan policy get", no_args_is_help=True)


def _files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            fail(f"{p}: no such policy file or directory")
    return out


@policy_app.command("apply")
def apply(files: Annotated[list[Path], typer.Option("--filename", "-f", help="policy file or directory; "
                                                     "repeatable; everything that should be in force")]) -> None:
    """Validate and store the policy document (all or nothing: a bad document names the field and
    changes nothing).

    \b
    Examples:
      awan policy apply -f policies/ -f policies/examples/queues.yaml
    """
    chosen = _files(files)
    if not chosen:
        fail("no policy files given (-f FILE or DIR)")
    text = "\n---\n".join(f.read_text() for f in chosen)
    out = request("PUT", "/v1/policies", body=text.encode(), content_type="application/yaml")
    typer.echo(f"policies applied ({len(chosen)} files, {len(out.get('sources', []))} placement documents)")


@policy_app.command("get")
def get() -> None:
    """Print the policy document stored in force (YAML); with none stored, the configured files' sources.

    \b
    Examples:
      awan policy get
    """
    out = request("GET", "/v1/policies")
    if out.get("document"):
        typer.echo(out["document"])
    else:
        print_json(out)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
