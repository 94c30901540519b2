"""The README is a contract: every command in its ``bash`` blocks is run, in order and verbatim, on a fresh
copy of the repository (tracked files only, a fresh HOME, no AWAN_* variables), as a new user would.

``make run`` keeps serving, so it runs in the background until it prints that Awan is serving (the time
that takes is printed, not asserted: speed is measured in bench/); the next block runs in a second shell,
as the README says, with no export; at the end the service gets Ctrl-C and must say it stopped. ``make
test`` is not run: it is this suite. The copy shares this checkout's .venv (a symlink), which is what
``make`` would have created, and is made older than the venv's install stamp so ``make`` keeps it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("make") is None or not (REPO / ".venv" / ".installed-run").exists(),
                                 reason="needs make and an installed .venv (make install)")]


def _blocks() -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", (REPO / "README.md").read_text(), re.M | re.S)


def _fresh_copy(dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / ".venv").symlink_to(REPO / ".venv")
    stamps = [(REPO / ".venv" / s).stat().st_mtime for s in (".installed", ".installed-run")]
    os.utime(dest / "pyproject.toml", (min(stamps) - 60, min(stamps) - 60))


class Background:
    """A long-running command whose output is collected as it comes."""

    def __init__(self, line: str, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(["bash", "-c", line], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.out: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line)

    def text(self) -> str:
        return "".join(self.out)

    def wait_for(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text(), re.M):
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode} before {pattern!r}:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} within {timeout:.0f} s:\n{self.text()[-3000:]}")
            time.sleep(0.2)

    def interrupt(self, timeout: float) -> int:
        os.killpg(self.proc.pid, signal.SIGINT)   # Ctrl-C in its terminal
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            # what it was doing when it did not stop: the step it was in is the last thing it printed
            raise AssertionError(f"Ctrl-C did not stop it within {timeout:.0f} s:\n{self.text()[-3000:]}") from None


def _diagnose(clone: Path, env: dict[str, str]) -> str:
    """What a person would look at when a README step times out: workloads with their messages, queues,
    recent events. Printed with the failure, so a failure in CI explains itself."""
    out = []
    for cmd in ("get workloads -o wide", "get queues", "get events"):
        done = subprocess.run(["bash", "-c", f".venv/bin/awan {cmd} | tail -n 60"], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=120)
        out.append(f"$ awan {cmd}\n{done.stdout}{done.stderr}")
    return "\n".join(out)


def test_every_readme_command_works_verbatim_on_a_fresh_copy(tmp_path: Path) -> None:
    clone, home = tmp_path / "clone", tmp_path / "home"
    clone.mkdir()
    home.mkdir()
    _fresh_copy(clone)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWAN_")}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", COLUMNS="100")
    blocks = _blocks()
    assert len(blocks) >= 2 and "make run" in blocks[0]
    server: Background | None = None
    outputs: list[str] = []
    try:
        for block in blocks:
            if re.search(r"^make (run|test)\b", block, re.M):
                for line in filter(str.strip, block.splitlines()):
                    if line.startswith("make test"):
                        continue   # this suite itself
                    assert line.startswith("make run"), f"unexpected line beside make run/test: {line}"
                    t0 = time.monotonic()
                    server = Background(line, clone, env)
                    server.wait_for(r"^tokens\s+cluster-admin", timeout=600)
                    print(f"make run: serving after {time.monotonic() - t0:.1f} s (fresh copy, .venv shared)")
                continue
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=clone, env=env,
                                  capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"README block failed ({done.returncode}):\n{block}\n" \
                                         f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}\n" \
                                         f"state of the service then:\n{_diagnose(clone, env)}"
            outputs.append(done.stdout)
        walk = "\n".join(outputs)
        assert "workload/my-first-finetune created" in walk and "workload/my-first-finetune placed" in walk
        assert re.search(r"^my-first-finetune\s+research\s+(Placed|Provisioning|Running)", walk, re.M), walk
        assert "Why:" in walk and re.search(r"^awan_[0-9a-f]{12}_", walk, re.M)
        assert "my laptop" in walk and "workload/my-first-finetune deleted" in walk
        assert server is not None
        text = server.text()
        for line in text.splitlines():   # URLs and tokens are whole lines, never wrapped
            if line.startswith(("dashboard ", "API ")):
                assert re.fullmatch(r"(dashboard|API)\s+http://127\.0\.0\.1:\d+/\S+", line), line
        assert (home / ".config" / "awan" / "client.yaml").stat().st_mode & 0o077 == 0
    finally:
        if server is not None and server.proc.poll() is None:
            server.interrupt(timeout=180)
    assert server is not None
    assert "stopping the mock clouds" in server.text() and "stopped." in server.text(), server.text()[-2000:]
