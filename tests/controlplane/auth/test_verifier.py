"""Token verification under attack: wrong secrets for a known token id cost scrypt a bounded number of
times (then 429 for that id), never for a holder already verified; the same wrong token is refused from
memory; revocation and expiry still take effect at once, also on a replica that had the token cached."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from controlplane.api import create_app
from controlplane.auth import create_token, revoke_token
from controlplane.auth.verifier import TokenVerifier, TooManyFailures
from controlplane.settings import Settings
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Token
from tests.controlplane.api.conftest import auth


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _token(db: Database, team: str = "alpha", role: str = "member") -> str:
    with db.session() as s:
        return create_token(s, team, role)[0]


def _wrong(token: str, i: int) -> str:
    return token[:-6] + f"{i:06d}"


def _verify(db: Database, v: TokenVerifier, token: str):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return v.verify(s, token)


def test_a_verified_secret_is_settled_from_its_digest_and_wrong_ones_cost_nothing(db):
    tok = _token(db)
    v = TokenVerifier(clock=FakeClock())
    assert _verify(db, v, tok).team == "alpha" and v.scrypt_checks == 1
    assert _verify(db, v, tok) is not None and v.scrypt_checks == 1
    for i in range(50):     # a flood of wrong secrets for the holder's id
        assert _verify(db, v, _wrong(tok, i)) is None
    assert v.scrypt_checks == 1
    assert _verify(db, v, tok) is not None       # the holder never noticed


def test_failed_checks_per_token_id_are_budgeted_then_429(db):
    tok = _token(db)
    clock = FakeClock()
    v = TokenVerifier(clock=clock, failure_burst=5, failure_refill_s=10)   # a replica that has not seen it
    for i in range(5):
        assert _verify(db, v, _wrong(tok, i)) is None
    assert v.scrypt_checks == 5
    with pytest.raises(TooManyFailures) as e:
        _verify(db, v, _wrong(tok, 99))
    assert e.value.token_id in tok and e.value.retry_after_s == pytest.approx(10)
    assert _verify(db, v, _wrong(tok, 0)) is None    # a token that failed lately: refused from memory
    assert v.scrypt_checks == 5
    other = _token(db, "beta")                        # other ids keep their own budget
    assert _verify(db, v, other) is not None
    clock.now += 10                                   # one more check earned
    assert _verify(db, v, tok) is not None and v.scrypt_checks == 7
    assert _verify(db, v, _wrong(tok, 7)) is None and v.scrypt_checks == 7   # now settled from the digest
    assert _verify(db, v, "awan_000000000000_" + "x" * 30) is None and v.scrypt_checks == 7   # unknown id


def test_revocation_and_expiry_take_effect_at_once_even_when_cached(db):
    tok, tok2 = _token(db), _token(db)
    v = TokenVerifier(clock=FakeClock())
    assert _verify(db, v, tok) is not None and _verify(db, v, tok2) is not None
    with db.session() as s:   # as another replica revokes it: this verifier is not told
        revoke_token(s, tok.split("_")[1])
        s.get(Token, tok2.split("_")[1]).expires_at = utcnow() - timedelta(seconds=1)
    assert _verify(db, v, tok) is None and _verify(db, v, tok2) is None


def test_api_revocation_on_one_replica_is_refused_by_another_that_cached_it(db, db_url):
    root, member = _token(db, "ops", "cluster-admin"), _token(db)
    apps = [create_app(Settings(db_url=db_url, reconcile=False), db=db, providers={}) for _ in range(2)]
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        assert b.get("/v1/workloads", headers=auth(member)).status_code == 200    # verified and cached on b
        assert a.delete(f"/v1/tokens/{member.split('_')[1]}", headers=auth(root)).status_code == 200
        r = b.get("/v1/workloads", headers=auth(member))
        assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_api_wrong_secret_flood_is_bounded_and_429_while_a_verified_holder_is_served(db, db_url):
    """8 callers send wrong secrets for two known ids: one whose holder was verified (settled from its
    digest: 401, no scrypt) and one never used here (a few scrypt checks, then 429)."""
    member, idle = _token(db), _token(db)
    app = create_app(Settings(db_url=db_url, reconcile=False), db=db, providers={})
    statuses: dict[str, list[int]] = {"member": [], "idle": []}
    lock = threading.Lock()
    with TestClient(app) as c:
        assert c.get("/v1/workloads", headers=auth(member)).status_code == 200

        def attacker(k: int) -> None:
            for i in range(10):
                for key, tok in (("member", member), ("idle", idle)):
                    code = c.get("/v1/workloads", headers=auth(_wrong(tok, k * 100 + i))).status_code
                    with lock:
                        statuses[key].append(code)

        threads = [threading.Thread(target=attacker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        verifier = app.state.token_cache
        assert verifier.scrypt_checks <= 1 + verifier.failure_burst     # the holder's one, then the budget: not 161
        assert statuses["member"] == [401] * 80
        assert set(statuses["idle"]) == {401, 429} and len(statuses["idle"]) == 80
        assert c.get("/v1/workloads", headers=auth(member)).status_code == 200
        r = c.get("/v1/workloads", headers=auth(_wrong(idle, 5000)))
        assert r.status_code == 429 and "too many failed attempts" in r.json()["detail"]
        assert int(r.headers["retry-after"]) >= 1


def test_a_burst_of_first_requests_of_one_holder_shares_one_check_and_gets_no_429(db, monkeypatch):
    """After a restart the holder's concurrent requests found nothing cached: each took one of the id's
    failed-check slots for its own scrypt, and past the budget they got 429 with a valid token. Now the
    first runs scrypt and the others wait for its outcome. (4 requests over a budget of 2: each holds a
    store session, and the test pools hold 5.)"""
    import controlplane.auth.verifier as verifier

    tok = _token(db)
    v = TokenVerifier(clock=FakeClock(), failure_burst=2)
    gate, entered = threading.Event(), threading.Event()
    real = verifier.secret_hash

    def held(secret: str, salt: bytes) -> str:     # scrypt, held until every request has arrived
        entered.set()
        assert gate.wait(60)
        return real(secret, salt)

    monkeypatch.setattr(verifier, "secret_hash", held)
    results: list[object] = []

    def call() -> None:
        try:
            results.append(_verify(db, v, tok))
        except TooManyFailures as e:
            results.append(e)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    assert entered.wait(60)
    deadline = threading.Event()
    for _ in range(600):                  # until the other 3 wait on the first check (bounded: 60 s)
        if v.waiting == 3:
            break
        deadline.wait(0.1)
    assert v.waiting == 3 and v.scrypt_checks == 1
    gate.set()
    for t in threads:
        t.join(60)
    assert len(results) == 4 and all(getattr(r, "team", None) == "alpha" for r in results), results
    assert v.scrypt_checks == 1 and v.waiting == 0
