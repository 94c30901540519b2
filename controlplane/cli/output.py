"""Shared CLI output: one clear line for user errors (no traceback), and the kubectl output formats.

Kept light on purpose: rich is loaded on the first styled print, yaml only for ``-o yaml``, so ``awan
--help`` and ``awan get`` start in well under 0.3 s (see BENCHMARKS.md). Tables of ``get`` are plain
aligned columns like kubectl's: a name is never cut, whatever the terminal width.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console made on first use (rich costs ~60 ms to import); writes to whatever sys.stdout or
    sys.stderr is at print time, so test runners that swap the streams see the output."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def real(self) -> Console:
        """The Console itself, for rich objects that need one (Live, Progress)."""
        return self._get()

    def _get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


console: Any = _LazyConsole()
err_console: Any = _LazyConsole(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


class GetFormat(StrEnum):
    """``-o`` of get/describe, as kubectl names them."""

    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    name = "name"


def fail(message: str, code: int = 1) -> NoReturn:
    red = sys.stderr.isatty()
    sys.stderr.write(("\x1b[1;31merror:\x1b[0m " if red else "error: ") + message + "\n")
    raise typer.Exit(code)


def note(message: str) -> None:
    """A progress or hint line on stderr, so stdout stays parseable."""
    sys.stderr.write(message + "\n")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_yaml(data: Any) -> None:
    import yaml

    sys.stdout.write(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False,
                                    allow_unicode=True))


def print_columns(header: Sequence[str], rows: Sequence[Sequence[object]], *, show_header: bool = True) -> None:
    """kubectl's tabwriter: columns padded to their widest cell plus three spaces, nothing truncated."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    lines = ([list(header)] if show_header else []) + cells
    out = []
    for r in lines:
        out.append("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if out:
        sys.stdout.write("\n".join(out) + "\n")
