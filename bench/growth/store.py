"""The store and rendering work of one list page, in one process, process CPU time per page: ``python -m
bench.growth.store SQLITE_PATH``. Two paths on the same database (this tree's indexes), filled to 1,000, 10,000
and 100,000 workloads as ``bench.growth.run`` fills them:

- ``peer``: main's path before issue 12 item 5: every column of the page's rows, an exact ``count``, and the
  model validated again by FastAPI (``serialize_response``) before rendering;
- ``this``: the rows without placement/explanation, the bounded ``total``, the model rendered once;

and the count and the bounded total alone. Median of 60 pages each, for a team's list and the same filtered
by state. (The HTTP figures of ``bench.growth.run`` carry the same work under the server's and the
machine's noise.)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from fastapi.routing import serialize_response
from fastapi.utils import create_model_field
from sqlalchemy.orm import Session

from bench.growth.run import fill
from controlplane.api import schemas
from controlplane.api import workload_service as svc
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade

_FIELD = create_model_field("resp", schemas.WorkloadList)
_LOOP = asyncio.new_event_loop()


def peer(s: Session, team: str, states: list[str] | None) -> Any:
    rows = repo.list_(s, team=team, states=states, limit=100)
    out = schemas.WorkloadList(items=[svc.to_out(r) for r in rows], total=repo.count(s, team=team, states=states),
                               totalExact=True,
                               nextCursor=None)
    return _LOOP.run_until_complete(serialize_response(field=_FIELD, response_content=out, is_coroutine=False))


def this(s: Session, team: str, states: list[str] | None) -> Any:
    rows = repo.list_(s, team=team, states=states, limit=100, light=True)
    t = repo.total(s, team=team, states=states)
    return schemas.WorkloadList(items=[svc.to_out(r) for r in rows], total=t.value, totalExact=t.exact,
                                nextCursor=None).model_dump_json()


def count(s: Session, team: str, states: list[str] | None) -> Any:
    return repo.count(s, team=team, states=states)


def total(s: Session, team: str, states: list[str] | None) -> Any:
    return repo.total(s, team=team, states=states)


def main(argv: list[str]) -> None:
    url = f"sqlite:///{argv[0]}"
    db = Database.from_url(url)
    upgrade(db.engine)
    paths: dict[str, Callable[[Session, str, list[str] | None], Any]] = {
        "peer": peer, "this": this, "count": count, "total": total}
    for size in (1000, 10_000, 100_000):
        fill(url, size)
        res: dict[str, float] = {}
        for case, states in (("team", None), ("team+Pending", ["Pending"])):
            for name, f in paths.items():
                ts = []
                for _ in range(60):
                    with db.session() as s:
                        c0 = time.process_time()
                        f(s, "bench", states)
                        ts.append(time.process_time() - c0)
                res[f"{case}/{name}"] = 1000 * statistics.median(ts)
        print(size, " ".join(f"{k} {v:.2f}" for k, v in res.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
