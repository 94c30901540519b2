"""docs/settings.md is the one table of every AWAN_* variable: each service setting and each variable the
code reads appears in it, and it lists nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from controlplane.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _documented() -> dict[str, str]:
    rows = re.findall(r"^\| `(AWAN_[A-Z_]+)` \| ([^|]+) \|", (REPO / "docs" / "settings.md").read_text(), re.M)
    return {k: v.strip() for k, v in rows}


def _read_by_code() -> set[str]:
    names: set[str] = set()
    for pkg in ("controlplane", "providers", "infra"):
        for f in (REPO / pkg).rglob("*.py"):
            names |= set(re.findall(r"\bAWAN_[A-Z][A-Z_]*[A-Z]\b", f.read_text()))
    return names


def test_every_setting_is_in_the_table_and_nothing_else() -> None:
    documented = _documented()
    settings = {f"AWAN_{k.upper()}" for k in Settings.model_fields}
    assert settings <= set(documented), f"undocumented settings: {sorted(settings - set(documented))}"
    code = _read_by_code()
    assert code <= set(documented), f"variables read but undocumented: {sorted(code - set(documented))}"
    assert set(documented) <= settings | code | {"AWAN_TEST_PG_URL"}, \
        f"documented but unknown: {sorted(set(documented) - settings - code)}"


def test_documented_defaults_of_plain_settings_match_the_code() -> None:
    documented = _documented()
    for k, f in Settings.model_fields.items():
        if f.default_factory is not None or f.default is None:
            continue
        shown = documented[f"AWAN_{k.upper()}"].strip("`")
        want = str(f.default).lower() if isinstance(f.default, bool) else str(f.default)
        assert shown == want, f"AWAN_{k.upper()}: docs say {shown!r}, code {want!r}"
