"""Malformed and hostile inputs for the API: manifests, policy documents and CEL rules. Each entry is
(label, path, body); every one must get a 4xx with a one-line message and change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

GOOD = ("apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {name: ok, team: research}\n"
        "spec: {kind: inference, gpus: {model: H100, count: 8, perNode: 8}}\n")


def _policy(expr: str) -> str:
    return ("apiVersion: awan.dev/v1alpha1\nkind: PlacementPolicy\nmetadata: {name: hostile}\nspec:\n"
            f"  rules:\n    - name: r\n      expr: {expr!r}\n      message: m\n")


def manifests() -> Iterator[tuple[str, str, bytes]]:
    w = "/v1/workloads"
    yield "empty body", w, b""
    yield "yaml syntax error", w, b"apiVersion: [unclosed\nkind: GPUWorkload\n"
    yield "not a mapping", w, b"- just\n- a list\n"
    yield "scalar document", w, b"42\n"
    yield "wrong kind", w, GOOD.replace("GPUWorkload", "Pod").encode()
    yield "wrong apiVersion", w, GOOD.replace("awan.dev/v1alpha1", "v1").encode()
    yield "missing spec", w, b"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {name: x}\n"
    yield "negative gpus", w, GOOD.replace("count: 8", "count: -8").encode()
    yield "zero gpus", w, GOOD.replace("count: 8", "count: 0").encode()
    yield "absurd gpus", w, GOOD.replace("count: 8", "count: 99999999999999999999").encode()
    yield "string gpus", w, GOOD.replace("count: 8", "count: lots").encode()
    yield "name not DNS-1123", w, GOOD.replace("name: ok", "name: 'Bad Name!'").encode()
    yield "name 300 chars", w, GOOD.replace("name: ok", f"name: {'a' * 300}").encode()
    yield "unknown field", w, GOOD.replace("kind: inference", "kind: inference, hack: 1").encode()
    yield "deep nesting (flow)", w, b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n"
    yield "deep nesting (block)", w, ("spec:\n" + "".join(f"{' ' * (i + 1)}k{i}:\n" for i in range(400))).encode()
    yield "billion laughs", w, (b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
                                + b"".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, "
                                           f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
                                           f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n".encode()
                                           for i in range(8)))
    yield "huge payload (2 MiB)", w, GOOD.encode() + b"# " + b"x" * (2 * 1024 * 1024) + b"\n"
    yield "10k documents", w, ("\n---\n".join([GOOD] * 10_000)).encode()
    yield "not UTF-8", w, b"\xff\xfe\x00garbage"
    yield "NUL bytes", w, GOOD.replace("name: ok", "name: \"o\\0k\"").encode()
    yield "python object tag", w, b"!!python/object/apply:os.system ['echo pwned']\n"
    # The red team's findings (issue 13): each was a 201 or a 500.
    yield "name with a trailing newline", w, GOOD.replace("name: ok", 'name: "ok\\n"').encode()
    yield "team with a trailing newline", w, GOOD.replace("team: research", 'team: "research\\n"').encode()
    yield "label key with a newline", w, GOOD.replace("team: research", 'team: research, labels: {"a\\n": b}').encode()
    for field, value in (("count: 8", "count: 10000000000000000000"), ("count: 8", "count: 1e30"),
                         ("count: 8, perNode: 8", "count: 4611686018427387904"),
                         ("perNode: 8}", "perNode: 8}, replicas: 4611686018427387904"),
                         ("kind: inference", "kind: inference, priority: 10000000000000000000"),
                         ("kind: inference", "kind: inference, priority: -10000000000000000000"),
                         ("kind: inference", "kind: inference, replicas: 4, maxPricePerGpuHour: .inf")):
        yield f"out of range: {value[:40]}", w, GOOD.replace(field, value).encode()
    yield "second document bad (all or nothing)", w, (GOOD + "---\n" + GOOD.replace("name: ok", "name: ok2")
                                                       .replace("count: 8", "count: -1")).encode()


def policies() -> Iterator[tuple[str, str, bytes]]:
    p = "/v1/policies"
    yield "policy yaml syntax error", p, b"spec: [\n"
    yield "policy wrong kind", p, _policy("true").replace("PlacementPolicy", "Nope").encode()
    yield "CEL syntax error", p, _policy("workload.gpus >").encode()
    yield "CEL unknown function", p, _policy("nosuchfn(candidate.provider)").encode()
    yield "CEL misspelt field", p, _policy("candidate.gpuModle == 'H100'").encode()
    yield "CEL not a condition", p, _policy("candidate.gpusPerNode * 2").encode()
    ten = "[" + ",".join(str(i) for i in range(10)) + "]"
    yield "CEL short nested comprehensions (10^6 iterations)", p, _policy(
        f"{ten}.all(a, {ten}.all(b, {ten}.all(c, {ten}.all(d, {ten}.all(e, {ten}.all(f, a+b+c+d+e+f >= 0))))))"
    ).encode()
    yield "CEL very long expression", p, _policy(" || ".join(["workload.gpus > 1"] * 400)).encode()
    yield "CEL deep parentheses", p, _policy("(" * 1500 + "true" + ")" * 1500).encode()
    yield "CEL comprehension bomb", p, _policy(
        "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, "
        "[1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0))))" + " && true" * 300).encode()
    t20 = "[" + ",".join(str(i) for i in range(20)) + "]"
    yield "CEL bomb hidden by a space after the dot", p, _policy(
        f"{t20}. all(a, {t20}. all(b, {t20}. all(c, {t20}. all(d, {t20}. all(e, {t20}. all(f, "
        "a+b+c+d+e+f >= 0))))))").encode()
    commented = f"{t20}.//x\n all(a, {t20}.//x\n all(b, {t20}.//x\n all(c, {t20}.//x\n all(d, a+b+c+d >= 0))))"
    yield "CEL bomb hidden by a comment", p, (
        "apiVersion: awan.dev/v1alpha1\nkind: PlacementPolicy\nmetadata: {name: hostile}\n"
        f"spec: {{rules: [{{name: r, expr: {json.dumps(commented)}}}]}}\n").encode()
    yield "policy integer out of range", p, (
        b"apiVersion: awan.dev/v1alpha1\nkind: PlacementPolicy\nmetadata: {name: big}\n"
        b"spec: {caps: {teams: {research: {gpus: 100000000000000000000}}}}\n")
    yield "policy huge payload", p, b"# " + b"y" * (2 * 1024 * 1024)
    yield "policy deep nesting", p, b"spec: " + b"{a: " * 3000 + b"1" + b"}" * 3000 + b"\n"


def all_inputs() -> list[tuple[str, str, bytes]]:
    return [*manifests(), *policies()]
