"""kubectl habits of the CLI against a real uvicorn on loopback: -o formats, names never cut, apply/delete
-f, --wait[=STATE], --watch, contexts, --version, examples and env vars in help."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml
from typer.testing import CliRunner

from controlplane import __version__
from controlplane.cli.main import app
from tests.controlplane.cli.test_service_cmds import MANIFEST, service  # noqa: F401

runner = CliRunner()
REPO = Path(__file__).resolve().parents[3]
LONG = "a-workload-name-that-is-long-enough-to-be-cut-by-a-narrow-term"   # 62 characters


def _run(args: list[str], url: str | None, token: str | None, home: Path, **env: str):
    e = {"HOME": str(home), "COLUMNS": "40", "AWAN_CLIENT_CONFIG": "", **env}
    if url:
        e["AWAN_URL"] = url
    if token:
        e["AWAN_TOKEN"] = token
    return runner.invoke(app, args, env=e)


def test_get_output_formats_and_names_never_cut(service, tmp_path: Path) -> None:  # noqa: F811
    url, tokens = service
    f = tmp_path / "w.yaml"
    f.write_text(MANIFEST.replace("cli-infer", LONG))
    r = _run(["apply", "-f", str(f)], url, tokens["research"], tmp_path)
    assert r.exit_code == 0, r.output
    for fmt in ("table", "wide"):
        r = _run(["get", "workloads", "-o", fmt], url, tokens["research"], tmp_path)
        assert r.exit_code == 0, r.output
        assert LONG in r.stdout, f"-o {fmt} cut the name at 40 columns:\n{r.stdout}"
        assert r.stdout.splitlines()[0].split()[:3] == ["NAME", "TEAM", "STATE"]
    r = _run(["get", "workload", LONG, "-o", "yaml"], url, tokens["research"], tmp_path)
    assert yaml.safe_load(r.stdout)["name"] == LONG
    r = _run(["get", "workload", LONG, "-o", "json"], url, tokens["research"], tmp_path)
    assert json.loads(r.stdout)["state"] == "Pending"
    r = _run(["get", "wl", "-o", "name"], url, tokens["research"], tmp_path)
    assert r.stdout == f"workload/{LONG}\n"
    r = _run(["describe", "workload", LONG, "-o", "json"], url, tokens["research"], tmp_path)
    doc = json.loads(r.stdout)
    assert doc["workload"]["name"] == LONG and doc["events"][0]["action"] == "submitted"
    r = _run(["get", "workload", "nope"], url, tokens["research"], tmp_path)
    assert r.exit_code == 1 and "404" in r.output and "Traceback" not in r.output
    r = _run(["get", "pods"], url, tokens["research"], tmp_path)
    assert r.exit_code == 1 and "not one of: workloads" in r.output


def test_apply_wait_and_delete_by_file(service, tmp_path: Path) -> None:  # noqa: F811
    url, tokens = service
    f = tmp_path / "w.yaml"
    f.write_text(MANIFEST.replace("cli-infer", "wait-me"))
    r = _run(["apply", "-f", str(f), "--wait=Pending"], url, tokens["research"], tmp_path)
    assert r.exit_code == 0 and "workload/wait-me created" in r.stdout and "workload/wait-me pending" in r.stdout
    # this service runs no reconcile loop: --wait alone means Running, which never comes, so the bound ends it
    r = _run(["apply", "-f", str(f), "--wait", "--timeout", "1.5"], url, tokens["research"], tmp_path)
    assert r.exit_code == 1 and "unchanged" in r.stdout and "timed out after 1.5s" in r.output
    r = _run(["apply", "-f", str(f), "--wait=Sleeping"], url, tokens["research"], tmp_path)
    assert r.exit_code == 1 and "'Sleeping' is not one of" in r.output
    r = _run(["delete", "-f", str(f)], url, tokens["research"], tmp_path)
    assert r.exit_code == 0 and "workload/wait-me deleting" in r.stdout
    r = _run(["get", "workload", "wait-me", "-o", "json"], url, tokens["research"], tmp_path)
    assert json.loads(r.stdout)["state"] == "Deleting"
    r = _run(["delete"], url, tokens["research"], tmp_path)
    assert r.exit_code == 1 and "name the workloads" in r.output


def test_watch_prints_the_list_then_changes_until_its_bound(service, tmp_path: Path) -> None:  # noqa: F811
    url, tokens = service
    f = tmp_path / "w.yaml"
    f.write_text(MANIFEST.replace("cli-infer", "watched"))
    _run(["apply", "-f", str(f)], url, tokens["research"], tmp_path)
    r = _run(["get", "workloads", "--watch", "--timeout", "1.5"], url, tokens["research"], tmp_path)
    assert r.exit_code == 0 and "watched" in r.stdout and r.stdout.startswith("NAME")


def test_contexts_let_the_cli_work_without_exports(service, tmp_path: Path) -> None:  # noqa: F811
    url, tokens = service
    cfg = tmp_path / "client.yaml"
    env = {"AWAN_CLIENT_CONFIG": str(cfg)}
    r = _run(["config", "set-context", "lab", "--server", url, "--token", tokens["research"]], None, None,
             tmp_path, **env)
    assert r.exit_code == 0, r.output
    assert cfg.stat().st_mode & 0o077 == 0, "the client config holds tokens: owner-only"
    _run(["config", "set-context", "other", "--server", "http://127.0.0.1:9", "--token", "t"], None, None, tmp_path,
         **env)
    r = _run(["config", "get-contexts"], None, None, tmp_path, **env)
    assert re.search(r"^\*\s+lab\s", r.stdout, re.M), r.stdout
    r = _run(["get", "workloads"], None, None, tmp_path, **env)
    assert r.exit_code == 0 and r.stdout.startswith("NAME"), r.output
    r = _run(["--context", "other", "get", "workloads"], None, None, tmp_path, **env)
    assert r.exit_code == 1 and "cannot reach the Awan API at http://127.0.0.1:9" in r.output
    r = _run(["--context", "nope", "get", "workloads"], None, None, tmp_path, **env)
    assert r.exit_code == 1 and "context 'nope' is not in" in r.output
    assert _run(["config", "use-context", "other"], None, None, tmp_path, **env).exit_code == 0
    assert _run(["config", "current-context"], None, None, tmp_path, **env).stdout == "other\n"


def test_version_matches_the_package() -> None:
    r = runner.invoke(app, ["--version"])
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert r.exit_code == 0 and r.stdout == f"awan {pyproject['project']['version']}\n"
    assert __version__ == pyproject["project"]["version"]


def _commands(group, prefix=()):  # type: ignore[no-untyped-def]
    for name, cmd in getattr(group, "commands", {}).items():
        if getattr(cmd, "commands", None):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name)


def test_every_command_has_examples_and_help_names_env_vars() -> None:
    import typer.main

    group = typer.main.get_command(app)
    cmds = list(_commands(group))
    assert len(cmds) >= 25
    for c in cmds:
        r = runner.invoke(app, [*c, "--help"])
        assert r.exit_code == 0, (c, r.output)
        assert "Examples:" in r.stdout, f"`awan {' '.join(c)} --help` shows no examples"
    top = runner.invoke(app, ["--help"]).stdout
    for var in ("AWAN_URL", "AWAN_TOKEN", "AWAN_CONTEXT"):
        assert var in top
    assert "--install-completion" in top
    serve = runner.invoke(app, ["serve", "--help"]).stdout
    assert "--host" in serve and "AWAN_HOST" in serve and "0.0.0.0" in serve


def test_clouds_commands_say_how_to_start_clouds_instead_of_starting_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AWAN_CONFIG", raising=False)
    for args in (["offerings"], ["providers"],
                 ["plan", "-f", str(REPO / "examples" / "finetune-eu.yaml"), "--capacity", "live",
                  "--policies", str(REPO / "policies")]):     # its data class is defined there
        r = runner.invoke(app, args)
        assert r.exit_code == 1 and "awan mockclouds up" in r.output and "--mock" in r.output, (args, r.output)
        assert "embedded mock clouds on" not in r.output
