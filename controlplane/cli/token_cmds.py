"""`awan token create|list|revoke`. With ``--db`` (or ``AWAN_DB_URL``) they work on the store directly,
which is how the first token of a new installation is made; without, they go through the API as the
current context's token (a team admin manages its team's tokens, a cluster-admin everyone's).

``token create`` never creates a database: a mistyped ``--db`` would otherwise mint a valid-looking token
in a new, empty file that no server reads."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any
from urllib.parse import quote

import typer

from controlplane.cli.output import GetFormat, fail, print_columns, print_json, print_yaml

token_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)

DbOpt = Annotated[str | None, typer.Option("--db", envvar="AWAN_DB_URL", show_envvar=True,
                                           help="work on this database directly (else through the API)")]
ROLE_HELP = ("cluster-admin (every team, policies, providers), admin (this team's workloads and tokens), "
             "member (submit and delete this team's workloads) or viewer (read only)")


def _open_existing(url: str) -> Any:
    """The database at ``url`` if it exists and is migrated; else one line saying how to make it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from controlplane.store import Database
    from controlplane.store.migrate import current

    try:
        u = make_url(url)
    except Exception:
        fail(f"--db: {url!r} is not a database URL (sqlite:///path or postgresql+psycopg://...)")
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:") \
            and not os.path.exists(u.database):
        fail(f"--db: no database at {u.database} (a typo? `awan db upgrade --db {url}` creates one; "
             "`make run` uses sqlite:///.awan/demo.db)")
    d = Database.from_url(url)
    try:
        rev = current(d.engine)
    except SQLAlchemyError as e:
        fail(f"--db: cannot open {u.render_as_string(hide_password=True)}: {type(e).__name__}")
    if rev is None:
        fail(f"--db: {u.render_as_string(hide_password=True)} has no Awan schema (run `awan db upgrade --db URL`)")
    from controlplane.store import upgrade

    upgrade(d.engine)   # an older schema is brought up to date, as `awan serve` would
    return d


def _row(t: dict[str, Any]) -> list[object]:
    from controlplane.cli.resource_cmds import age

    return [t["id"], t["team"], t["role"], age(t.get("createdAt")),
            (t.get("expiresAt") or "never")[:19], age(t.get("lastUsedAt")) + (" ago" if t.get("lastUsedAt") else ""),
            "revoked" if t.get("revokedAt") else "active", t.get("description") or ""]


def _as_json(t: Any) -> dict[str, Any]:
    def iso(d: Any) -> str | None:
        return d.isoformat() if d is not None else None

    return {"id": t.id, "team": t.team, "role": t.role, "description": t.description,
            "createdAt": iso(t.created_at), "expiresAt": iso(t.expires_at), "lastUsedAt": iso(t.last_used_at),
            "revokedAt": iso(t.revoked_at)}


@token_app.command("create")
def create(
    team: Annotated[str, typer.Option("--team", help="the team the token acts for (created if new)")],
    role: Annotated[str, typer.Option("--role", help=ROLE_HELP)] = "member",
    expires: Annotated[str | None, typer.Option("--expires", help="30d, 12h, 90m, 2w or an ISO date; "
                                                "default: never")] = None,
    description: Annotated[str, typer.Option("--description", help="what the token is for")] = "",
    db: DbOpt = None,
) -> None:
    """Create a token and print it once (only a salted hash is kept).

    \b
    Examples:
      awan token create --team research --db sqlite:///.awan/demo.db
      awan token create --team research --role admin --expires 30d
      awan token create --team ops --role cluster-admin --db postgresql+psycopg://awan@db/awan
    """
    if db is None:
        body = {"team": team, "role": role, "description": description, "expires": expires}
        import json

        from controlplane.cli.client import request

        res = request("POST", "/v1/tokens", body=json.dumps(body).encode())
        sys.stdout.write(res["token"] + "\n")
        return
    from controlplane.auth import TokenError, create_token, expiry_from

    d = _open_existing(db)
    try:
        at = expiry_from(expires) if expires else None
        with d.session() as s:
            token, _ = create_token(s, team, role, description, at)
    except TokenError as e:
        fail(str(e))
    finally:
        d.dispose()
    sys.stdout.write(token + "\n")


@token_app.command("list")
def list_(
    team: Annotated[str | None, typer.Option("--team", help="only this team's tokens")] = None,
    all_: Annotated[bool, typer.Option("--all", help="include revoked tokens")] = False,
    output: Annotated[GetFormat, typer.Option("--output", "-o", help="table, json or yaml")] = GetFormat.table,
    db: DbOpt = None,
) -> None:
    """List tokens (never their secrets) with role, expiry and last use.

    \b
    Examples:
      awan token list
      awan token list --team research --all -o json
    """
    if db is None:
        from controlplane.cli.client import request

        q = "?revoked=true" if all_ else ""
        if team:
            q += ("&" if q else "?") + f"team={quote(team)}"
        items = request("GET", f"/v1/tokens{q}")["items"]
    else:
        from controlplane.auth import list_tokens

        d = _open_existing(db)
        with d.session() as s:
            items = [_as_json(t) for t in list_tokens(s, team, include_revoked=all_)]
        d.dispose()
    if output is GetFormat.json:
        print_json({"items": items})
    elif output is GetFormat.yaml:
        print_yaml({"items": items})
    else:
        print_columns(["ID", "TEAM", "ROLE", "AGE", "EXPIRES", "LAST USED", "STATUS", "DESCRIPTION"],
                      [_row(t) for t in items])


@token_app.command("revoke")
def revoke(
    token_ids: Annotated[list[str], typer.Argument(help="token ids, as `awan token list` shows them")],
    db: DbOpt = None,
) -> None:
    """Revoke tokens at once (replicas that cached one stop accepting it within 30 s).

    \b
    Examples:
      awan token revoke 3f9c0a1b2c3d
    """
    if db is None:
        from controlplane.cli.client import request

        for t in token_ids:
            request("DELETE", f"/v1/tokens/{quote(t, safe='')}")
            sys.stdout.write(f"token/{t} revoked\n")
        return
    from controlplane.auth import TokenError, revoke_token

    d = _open_existing(db)
    try:
        for t in token_ids:
            with d.session() as s:
                revoke_token(s, t)
            sys.stdout.write(f"token/{t} revoked\n")
    except TokenError as e:
        fail(str(e))
    finally:
        d.dispose()


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
