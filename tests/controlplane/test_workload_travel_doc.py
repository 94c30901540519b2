"""docs/how-a-workload-travels.md names real files: every path in it exists (a renamed module fails
here, not in a reader's hands), and it names each hop once."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "how-a-workload-travels.md"


def test_every_named_file_exists() -> None:
    text = DOC.read_text()
    paths = set(re.findall(r"`((?:controlplane|infra|providers|mockclouds)/[^`\s]*)`", text))
    assert len(paths) > 20
    clouds = ["aws", "azure", "coreweave", "gcp", "oci"]
    missing = [p for p in sorted(paths)
               if not all((ROOT / p.replace("<cloud>", c)).exists() for c in (clouds if "<cloud>" in p else [""]))]
    assert not missing, missing


def test_each_hop_once() -> None:
    hops = re.findall(r"^\| \d+ \| ([^|]+) \|", DOC.read_text(), flags=re.M)
    names = [h.strip().strip("`") for h in hops]
    assert names[0] == "awan submit" and names[-1] == "release"
    assert len(names) == len(set(names)) >= 14
