"""CEL's Rust core is loaded without the package's CLI (typer, rich, prompt_toolkit, pygments), and a
later ``import cel`` still works and shares the same extension module."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import json, sys
from controlplane.policy.cel_rules import compile_rule
rule = compile_rule("no-aws", 'candidate.provider != "aws"')
out = {"verdict": list(rule.evaluate({"candidate": {"provider": "aws"}, "workload": {}})),
       "loaded": sorted(m for m in ("cel", "cel.cli", "rich", "prompt_toolkit", "pygments") if m in sys.modules)}
import cel
out["same"] = cel.compile is sys.modules["cel.cel"].compile
out["evaluate"] = cel.evaluate("1 + 2")
print(json.dumps(out))
"""


def test_rules_compile_without_the_cel_cli_and_import_cel_still_works() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["verdict"] == [False, 'rule no-aws: candidate.provider != "aws"']
    assert out["loaded"] == []
    assert out["same"] is True and out["evaluate"] == 3
