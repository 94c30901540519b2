"""The API client commands, with kubectl's habits: ``get``, ``describe``, ``apply -f``, ``delete``
(by name or ``-f``), ``wait``, ``-o table|wide|json|yaml|name``, ``--watch`` and ``--wait[=STATE]``.

Only light modules at import time (typer and the standard library): these are the commands people run
most, and they must start fast."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from typer.core import TyperCommand

from controlplane.cli import purchase_cmds
from controlplane.cli.client import ApiError, request, request_or_error
from controlplane.cli.output import GetFormat, fail, print_columns, print_json, print_yaml

STATES = ("Pending", "Placed", "Provisioning", "Starting", "Running", "Succeeded", "Failed", "Deleting", "Deleted")
_FORWARD = STATES[1:6]   # Placed .. Succeeded: the lifecycle a placed workload moves along
_WORKLOAD = ("workload", "workloads", "wl")
_KINDS = {**dict.fromkeys(_WORKLOAD, "workloads"), **dict.fromkeys(("stack", "stacks"), "stacks"),
          **dict.fromkeys(("event", "events", "ev"), "events"), **dict.fromkeys(("queue", "queues", "q"), "queues"),
          **dict.fromkeys(("purchase", "purchases"), "purchases")}

OutputOpt = Annotated[GetFormat, typer.Option("--output", "-o", help="table, wide, json, yaml or name")]
FileOpt = Annotated[list[Path], typer.Option("--filename", "-f", help="manifest file or directory, '-' for "
                                              "stdin; repeatable")]
WaitOpt = Annotated[str | None, typer.Option(
    "--wait", metavar="[=STATE]",
    help="wait until every workload is in STATE (--wait alone: Running); a Failed workload ends the wait "
         "with exit 1")]


class OptionalValueCommand(TyperCommand):
    """``--wait`` alone means ``--wait=Running`` (click's optional option values, which typer does not
    expose): the bare flag is rewritten before parsing; ``--wait=STATE`` passes as it is."""

    optional_values = {"--wait": "Running"}

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        out: list[str] = []
        for i, a in enumerate(args):
            if a == "--":
                out += args[i:]
                break
            out.append(f"{a}={self.optional_values[a]}" if a in self.optional_values else a)
        return super().parse_args(ctx, out)
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="seconds --wait/--watch/wait may take (0: no limit)")]


def _kind(resource: str) -> str:
    kind = _KINDS.get(resource.lower())
    if kind is None:
        fail(f"resource type {resource!r} is not one of: workloads (wl), stacks, events, queues (q), purchases")
    return kind


def age(iso: str | None) -> str:
    """kubectl's AGE: 45s, 12m, 5h, 3d."""
    if not iso:
        return "-"
    then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    s = max(0, int((datetime.now(UTC) - then).total_seconds()))
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{s // n}{unit}"
    return f"{s}s"


def where(w: dict[str, Any], wide: bool) -> str:
    if not w.get("assignments"):
        return "-"
    if wide:
        return ",".join(f"{a['provider']}/{a['zone']}:{a['instanceType']}x{a['nodes']}" for a in w["assignments"])
    return ",".join(sorted({f"{a['provider']}/{a['region']}" for a in w["assignments"]}))


def _workload_rows(items: list[dict[str, Any]], wide: bool) -> tuple[list[str], list[list[object]]]:
    header = ["NAME", "TEAM", "STATE", "RESTARTS", "GPUS", "WHERE", "AGE"]
    if wide:
        header += ["PRIORITY", "$/H", "MESSAGE"]
    rows: list[list[object]] = []
    for w in items:
        # A reservation runs nothing: "-" rather than a restart count that could never move.
        restarts = "-" if w.get("capacityOnly") else w.get("restarts", 0)
        r: list[object] = [w["name"], w["team"], w["state"], restarts, w["gpus"], where(w, wide),
                           age(w.get("createdAt"))]
        if wide:
            price = sum(a["pricePerHour"] for a in w.get("assignments") or [])
            r += [w.get("priority", 0), f"{price:.2f}" if price else "-", w.get("message") or ""]
        rows.append(r)
    return header, rows


def _show(kind: str, items: list[dict[str, Any]], output: GetFormat, single: bool) -> None:
    if output is GetFormat.json:
        print_json(items[0] if single else {"kind": "List", "items": items})
    elif output is GetFormat.yaml:
        print_yaml(items[0] if single else {"kind": "List", "items": items})
    elif output is GetFormat.name:
        key = "id" if kind in ("events", "purchases") else "name"
        sys.stdout.write("".join(f"{kind.rstrip('s')}/{i[key]}\n" for i in items))
    elif kind == "workloads":
        print_columns(*_workload_rows(items, output is GetFormat.wide))
    elif kind == "queues":
        print_columns(*_queue_rows(items, output is GetFormat.wide))
    elif kind == "purchases":
        print_columns(*purchase_cmds.rows(items, output is GetFormat.wide))
    elif kind == "stacks":
        print_columns(["NAME", "STATUS", "POOLS", "ATTEMPTS", "APPLIED", "MESSAGE"],
                      [[s["name"], s["status"], s["pools"], s["attempts"], age(s.get("appliedAt")),
                        s["message"] if output is GetFormat.wide else s["message"][:80]] for s in items])
    else:
        print_columns(["ID", "AGE", "ACTION", "KIND", "SUBJECT", "TEAM", "ACTOR"],
                      [[e["id"], age(e["at"]), e["action"], e["kind"], e["subject"], e.get("team") or "-",
                        e["actor"]] for e in items])


def _quota(f: dict[str, Any]) -> str:
    return f"{f['flavour']}={f['used']}/{f['nominal']}"


def _queue_rows(items: list[dict[str, Any]], wide: bool) -> tuple[list[str], list[list[object]]]:
    """One row per queue: use against nominal quota per flavour, borrowed GPUs, admitted and pending;
    with a named queue (-o wide) also a row per waiting workload (position, reason, estimated start)."""
    head = ["NAME", "COHORT", "WEIGHT", "USED/NOMINAL", "BORROWED", "ADMITTED", "PENDING"]
    rows: list[list[object]] = []
    for q in items:
        rows.append([q["name"], q.get("cohort") or "-", f"{q['weight']:g}",
                     ",".join(_quota(f) for f in q["flavours"]) or "-",
                     sum(f["borrowed"] for f in q["flavours"]), q["admitted"], q["pending"]])
        for w in (q.get("waiting") or []) if wide else []:
            start = w.get("estimatedStart") or "unknown"
            rows.append([f"  #{w.get('position') or '-'} {w['name']}", w["team"], w["priority"],
                         f"{w['gpus']} GPUs", w["reason"], f"start ~{start}", ""])
    return head, rows


TeamOpt = Annotated[str | None, typer.Option("--team", help="the workload's team: names are unique per "
                                           "team, so an admin names the team when several hold the name")]


def _team_query(team: str | None, sep: str = "?") -> str:
    return f"{sep}team={quote(team, safe='')}" if team else ""


def _fetch(kind: str, names: list[str], team: str | None = None) -> list[dict[str, Any]]:
    if kind == "workloads":
        if names:
            return [request("GET", f"/v1/workloads/{quote(n, safe='')}{_team_query(team)}") for n in names]
        return list(request("GET", f"/v1/workloads?limit=5000{_team_query(team, '&')}")["items"])
    if kind == "queues":
        if names:
            return [request("GET", f"/v1/queues/{quote(n, safe='')}") for n in names]
        return list(request("GET", "/v1/queues")["items"])
    if kind == "purchases":
        return purchase_cmds.fetch(names)
    if kind == "stacks":
        items = list(request("GET", "/v1/stacks")["items"])
        missing = sorted(set(names) - {s["name"] for s in items})
        if missing:
            fail(f"stack {missing[0]!r} not found")
        return [s for s in items if not names or s["name"] in names]
    return list(request("GET", "/v1/events?limit=1000")["items"])


def get(
    resource: Annotated[str, typer.Argument(help="workloads (wl), stacks, events or queues (q)")],
    names: Annotated[list[str] | None, typer.Argument(help="names; none: all you may see")] = None,
    output: OutputOpt = GetFormat.table,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="after the list, print each change as it "
                                        "happens until Ctrl-C")] = False,
    timeout: TimeoutOpt = 0.0,
    team: TeamOpt = None,
) -> None:
    """List workloads, stacks or events, or show the named ones.

    \b
    Examples:
      awan get workloads
      awan get workload llm-pretrain-7 -o yaml
      awan get wl -o wide --watch
      awan get workloads -o name
      awan get stacks
      awan get queues
      awan get queue research -o wide
    """
    kind = _kind(resource)
    wanted = names or []
    items = _fetch(kind, wanted, team)
    _show(kind, items, output, single=len(wanted) == 1 and output in (GetFormat.json, GetFormat.yaml))
    if watch:
        _watch(kind, wanted, output, items, timeout, team)


def _watch(kind: str, names: list[str], output: GetFormat, seen_items: list[dict[str, Any]], timeout: float,
           team: str | None = None) -> None:
    """Poll once a second and print a row for each change (kubectl -w prints rows, not whole tables)."""
    key = "id" if kind in ("events", "purchases") else "name"
    seen = {str(i[key]): i for i in seen_items}
    deadline = time.monotonic() + timeout if timeout else None
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(1.0)
            changed = []
            for i in _fetch(kind, names, team):
                k = str(i[key])
                old = seen.get(k)
                if old is None or any(old.get(f) != i.get(f) for f in ("state", "status", "message", "assignments")):
                    changed.append(i)
                seen[k] = i
            if changed:
                if output in (GetFormat.table, GetFormat.wide) and kind == "workloads":
                    print_columns(*_workload_rows(changed, output is GetFormat.wide), show_header=False)
                else:
                    _show(kind, changed, output, single=False)
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass


def describe(
    resource: Annotated[str, typer.Argument(help="workload")],
    name: Annotated[str, typer.Argument(help="the workload's name")],
    output: Annotated[GetFormat, typer.Option("--output", "-o", help="table (text), json or yaml")] = GetFormat.table,
    team: TeamOpt = None,
) -> None:
    """Placement, explanation and events of one workload.

    \b
    Examples:
      awan describe workload llm-pretrain-7
      awan describe wl llm-pretrain-7 -o json | jq .placement.explanation
    """
    if _kind(resource) != "workloads":
        fail("describe: only workloads can be described")
    enc = quote(name, safe="")
    q = _team_query(team)
    w = request("GET", f"/v1/workloads/{enc}{q}")
    pl = request("GET", f"/v1/workloads/{enc}/placement{q}")
    evs = request("GET", f"/v1/workloads/{enc}/events{q}")["items"]
    if output in (GetFormat.json, GetFormat.yaml):
        doc = {"workload": w, "placement": pl.get("placement"), "explanation": pl.get("explanation"),
               "events": evs}
        print_json(doc) if output is GetFormat.json else print_yaml(doc)
        return
    out = sys.stdout.write
    out(f"Name:      {w['name']}\nTeam:      {w['team']}\nState:     {w['state']}\nGPUs:      {w['gpus']}\n"
        f"Priority:  {w['priority']}\nCreated:   {w['createdAt']} ({age(w['createdAt'])} ago)\n")
    if w["message"]:
        out(f"Message:   {w['message']}\n")
    if w["assignments"]:
        out("Placement:\n")
        print_columns(["  PROVIDER", "REGION", "ZONE", "TYPE", "NODES", "GPUS", "CAPACITY", "$/H"],
                      [["  " + a["provider"], a["region"], a["zone"], a["instanceType"], a["nodes"], a["gpus"],
                        a["capacityType"], f"{a['pricePerHour']:.2f}"] for a in w["assignments"]])
    ex = pl.get("explanation") or {}
    if ex.get("reasons"):
        out("Why:\n" + "".join(f"  {r}\n" for r in ex["reasons"]))
    for ru in ex.get("runnersUp") or ex.get("runners_up") or []:
        if isinstance(ru, dict):
            out(f"  runner-up: {ru.get('provider')}/{ru.get('region')} {ru.get('instanceType', '')}\n")
    rej = ex.get("rejections") or {}
    if rej:
        from controlplane.placement.explain import group_rejections

        # grouped by rule (issue 17): one line per rule with the provider/regions it ruled out
        lines = []
        for rule, keys, example in group_rejections(rej):
            shown = ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
            lines.append(f"  {rule} ({len(keys)}): {shown}\n    e.g. {example}\n")
        out("Ruled out, by rule:\n" + "".join(lines))
    out("Events:\n")
    print_columns(["  AGE", "ACTION", "ACTOR"], [["  " + age(e["at"]), e["action"], e["actor"]] for e in evs])


def _read(files: list[Path]) -> list[tuple[str, str]]:
    """(source, text) per manifest file; a directory gives its *.yaml, *.yml and *.json in name order."""
    out: list[tuple[str, str]] = []
    for f in files:
        if str(f) == "-":
            out.append(("stdin", sys.stdin.read()))
            continue
        paths = sorted(p for ext in ("*.yaml", "*.yml", "*.json") for p in f.glob(ext)) if f.is_dir() else [f]
        if f.is_dir() and not paths:
            fail(f"{f}: no manifests (*.yaml, *.yml, *.json)")
        for p in paths:
            try:
                out.append((str(p), p.read_text()))
            except OSError as e:
                fail(f"{p}: {e.strerror}")
    return out


def _names_in(source: str, text: str) -> list[str]:
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        fail(f"{source}: not valid YAML: {str(e).splitlines()[0]}")
    names = []
    for i, d in enumerate(docs):
        name = (d.get("metadata") or {}).get("name") if isinstance(d, dict) else None
        if not isinstance(name, str) or not name:
            fail(f"{source}: document {i + 1}: metadata.name: required")
        names.append(name)
    return names


def _submit(files: list[Path], verb: str) -> list[str]:
    names: list[str] = []
    for source, text in _read(files):
        ctype = "application/json" if text.lstrip().startswith(("{", "[")) else "application/yaml"
        try:
            res = request_or_error("POST", "/v1/workloads", body=text.encode(), content_type=ctype)
        except ApiError as e:
            fail(f"{source}: {e}")
        for n in res["created"]:
            sys.stdout.write(f"workload/{n} {verb}\n")
        for n in res["unchanged"]:
            sys.stdout.write(f"workload/{n} unchanged\n")
        for note in res.get("notes") or []:
            sys.stderr.write(f"note: {note}\n")
        names += [w["name"] for w in res["items"]]
    return names


def wait_for(names: list[str], state: str | None, timeout: float, gone: bool = False) -> None:
    """Poll until every workload is in ``state`` (or gone/Deleted); exit 1 on Failed or on timeout."""
    if state is not None and state not in STATES:
        fail(f"--wait: {state!r} is not one of {', '.join(STATES)}")
    deadline = time.monotonic() + timeout if timeout else None
    left = set(names)
    while left:
        for n in sorted(left):
            try:
                w = request_or_error("GET", f"/v1/workloads/{quote(n, safe='')}")
            except ApiError as e:
                if e.status == 404 and gone:
                    sys.stdout.write(f"workload/{n} deleted\n")
                    left.discard(n)
                    continue
                fail(str(e))
            st = w["state"]
            # A state on the way forward is reached once the workload is at it or past it: a capacity
            # reservation goes Placed -> Provisioning -> Running within one poll, and a run that
            # already finished has passed Running.
            passed = state in _FORWARD and st in _FORWARD and _FORWARD.index(st) > _FORWARD.index(state)
            if st == (state or "Deleted") or (gone and st == "Deleted") or passed:
                sys.stdout.write(f"workload/{n} {st.lower()}\n")
                left.discard(n)
            elif st == "Failed" and state != "Failed":
                fail(f"workload/{n} failed: {w.get('message') or 'no message'}")
        if left:
            if deadline is not None and time.monotonic() > deadline:
                fail(f"timed out after {timeout:g}s waiting for {', '.join(sorted(left))} "
                     f"to be {state or 'deleted'}")
            time.sleep(1.0)


def apply(files: FileOpt, wait: WaitOpt = None, timeout: TimeoutOpt = 0.0) -> None:
    """Create the workloads in the manifests (applying the same manifest again changes nothing).

    \b
    Examples:
      awan apply -f examples/finetune-eu.yaml
      awan apply -f examples/ --wait              # until every workload is Running
      awan apply -f job.yaml --wait=Placed --timeout 120
      cat job.yaml | awan apply -f -
    """
    names = _submit(files, "created")
    if wait is not None:
        wait_for(names, wait, timeout)


def submit(files: FileOpt, wait: WaitOpt = None, timeout: TimeoutOpt = 0.0) -> None:
    """Submit GPUWorkload manifests (the same as `awan apply`).

    \b
    Examples:
      awan submit -f examples/finetune-eu.yaml
    """
    names = _submit(files, "submitted")
    if wait is not None:
        wait_for(names, wait, timeout)


def delete(
    resource: Annotated[str | None, typer.Argument(help="workload (with names), or none with -f")] = None,
    names: Annotated[list[str] | None, typer.Argument(help="workload names")] = None,
    files: Annotated[list[Path] | None, typer.Option("--filename", "-f", help="delete the workloads these "
                                                     "manifests name")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="wait until the workloads are gone (their node pools "
                                       "deleted)")] = False,
    timeout: TimeoutOpt = 0.0,
    team: TeamOpt = None,
) -> None:
    """Delete workloads by name or by manifest; their node pools are deprovisioned.

    \b
    Examples:
      awan delete workload llm-pretrain-7
      awan delete -f examples/finetune-eu.yaml --wait
    """
    targets: list[str] = []
    if files:
        for source, text in _read(files):
            targets += _names_in(source, text)
    if resource is not None:
        if _kind(resource) != "workloads":
            fail("delete: only workloads can be deleted")
        targets += names or []
    if not targets:
        fail("delete: name the workloads (`awan delete workload NAME`) or pass -f FILE")
    for n in targets:
        w = request("DELETE", f"/v1/workloads/{quote(n, safe='')}{_team_query(team)}")
        sys.stdout.write(f"workload/{n} {'deleting' if w['state'] == 'Deleting' else w['state'].lower()}\n")
    if wait:
        wait_for(targets, None, timeout, gone=True)


def wait(
    resource: Annotated[str, typer.Argument(help="workload")],
    names: Annotated[list[str], typer.Argument(help="workload names")],
    for_: Annotated[str, typer.Option("--for", help="the state to wait for, or 'delete'")] = "Running",
    timeout: TimeoutOpt = 0.0,
) -> None:
    """Wait until workloads reach a state (exit 1 if one fails or the timeout passes).

    \b
    Examples:
      awan wait workload llm-pretrain-7 --for Running --timeout 600
      awan wait wl a b c --for delete
    """
    if _kind(resource) != "workloads":
        fail("wait: only workloads can be waited for")
    gone = for_.lower() == "delete"
    wait_for(names, None if gone else for_, timeout, gone=gone)


def register(app: typer.Typer) -> None:
    app.command("get")(get)
    app.command("describe")(describe)
    app.command("apply", cls=OptionalValueCommand)(apply)
    app.command("submit", cls=OptionalValueCommand)(submit)
    app.command("delete")(delete)
    app.command("wait")(wait)
