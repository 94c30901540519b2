"""Tokens look like ``awan_<id>_<secret>``. The id finds the row in O(1); only a salted scrypt hash of
the secret is stored, so a leaked database does not leak usable tokens. The clear token is shown once."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from controlplane.store.models import Role, Team, Token

_FORMAT = re.compile(r"awan_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})")
_TEAM = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")   # used with fullmatch: "$" passes "x\n"
# scrypt cost: ~10 ms per check; verified results are cached per process (see api.auth).
_N, _R, _P = 2**14, 8, 1


class TokenError(ValueError):
    """A token or token request that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    team: str
    role: Role

    @property
    def actor(self) -> str:
        return f"token:{self.token_id} ({self.team}/{self.role.value})"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def can_write(self) -> bool:
        return self.role in (Role.ADMIN, Role.MEMBER)


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32).hex()


def create_token(s: Session, team: str, role: str, description: str = "") -> tuple[str, Principal]:
    """Create the team if new and a token for it; returns the clear token (to print once)."""
    if not _TEAM.fullmatch(team):
        raise TokenError(f"team: {team!r} must be a DNS-1123 label (lower-case letters, digits, '-')")
    try:
        r = Role(role)
    except ValueError:
        raise TokenError(f"role: {role!r} is not one of admin, member, viewer") from None
    if s.get(Team, team) is None:
        s.add(Team(name=team))
        s.flush()
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    salt = secrets.token_bytes(16)
    s.add(Token(id=token_id, team=team, role=r.value, salt=salt.hex(), hash=_hash(secret, salt),
                description=description))
    s.flush()
    return f"awan_{token_id}_{secret}", Principal(token_id, team, r)


def verify_token(s: Session, token: str) -> Principal | None:
    m = _FORMAT.fullmatch(token.strip())
    if not m:
        return None
    row = s.get(Token, m.group(1))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(_hash(m.group(2), bytes.fromhex(row.salt)), row.hash):
        return None
    return Principal(row.id, row.team, Role(row.role))
