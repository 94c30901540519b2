"""`python -m bench --suite stackrun --quick`: one stack grown and run again through the local engine on the
in-process mock clouds (no timing assertions: that every run converges and the last one changes nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main


@pytest.mark.slow
@pytest.mark.parametrize("store", ["file", "sqlite"])
def test_quick_stackrun_bench_grows_a_stack_and_reports_a_noop_run(store: str, tmp_path: Path) -> None:
    rc = main(["--suite", "stackrun", "--quick", "--no-pin", "--stackrun-store", store,
               "--results-dir", str(tmp_path)])
    res = json.loads((tmp_path / "stackrun-latest.json").read_text())
    assert res["errors"] == [] and rc == 0 and res["store"] == store
    first, grow, noop = res["runs"]
    assert first["counts"]["create"] > 8 and grow["counts"]["same"] == first["counts"]["create"]
    assert 0 < grow["counts"]["create"] < first["counts"]["create"] and grow["counts"]["delete"] == 0
    assert res["noop_ok"] is True and noop["counts"]["same"] == grow["counts"]["create"] + grow["counts"]["same"]
