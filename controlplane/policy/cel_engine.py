"""The CEL engine's compiled core (``common-expression-language``'s Rust extension), without its CLI.

``import cel`` runs the package's ``__init__``, which imports the package's own command-line tool first
(typer, rich, prompt_toolkit, pygments): about a third of `awan plan`'s start-up, for a REPL placement never
uses. Placement needs ``compile`` alone, which the extension module ``cel.cel`` holds; it is loaded here
from the installed package's directory under that same name, and registered in ``sys.modules`` as the
import system would, so a later ``import cel`` (its CLI, a test) reuses this module instead of
initialising the extension a second time. Where the package is laid out otherwise, plain ``import cel``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any, Protocol, cast


class CelModule(Protocol):
    def compile(self, expression: str) -> Any: ...   # a cel.Program (typed in the package's stubs)


_NAME = "cel.cel"


def cel_module() -> CelModule:
    """The extension module ``cel.cel`` (compile, Context, evaluate), loaded once."""
    got = sys.modules.get(_NAME)
    if got is None:
        got = _load_extension()
    if got is None:
        import cel

        got = cel
    return cast(CelModule, got)


def _load_extension() -> Any:
    spec = importlib.util.find_spec("cel")          # finds the package; does not run its __init__
    dirs = spec.submodule_search_locations if spec is not None else None
    for d in dirs or ():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(d) / f"cel{suffix}"
            if path.is_file():
                loader = importlib.machinery.ExtensionFileLoader(_NAME, str(path))
                ext = importlib.util.spec_from_file_location(_NAME, path, loader=loader)
                if ext is None:
                    return None
                mod = importlib.util.module_from_spec(ext)
                sys.modules[_NAME] = mod
                loader.exec_module(mod)
                return mod
    return None
