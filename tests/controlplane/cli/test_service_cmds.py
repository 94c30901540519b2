"""The CLI as an API client: `awan submit/get/describe/delete` against a real uvicorn on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.cli.main import app
from controlplane.settings import Settings
from controlplane.store import Database, upgrade

runner = CliRunner()

MANIFEST = """\
apiVersion: awan.dev/v1alpha1
kind: GPUWorkload
metadata: {name: cli-infer, team: research}
spec:
  kind: inference
  gpus: {model: H100, count: 8}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    url = f"sqlite:///{tmp_path / 'awan.db'}"
    db = Database.from_url(url)
    upgrade(db.engine)
    with db.session() as s:
        tokens = {"research": create_token(s, "research", "member")[0],
                  "viewer": create_token(s, "research", "viewer")[0],
                  "other": create_token(s, "inference", "member")[0]}
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(db_url=url, reconcile=False), db=db, providers={}),
                                           host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", tokens
    server.should_exit = True
    t.join(timeout=30)
    db.dispose()


def _run(args: list[str], url: str, token: str | None, tmp_path: Path):
    env = {"AWAN_URL": url, "HOME": str(tmp_path)}
    if token:
        env["AWAN_TOKEN"] = token
    return runner.invoke(app, args, env=env)


def test_submit_get_describe_delete(service, tmp_path: Path) -> None:
    url, tokens = service
    f = tmp_path / "w.yaml"
    f.write_text(MANIFEST)
    r = _run(["submit", "-f", str(f)], url, tokens["research"], tmp_path)
    assert r.exit_code == 0, r.output
    assert "workload/cli-infer submitted" in r.output
    r = _run(["submit", "-f", str(f)], url, tokens["research"], tmp_path)
    assert "workload/cli-infer unchanged" in r.output
    r = _run(["get", "workloads", "-o", "json"], url, tokens["research"], tmp_path)
    assert r.exit_code == 0, r.output
    items = json.loads(r.stdout)["items"]      # kubectl's List
    assert [w["name"] for w in items] == ["cli-infer"] and items[0]["state"] == "Pending"
    r = _run(["get", "workloads", "-o", "json"], url, tokens["other"], tmp_path)
    assert json.loads(r.stdout)["items"] == [], "another team must not see it"
    r = _run(["describe", "workload", "cli-infer"], url, tokens["research"], tmp_path)
    assert r.exit_code == 0 and "cli-infer" in r.output and "State:     Pending" in r.output
    r = _run(["delete", "workload", "cli-infer"], url, tokens["viewer"], tmp_path)
    assert r.exit_code != 0 and "403" in r.output and "Traceback" not in r.output
    r = _run(["delete", "workload", "cli-infer"], url, tokens["research"], tmp_path)
    assert r.exit_code == 0, r.output


def test_client_errors_are_one_line(service, tmp_path: Path) -> None:
    url, tokens = service
    bad = tmp_path / "bad.yaml"
    bad.write_text(MANIFEST.replace("count: 8", "count: -1"))
    r = _run(["submit", "-f", str(bad)], url, tokens["research"], tmp_path)
    assert r.exit_code != 0 and "422" in r.output and "spec.gpus.count" in r.output
    assert "Traceback" not in r.output
    r = _run(["get", "workloads"], url, None, tmp_path)
    assert r.exit_code != 0 and "no API token" in r.output
    r = _run(["get", "workloads"], f"http://127.0.0.1:{_free_port()}", tokens["research"], tmp_path)
    assert r.exit_code != 0 and "cannot reach the Awan API" in r.output and "Traceback" not in r.output
    r = _run(["describe", "workload", "nope"], url, tokens["research"], tmp_path)
    assert r.exit_code != 0 and "404" in r.output
    r = _run(["submit", "-f", str(tmp_path / "missing.yaml")], url, tokens["research"], tmp_path)
    assert r.exit_code != 0 and "missing.yaml" in r.output and "Traceback" not in r.output
