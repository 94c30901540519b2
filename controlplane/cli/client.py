"""The API client of the CLI: which server and token to use (contexts, as in a kubeconfig), and the calls.

Resolution, first match wins: ``--server``/``--token`` (or ``AWAN_URL``/``AWAN_TOKEN``), then the context
named by ``--context`` (or ``AWAN_CONTEXT``), then the client config's ``current-context``. The client
config is ``$AWAN_CLIENT_CONFIG`` or ``~/.config/awan/client.yaml``::

    current-context: demo
    contexts:
      demo: {server: http://127.0.0.1:8080, token: awan_...}
      prod: {server: https://awan.example.com, token: awan_...}

The older flat form (``url:`` and ``token:`` at the top) is still read. HTTP goes through the standard
library: httpx alone costs ~0.2 s to import (it loads its own CLI), which would double ``awan get``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.cli.output import fail

DEFAULT_SERVER = "http://127.0.0.1:8080"


def client_config_path() -> Path:
    return Path(os.environ.get("AWAN_CLIENT_CONFIG") or "~/.config/awan/client.yaml").expanduser()


@dataclass
class ClientConfig:
    current: str | None = None
    contexts: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> ClientConfig:
        path = path or client_config_path()
        if not path.exists():
            return cls()
        import yaml

        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, OSError) as e:
            fail(f"{path}: not valid YAML: {str(e).splitlines()[0]}")
        if not isinstance(raw, dict):
            fail(f"{path}: expected a mapping with 'contexts' and 'current-context'")
        contexts = raw.get("contexts") or {}
        if not isinstance(contexts, dict) or not all(isinstance(v, dict) for v in contexts.values()):
            fail(f"{path}: contexts: expected a mapping of name -> {{server, token}}")
        cfg = cls(raw.get("current-context"), {str(k): {kk: str(vv) for kk, vv in v.items()}
                                               for k, v in contexts.items()})
        if not cfg.contexts and (raw.get("url") or raw.get("token")):   # the flat form of earlier releases
            cfg.contexts["default"] = {"server": str(raw.get("url") or DEFAULT_SERVER),
                                       "token": str(raw.get("token") or "")}
            cfg.current = "default"
        return cfg

    def save(self, path: Path | None = None) -> Path:
        import yaml

        path = path or client_config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # The file holds tokens: readable by its owner only, written whole or not at all.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump({"current-context": self.current, "contexts": self.contexts}, f, sort_keys=False)
        os.replace(tmp, path)
        return path


@dataclass
class Target:
    server: str
    token: str | None
    context: str | None


@dataclass
class GlobalOptions:
    """What the top-level options (``--context``, ``--server``, ``--token``) said."""

    context: str | None = None
    server: str | None = None
    token: str | None = None


OPTIONS = GlobalOptions()


def target() -> Target:
    cfg = ClientConfig.load()
    name = OPTIONS.context or cfg.current
    ctx: dict[str, str] = {}
    if name:
        if name not in cfg.contexts:
            known = ", ".join(sorted(cfg.contexts)) or "none"
            fail(f"context {name!r} is not in {client_config_path()} (known: {known})")
        ctx = cfg.contexts[name]
    server = OPTIONS.server or ctx.get("server") or DEFAULT_SERVER
    token = OPTIONS.token or ctx.get("token") or None
    return Target(server.rstrip("/"), token, name)


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


def request(method: str, path: str, *, body: bytes | None = None, content_type: str = "application/json",
            timeout: float = 30.0) -> Any:
    """One API call; a failure to connect or a 4xx/5xx is one line and exit 1 (``ApiError`` for 404 callers
    that want to handle it, via ``request_or_error``)."""
    try:
        return request_or_error(method, path, body=body, content_type=content_type, timeout=timeout)
    except ApiError as e:
        fail(str(e))


def request_or_error(method: str, path: str, *, body: bytes | None = None,
                     content_type: str = "application/json", timeout: float = 30.0) -> Any:
    import urllib.error
    import urllib.request

    t = target()
    if not t.token:
        fail(f"no API token: pass --token, set AWAN_TOKEN, or add a context to {client_config_path()} "
             "(`awan config set-context NAME --server URL --token TOKEN`)")
    headers = {"Authorization": f"Bearer {t.token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(t.server + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            data = r.read()
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            detail = json.loads(raw).get("detail", raw.decode(errors="replace"))
        except (ValueError, AttributeError):
            detail = raw.decode(errors="replace")[:300]
        raise ApiError(e.code, str(detail)) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        fail(f"cannot reach the Awan API at {t.server}: {reason}")
    return json.loads(data) if data else None
