"""Tokens look like ``awan_<id>_<secret>``. The id finds the row in O(1); only a salted scrypt hash of
the secret is stored, so a leaked database does not leak usable tokens. The clear token is shown once.

Scope is in the role's name: ``admin`` administers its own team (its workloads and its tokens);
``cluster-admin`` is global (every team, policies, providers). A token may expire; its last use is
recorded to the minute, so an operator can find tokens nobody uses and revoke them."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.errors import NotFound
from controlplane.store.coltypes import utcnow
from controlplane.store.models import Role, Team, Token

_FORMAT = re.compile(r"awan_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})")
_TEAM = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_ID = re.compile(r"[0-9a-f]{12}")
# scrypt cost: ~10 ms per check on an idle core; the API spares it for known secrets (see auth.verifier).
_N, _R, _P = 2**14, 8, 1
# last_used_at is written at most this often per token: a busy token must not turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)
ROLES = ", ".join(r.value for r in Role)


class TokenError(ValueError):
    """A token or token request that cannot be used; the message says why."""


class TokenNotFound(NotFound, TokenError):
    """No token of that id that the caller may see (a NotFound of the service: 404 at the HTTP edge)."""


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    team: str
    role: Role
    expires_at: datetime | None = None

    @property
    def actor(self) -> str:
        return f"token:{self.token_id} ({self.team}/{self.role.value})"

    @property
    def is_admin(self) -> bool:
        """Global admin (``cluster-admin``): sees and changes every team, policies and providers."""
        return self.role is Role.CLUSTER_ADMIN

    @property
    def can_write(self) -> bool:
        return self.role in (Role.CLUSTER_ADMIN, Role.ADMIN, Role.MEMBER)

    def can_manage_tokens_of(self, team: str) -> bool:
        return self.role is Role.CLUSTER_ADMIN or (self.role is Role.ADMIN and team == self.team)


def secret_hash(secret: str, salt: bytes) -> str:
    """The stored form of a secret (scrypt: slow on purpose; see auth.verifier for how the API spares it)."""
    return hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32).hex()


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    m = _FORMAT.fullmatch(token.strip())
    return (m.group(1), m.group(2)) if m else None


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise TokenError(f"role: {role!r} is not one of {ROLES}") from None


def create_token(s: Session, team: str, role: str, description: str = "",
                 expires_at: datetime | None = None) -> tuple[str, Principal]:
    """Create the team if new and a token for it; returns the clear token (to print once)."""
    if not _TEAM.fullmatch(team):
        raise TokenError(f"team: {team!r} must be a DNS-1123 label (lower-case letters, digits, '-')")
    r = parse_role(role)
    if expires_at is not None and expires_at <= utcnow():
        raise TokenError("expires: the expiry is in the past")
    if len(description) > 200:
        raise TokenError("description: longer than 200 characters")
    if s.get(Team, team) is None:
        s.add(Team(name=team))
        s.flush()
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    salt = secrets.token_bytes(16)
    s.add(Token(id=token_id, team=team, role=r.value, salt=salt.hex(), hash=secret_hash(secret, salt),
                description=description, expires_at=expires_at))
    s.flush()
    return f"awan_{token_id}_{secret}", Principal(token_id, team, r, expires_at)


def verify_token(s: Session, token: str) -> Principal | None:
    """The principal of a valid token, or None (unknown, revoked, expired, wrong secret). Records the use."""
    m = _FORMAT.fullmatch(token.strip())
    if not m:
        return None
    row = s.get(Token, m.group(1))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if not hmac.compare_digest(secret_hash(m.group(2), bytes.fromhex(row.salt)), row.hash):
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    return Principal(row.id, row.team, Role(row.role), row.expires_at)


def list_tokens(s: Session, team: str | None = None, include_revoked: bool = False) -> Sequence[Token]:
    q = select(Token).order_by(Token.team, Token.created_at)
    if team is not None:
        q = q.where(Token.team == team)
    if not include_revoked:
        q = q.where(Token.revoked_at.is_(None))
    return s.scalars(q).all()


def revoke_token(s: Session, token_id: str, team: str | None = None) -> Token:
    """Revoke by id (``team``: only a token of that team, else it is not found). Revoking twice is a no-op."""
    if not _ID.fullmatch(token_id):
        raise TokenError(f"token id: {token_id!r} is not a token id (12 hex digits, as `awan token list` shows)")
    row = s.get(Token, token_id)
    if row is None or (team is not None and row.team != team):
        raise TokenNotFound(f"token {token_id!r} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        s.flush()
    return row


def token_id_of(token: str) -> str | None:
    m = _FORMAT.fullmatch(token.strip())
    return m.group(1) if m else None


_DURATION = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def expiry_from(text: str, now: datetime | None = None) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` from now, or an ISO date/time (UTC when it names no zone)."""
    now = now or utcnow()
    m = _DURATION.fullmatch(text.strip())
    if m:
        n = int(m.group(1))
        if n == 0 or n > 100_000:
            raise TokenError(f"expires: {text!r} must be between 1 and 100000 {_UNITS[m.group(2)]}")
        return now + timedelta(**{_UNITS[m.group(2)]: n})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TokenError(f"expires: {text!r} is neither a duration (30d, 12h, 90m, 2w) nor an ISO date") from None
    from datetime import UTC

    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if at <= now:
        raise TokenError("expires: the expiry is in the past")
    return at
