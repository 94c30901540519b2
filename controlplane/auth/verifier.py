"""Token verification that a flood of wrong secrets cannot turn into a flood of scrypt.

scrypt is deliberately slow (tens of milliseconds, far more on a busy machine), and every worker thread
that runs it is one the rest of the API does not get. So:

- Verified secrets are remembered per token id as a SHA-256 digest (in memory only) for ``verified_ttl_s``:
  the holder's next requests, and any wrong secret for that id, are settled by a constant-time compare of
  digests, with no scrypt at all.
- A secret that failed is remembered (its digest) for ``failed_ttl_s``: the same wrong token sent again is
  refused without scrypt.
- Each token id has a budget of failed scrypt checks (``failure_burst``, one more every ``failure_refill_s``);
  past it, attempts on that id are refused with 429 until the budget refills. Unknown ids never reach
  scrypt. A holder already verified is unaffected: its secret is settled from the digest, not the budget.

Concurrent first requests of one holder (after a restart, or once the digest expired) share one scrypt:
the first runs it and the others wait for its outcome, so a valid token is never refused 429 by its own
burst of requests, and the budget is spent only by distinct secrets.

The token row is read on every request (a primary-key lookup), so revocation and expiry take effect at
once on every replica; the digests only spare the hash. ``forget`` drops an id's entries (at revocation).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from controlplane.auth.tokens import LAST_USED_RESOLUTION, Principal, parse_token, secret_hash
from controlplane.store.coltypes import utcnow
from controlplane.store.models import Role, Token

_TOKENS = cast(Table, Token.__table__)   # a mapped class's Table (typed as its base, FromClause)
# Built once and read on the session's connection: the same primary-key lookup as ``Session.get`` without
# an ORM object made (and its identity map, its flush at commit) on every request. A mere use is written
# by an UPDATE of its own, at most once per LAST_USED_RESOLUTION.
_READ = select(_TOKENS.c.id, _TOKENS.c.team, _TOKENS.c.role, _TOKENS.c.salt, _TOKENS.c.hash, _TOKENS.c.revoked_at,
               _TOKENS.c.expires_at, _TOKENS.c.last_used_at).where(_TOKENS.c.id == bindparam("id"))
_USED = update(_TOKENS).where(_TOKENS.c.id == bindparam("tid")).values(last_used_at=bindparam("at"))


class TooManyFailures(Exception):  # noqa: N818 - the condition, as the HTTP status it becomes (429)
    """Too many wrong secrets for one token id lately; ``retry_after_s`` until the next check is allowed."""

    def __init__(self, token_id: str, retry_after_s: float) -> None:
        super().__init__(f"token {token_id}: too many failed attempts; retry in {retry_after_s:.0f} s")
        self.token_id, self.retry_after_s = token_id, retry_after_s


@dataclass(slots=True)
class _Verified:
    stored_hash: str      # the row's scrypt hash the secret was verified against
    digest: bytes         # SHA-256 of the verified secret
    until: float


@dataclass(slots=True)
class _Budget:
    tokens: float
    at: float


class TokenVerifier:
    def __init__(self, *, verified_ttl_s: float = 600.0, failed_ttl_s: float = 600.0, failure_burst: int = 5,
                 failure_refill_s: float = 10.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.verified_ttl_s, self.failed_ttl_s = verified_ttl_s, failed_ttl_s
        self.failure_burst, self.failure_refill_s = failure_burst, failure_refill_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self._failed: OrderedDict[bytes, float] = OrderedDict()   # digest of a failed token -> until
        self._budgets: dict[str, _Budget] = {}
        self._inflight: dict[tuple[str, bytes], threading.Event] = {}   # a scrypt check running for a secret
        self.scrypt_checks = 0     # how many times the slow hash ran (tests and metrics)
        self.waiting = 0           # requests waiting for another's check of the same secret (tests)

    # -- the one entry point ----------------------------------------------------------------------
    def verify(self, s: Session, token: str) -> Principal | None:
        """The principal of a valid token, or None (malformed, unknown, revoked, expired, wrong secret).
        Raises TooManyFailures when the id's budget of failed checks is spent. Records the use (at most once
        per LAST_USED_RESOLUTION), committing ``s`` when it does: ``s`` may be the caller's transaction for
        the request's own work, which should then start after this call."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        conn = s.connection()
        row = conn.execute(_READ, {"id": token_id}).first()
        now_wall = utcnow()
        if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now_wall):
            return None
        digest = hashlib.sha256(secret.encode()).digest()
        known = self._known(token_id, row.hash)
        if known is not None:
            # Constant time either way; a mismatch is a wrong secret, settled without scrypt.
            if not hmac.compare_digest(digest, known):
                return None
        elif not self._check_slowly(token_id, token, secret, digest, row.salt, row.hash):
            return None
        if row.last_used_at is None or now_wall - row.last_used_at >= LAST_USED_RESOLUTION:
            conn.execute(_USED, {"tid": token_id, "at": now_wall})
            # Recorded whatever the request goes on to do (a submit refused, rolled back), and SQLite's
            # write lock is not held past the token check.
            s.commit()
        return Principal(row.id, row.team, Role(row.role), row.expires_at)

    def forget(self, token_id: str) -> None:
        with self._lock:
            self._verified.pop(token_id, None)
            self._budgets.pop(token_id, None)

    # -- parts -------------------------------------------------------------------------------------
    def _known(self, token_id: str, stored_hash: str) -> bytes | None:
        with self._lock:
            v = self._verified.get(token_id)
            if v is None or v.until <= self._clock() or v.stored_hash != stored_hash:
                return None
            return v.digest

    def _check_slowly(self, token_id: str, token: str, secret: str, digest: bytes, salt: str,
                      stored_hash: str) -> bool:
        failed_key = hashlib.sha256(token.encode()).digest()
        flight = (token_id, digest)
        while True:
            now = self._clock()
            with self._lock:
                until = self._failed.get(failed_key)
                if until is not None and until > now:   # this very token failed lately: no second scrypt
                    return False
                v = self._verified.get(token_id)
                if v is not None and v.until > now and v.stored_hash == stored_hash:   # settled meanwhile
                    return hmac.compare_digest(digest, v.digest)
                running = self._inflight.get(flight)
                if running is None:
                    self._reserve(token_id, now)
                    self.scrypt_checks += 1
                    mine = self._inflight[flight] = threading.Event()
                    break
                self.waiting += 1
            try:
                running.wait(timeout=60.0)   # then look again: its outcome, or the check is ours to run
            finally:
                with self._lock:
                    self.waiting -= 1
        try:
            ok = hmac.compare_digest(secret_hash(secret, bytes.fromhex(salt)), stored_hash)
            now = self._clock()
            with self._lock:
                if ok:
                    self._refund(token_id)
                    self._verified[token_id] = _Verified(stored_hash, digest, now + self.verified_ttl_s)
                    self._verified.move_to_end(token_id)
                    _trim(self._verified, self.max_entries)
                else:
                    self._failed[failed_key] = now + self.failed_ttl_s
                    self._failed.move_to_end(failed_key)
                    _trim(self._failed, self.max_entries)
            return ok
        finally:
            with self._lock:
                self._inflight.pop(flight, None)
            mine.set()

    def _reserve(self, token_id: str, now: float) -> None:
        """Take one failed check from the id's budget before running scrypt (refunded on success), so many
        concurrent wrong attempts cannot all slip past a check made before any of them failed. Called
        with the lock held."""
        b = self._budgets.get(token_id)
        if b is None:
            if len(self._budgets) >= self.max_entries:
                self._budgets.clear()
            b = self._budgets[token_id] = _Budget(float(self.failure_burst), now)
        b.tokens = min(float(self.failure_burst), b.tokens + (now - b.at) / self.failure_refill_s)
        b.at = now
        if b.tokens < 1:
            raise TooManyFailures(token_id, (1 - b.tokens) * self.failure_refill_s)
        b.tokens -= 1

    def _refund(self, token_id: str) -> None:
        b = self._budgets.get(token_id)
        if b is not None:
            b.tokens = min(float(self.failure_burst), b.tokens + 1)


def _trim(d: OrderedDict, limit: int) -> None:  # type: ignore[type-arg]
    while len(d) > limit:
        d.popitem(last=False)
