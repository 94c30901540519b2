"""``awan purchase approve|reject ID`` and the rows of ``awan get purchases``: Capacity Blocks the loop
proposed for waiting demand under the PurchasingPolicy (cluster-admin). Approving does not buy at once: the
controller's next pass buys it, idempotently."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer

from controlplane.cli.client import request
from controlplane.cli.output import print_json

purchase_app = typer.Typer(help="Capacity Block purchases proposed on policy (cluster-admin).\n\n"
                                "\b\nExamples:\n  awan get purchases\n  awan purchase approve pur-0123abcd\n"
                                "  awan purchase reject pur-0123abcd --note 'not this quarter'",
                           no_args_is_help=True)
NoteOpt = Annotated[str, typer.Option("--note", help="why (kept in the audit record)")]


def fetch(names: list[str]) -> list[dict[str, Any]]:
    if names:
        return [request("GET", f"/v1/purchases/{quote(n, safe='')}") for n in names]
    return list(request("GET", "/v1/purchases")["items"])


def rows(items: list[dict[str, Any]], wide: bool) -> tuple[list[str], list[list[object]]]:
    head = ["ID", "STATE", "WHAT", "WHERE", "STARTS", "HOURS", "PRICE", "$/GPU-H", "FOR"]
    if wide:
        head += ["MESSAGE", "REASON"]
    out: list[list[object]] = []
    for p in items:
        what = (f"{p['ultraserverCount']}x {p['ultraserverType']}" if p.get("ultraserverType")
                else f"{p['instanceCount']}x {p['instanceType']}")
        r: list[object] = [p["id"], p["state"], what, f"{p['provider']}/{p['zone'] or p['region']}",
                           str(p["startsAt"])[:16], p["hours"], f"{p['price']:,.2f}", f"{p['pricePerGpuHour']:.2f}",
                           ",".join(p.get("workloads") or []) or "-"]
        if wide:
            r += [p.get("message") or "", p.get("reason") or ""]
        out.append(r)
    return head, out


def _decide(purchase_id: str, verb: str, note: str) -> None:
    out = request("POST", f"/v1/purchases/{quote(purchase_id, safe='')}/{verb}",
                  body=json.dumps({"note": note}).encode())
    typer.echo(f"purchase/{out['id']} {out['state']}: {out['message']}")


@purchase_app.command("approve")
def approve(purchase_id: Annotated[str, typer.Argument(metavar="ID")], note: NoteOpt = "") -> None:
    """Approve a proposed purchase; the controller buys it on its next pass.

    \b
    Examples:
      awan purchase approve pur-0123abcd
    """
    _decide(purchase_id, "approve", note)


@purchase_app.command("reject")
def reject(purchase_id: Annotated[str, typer.Argument(metavar="ID")], note: NoteOpt = "") -> None:
    """Reject a proposed purchase; its workloads are not proposed for again.

    \b
    Examples:
      awan purchase reject pur-0123abcd --note "wait for the contract"
    """
    _decide(purchase_id, "reject", note)


@purchase_app.command("get")
def get(purchase_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """One purchase as JSON (the list: ``awan get purchases``).

    \b
    Examples:
      awan purchase get pur-0123abcd
    """
    print_json(fetch([purchase_id])[0])


def register(app: typer.Typer) -> None:
    app.add_typer(purchase_app, name="purchase")
