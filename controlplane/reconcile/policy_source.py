"""The policies in force: the document stored by ``PUT /v1/policies`` if any, else the configured files,
else the built-in defaults. Parsed once per distinct document (CEL compiles once)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from controlplane.store import policies as store
from controlplane.store.db import Database


class PolicyUnavailable(RuntimeError):
    """The policy loader cannot be imported (a partial install)."""


def parse_document(text: str, source: str = "policy document") -> Any:
    """A PolicySet from YAML text; raises PolicyError naming ``source`` and the field (never a file of the
    server's: the text is parsed as it is), or PolicyUnavailable when this build has no policy loader."""
    try:
        from controlplane.policy import merge, parse_policy_text
    except ImportError as e:
        raise PolicyUnavailable(f"policy loader not available: {e}") from None
    return merge(parse_policy_text(text, source))


class PolicySource:
    def __init__(self, db: Database, files: list[str] | None = None) -> None:
        self.db, self.files = db, [Path(f) for f in files or []]
        self._cached: tuple[str, Any] | None = None
        self._lock = threading.Lock()

    def document(self) -> tuple[str, str]:
        """(yaml text, who set it)."""
        got = store.get_document(self.db)
        if got is not None:
            return got
        return "\n---\n".join(f.read_text() for f in self.files), "configuration files"

    def current(self) -> Any:
        text, _ = self.document()
        with self._lock:
            if self._cached and self._cached[0] == text:
                return self._cached[1]
        if text.strip():
            ps = parse_document(text)
        else:
            from controlplane.policy.model import PolicySet

            ps = PolicySet.default()
        with self._lock:
            self._cached = (text, ps)
        return ps
