"""Entry point for the Pulumi CLI (``pulumi up`` in this directory): the stack's StackSpec comes from
the ``awan:stack`` config value (JSON, as written by the Pulumi engine)."""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi

# The CLI runs this file from infra/; the package root is one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.programs import program_for  # noqa: E402
from infra.spec import StackSpec  # noqa: E402

program_for(StackSpec.from_json(pulumi.Config("awan").require("stack")))()
