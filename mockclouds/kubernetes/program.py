"""What a simulated container does: how long it runs, how it exits and what it prints.

Read, in order of precedence, from pod annotations and then from the container's command (see
docs/mock-clusters.md):

    mock.awan.dev/duration-seconds   "30", "0.5" or "inf": run time once started (default: from the
                                     command; else "inf" for restartPolicy Always, "0" otherwise)
    mock.awan.dev/exit-code          "0".."255" (default: from the command; else 0)
    mock.awan.dev/exit-code-by-index "2=1,5=137": per JOB_COMPLETION_INDEX overrides (indexed Jobs)
    mock.awan.dev/start-seconds      time from binding to Running (image pull; default 0)
    mock.awan.dev/ready-seconds      time from Running to Ready (default readinessProbe.initialDelaySeconds)
    mock.awan.dev/log                extra lines printed once started (newline separated, $VARS expanded)

From a command such as ``["sh", "-c", "echo rank=$RANK; sleep 5; exit 3"]`` the statements ``sleep N``
(``infinity`` too), ``exit K``, ``false`` and ``echo ...`` are understood; anything else (``python
train.py``) is taken to succeed instantly and prints nothing.
"""

from __future__ import annotations

import contextlib
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ANN = "mock.awan.dev/"
A_DURATION, A_EXIT, A_EXIT_BY_INDEX = ANN + "duration-seconds", ANN + "exit-code", ANN + "exit-code-by-index"
A_START, A_READY, A_LOG = ANN + "start-seconds", ANN + "ready-seconds", ANN + "log"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"

_SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/bash", "/usr/bin/env"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Program:
    start_s: float
    duration_s: float          # math.inf: runs until deleted or its node is lost
    exit_code: int
    ready_s: float
    lines: tuple[str, ...] = field(default=())     # printed once started, variables not yet expanded


class ProgramError(ValueError):
    """An annotation the test wrote wrong: the pod fails to start with this message."""


def expand(text: str, env: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def _script(container: Mapping[str, Any]) -> str | None:
    cmd = [str(x) for x in (container.get("command") or []) + (container.get("args") or [])]
    if not cmd:
        return None
    if len(cmd) >= 3 and cmd[0] in _SHELLS and cmd[1] in ("-c", "-ec", "-xc", "-exc", "-lc"):
        return cmd[2]
    return shlex.join(cmd)


@dataclass
class _Parsed:
    duration: float | None = None
    exit_code: int | None = None
    lines: list[str] = field(default_factory=list)


def _parse_script(script: str) -> _Parsed:
    out = _Parsed()
    try:
        lex = shlex.shlex(script.replace("\n", ";"), posix=True, punctuation_chars=";&|")
        lex.whitespace_split = True
        tokens = list(lex)
    except ValueError:          # unbalanced quotes: nothing understood
        return out
    stmts: list[list[str]] = [[]]
    for tok in tokens:
        if tok and set(tok) <= set(";&|"):
            stmts.append([])
        else:
            stmts[-1].append(tok)
    for words in (s for s in stmts if s):
        head = words[0]
        if head == "sleep" and len(words) > 1:
            arg = words[1]
            if arg in ("infinity", "inf"):
                out.duration = math.inf
            else:
                with contextlib.suppress(ValueError):
                    out.duration = (out.duration or 0.0) + float(arg.rstrip("s"))
        elif head == "exit":
            try:
                out.exit_code = int(words[1]) if len(words) > 1 else 0
            except ValueError:
                out.exit_code = 1
            break
        elif head == "false":
            out.exit_code = 1
            break
        elif head == "echo":
            out.lines.append(" ".join(w for w in words[1:] if w not in ("-n", "-e")))
    return out


def _float(ann: Mapping[str, str], key: str, default: float) -> float:
    raw = ann.get(key)
    if raw is None:
        return default
    try:
        v = math.inf if raw.strip().lower() in ("inf", "infinity", "forever") else float(raw)
    except ValueError:
        raise ProgramError(f"annotation {key}: {raw!r} is not a number of seconds") from None
    if v < 0:
        raise ProgramError(f"annotation {key}: {raw!r} must not be negative")
    return v


def _exit_code(ann: Mapping[str, str], index: str | None, default: int) -> int:
    code = default
    raw = ann.get(A_EXIT)
    try:
        if raw is not None:
            code = int(raw)
        by_index = ann.get(A_EXIT_BY_INDEX)
        if by_index and index is not None:
            for part in by_index.split(","):
                k, _, v = part.partition("=")
                if k.strip() == index:
                    code = int(v)
    except ValueError:
        raise ProgramError(f"annotation {A_EXIT} / {A_EXIT_BY_INDEX}: exit codes must be integers") from None
    if not 0 <= code <= 255:
        raise ProgramError(f"annotation {A_EXIT}: exit code {code} is outside 0..255")
    return code


def program_of(pod: Mapping[str, Any]) -> Program:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    ann: Mapping[str, str] = meta.get("annotations") or {}
    containers = spec.get("containers") or [{}]
    main = containers[0]
    script = _script(main)
    parsed = _parse_script(script) if script is not None else _Parsed()
    restart = spec.get("restartPolicy") or "Always"
    # Without a sleep: a server (restartPolicy Always, no exit) runs until stopped, anything else ends at once.
    default_duration = parsed.duration if parsed.duration is not None else (
        math.inf if restart == "Always" and parsed.exit_code is None else 0.0)
    probe = main.get("readinessProbe") or {}
    lines = list(parsed.lines)
    if ann.get(A_LOG):
        lines += ann[A_LOG].splitlines()
    return Program(
        start_s=_float(ann, A_START, 0.0),
        duration_s=_float(ann, A_DURATION, default_duration),
        exit_code=_exit_code(ann, ann.get(INDEX_ANNOTATION), parsed.exit_code or 0),
        ready_s=_float(ann, A_READY, float(probe.get("initialDelaySeconds") or 0)),
        lines=tuple(lines),
    )
