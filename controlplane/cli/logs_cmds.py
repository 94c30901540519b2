"""`awan logs workload NAME [--follow] [--rank K]`: what a run printed, as `kubectl logs` shows a pod's."""

from __future__ import annotations

import sys
from typing import Annotated
from urllib.parse import quote, urlencode

import typer

from controlplane.cli.client import request, target
from controlplane.cli.output import fail


def logs(
    resource: Annotated[str, typer.Argument(help="workload")],
    name: Annotated[str, typer.Argument(help="the workload's name")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="stream the log of one rank as it grows")] = False,
    rank: Annotated[int | None, typer.Option("--rank", min=0, help="only this rank (pod index); "
                                                                  "with --follow, default 0")] = None,
    tail: Annotated[int | None, typer.Option("--tail", min=1, help="the last N lines of each pod")] = None,
    team: Annotated[str | None, typer.Option("--team", help="the workload's team (admins)")] = None,
) -> None:
    """Print what a workload's pods printed, rank by rank: live while they run, else the tail kept
    when the run finished.

    \b
    Examples:
      awan logs workload llama-ft-gang
      awan logs workload llama-ft-gang --rank 0 --follow
    """
    if resource not in ("workload", "workloads", "wl"):
        fail(f"logs: only workloads have logs, not {resource!r}")
    q = {k: v for k, v in (("rank", rank), ("tail", tail), ("team", team)) if v is not None}
    path = f"/v1/workloads/{quote(name, safe='')}/logs"
    if follow:
        _follow(path + "?" + urlencode({**q, "follow": "true"}))
        return
    res = request("GET", path + ("?" + urlencode(q) if q else ""))
    items = res.get("items") or []
    if not items:
        sys.stderr.write(f"workload/{name}: no logs yet ({res.get('state')})\n")
        return
    several = len(items) > 1
    for it in items:
        text = it["text"]
        if several:
            prefix = f"[rank {it['rank']}] "
            text = "".join(prefix + line for line in text.splitlines(keepends=True))
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


def _follow(path: str) -> None:
    import urllib.error
    import urllib.request

    t = target()
    req = urllib.request.Request(t.server + path, headers={"Authorization": f"Bearer {t.token}"})
    try:
        with urllib.request.urlopen(req, timeout=3600) as r:
            while chunk := r.read1(4096):
                sys.stdout.write(chunk.decode("utf-8", "replace"))
                sys.stdout.flush()
    except urllib.error.HTTPError as e:
        import json

        try:
            detail = json.loads(e.read()).get("detail", "")
        except ValueError:
            detail = ""
        fail(f"HTTP {e.code}: {detail}")
    except (urllib.error.URLError, OSError) as e:
        fail(f"cannot reach the Awan API at {t.server}: {getattr(e, 'reason', e)}")
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)
