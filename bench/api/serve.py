"""The service under test, in its own process: ``python -m bench.api.serve DB_URL PORT [CORES]``.

No reconcile loop and no providers: the figures are for the API and its store alone. CORES (comma-
separated) pins the server away from the load generator's core.
"""

from __future__ import annotations

import os
import sys

import uvicorn

from controlplane.api import create_app
from controlplane.settings import Settings


def main(argv: list[str]) -> None:
    db_url, port = argv[0], int(argv[1])
    if len(argv) > 2 and argv[2] and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in argv[2].split(",")})
    settings = Settings(db_url=db_url, port=port, reconcile=False, log_level="WARNING",
                        db_pool_size=32, db_max_overflow=8)
    app = create_app(settings, providers={})
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
