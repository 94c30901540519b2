"""Human-readable explanations: why a workload went where it went, or why it could not go anywhere."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from itertools import filterfalse
from types import MappingProxyType
from typing import Any

from controlplane.model.workload import TopologyDomain
from controlplane.placement.views import HOLE, ClassCandidates, Failure, Option, RejectionTails, WorkloadClass

_KIND_TEXT = MappingProxyType({
    "nothing-matches": "nothing matches: no offering passes the hard constraints",
    "no-capacity": "no capacity: every matching pool is short of free nodes",
    "no-quota": "no quota: capacity exists but quota headroom is too small",
    "cap": "cap: every option would break the provider share cap",
    "budget": "budget: the team's GPU budget would be exceeded",
})


def _terms(o: Option) -> str:
    c, m, h, loc, x = o.term_values
    last = "spread" if o.spreads else "fewerProviders"
    return f"cost {c:.2f}, committed {m:.2f}, health {h:.2f}, dataLocality {loc:.2f}, {last} {x:.2f}"


def _zones_and_types(o: Option) -> tuple[list[str], str]:
    """The option's zones (sorted) and capacity types ("/"-joined, sorted)."""
    takes = o.takes
    if len(takes) == 1:
        pv = takes[0].pv
        return [pv.pool.zone], pv.capacity_type
    return sorted({t.pv.pool.zone for t in takes}), "/".join(sorted({t.pv.capacity_type for t in takes}))


def describe_option(o: Option, wc: WorkloadClass, replica: int | None) -> str:
    if replica is None and o.text is not None:
        return o.text
    g = o.group
    zones, cts = _zones_and_types(o)
    nodes = sum(t.nodes for t in o.takes)
    head = f"replica {replica}: " if replica is not None else ""
    text = (f"{head}{g.provider}/{g.region} ({', '.join(zones)}) {nodes} x {g.it.name} {cts}, "
            f"${o.marginal:,.2f}/h marginal (${o.listed:,.2f}/h list), score {o.score:.3f} [{_terms(o)}]")
    if wc.domain == TopologyDomain.NVLINK:
        text += f"; nvlink: {g.units} domain(s) of {g.nodes_per_unit} nodes, each in one pool"
    elif wc.domain == TopologyDomain.CLUSTER:
        text += "; cluster: one pool (one placement group)"
    elif wc.domain == TopologyDomain.ZONE:
        text += "; zone: one zone"
    burns = sorted({t.commitment for t in o.takes if t.commitment and t.covered})
    if burns:
        text += f"; burns down {', '.join(burns)}"
    if replica is None:
        o.text = text        # the option's group belongs to wc's class: the text is the option's own
    return text


def runner_up(o: Option) -> dict[str, Any]:
    ru = o.runner_up_json
    if ru is None:
        g = o.group
        zones, cts = _zones_and_types(o)
        ru = o.runner_up_json = {
            "provider": g.provider, "region": g.region, "instanceType": g.it.name, "zones": zones,
            "capacityType": cts, "pricePerHour": round(o.marginal, 4), "score": round(o.score, 4),
            "terms": {k: round(v, 4) for k, v in o.terms.items()}}     # built once per option
    # a copy per decision: callers may change what they are given
    return {**ru, "zones": list(ru["zones"]), "terms": dict(ru["terms"])}


def placed_rejections(cc: ClassCandidates, best: Option, opts: list[Option], fails: Mapping[str, Failure],
                      seen: int) -> dict[str, str]:
    """provider/region -> why it lost to ``best``: its failure, else "outscored" by its best option among
    the runners-up, else (not reached by the search) its best possible score; plus the class's static
    rejections. Sorted by key."""
    tails = cc.tails
    if tails is None:
        tails = cc.tails = RejectionTails(cc.rejections, cc.groups)
    win = best.group.key
    score = f"{best.score:.3f}"
    base, holes = tails.base(seen, win, score)
    out = dict(base)
    # every key below is of a reached group, so already in ``out`` (a tail entry or a hole): assignments keep
    # the sorted order. Precedence: failure, then the first runner-up of that provider/region, then the tail.
    for o in reversed(opts[1:]):
        k = o.group.key
        if k != win:
            out[k] = _outscored(o, best, score, win)
    for k, f in fails.items():
        if k != win:
            out[k] = f.message
    for k in holes:
        if out[k] is HOLE:
            del out[k]
    return out


# The rule a failure's text starts with (gangs.py words them: "capacity: ...", "quota: ...", "cap: ...",
# "budget: ..."); tests/controlplane/placement/test_rule_counts.py holds them equal to the texts.
FAILURE_RULE = MappingProxyType({"no-capacity": "capacity", "no-quota": "quota", "cap": "cap", "budget": "budget"})

# (rule, how many provider/regions it ruled out, the first of them by key, its text), most first
RuleCount = tuple[str, int, str, str]


def placed_rule_counts(cc: ClassCandidates, best: Option, opts: list[Option], fails: Mapping[str, Failure],
                       seen: int) -> list[RuleCount]:
    """``RuleCounter()(placed_rejections(cc, best, opts, fails, seen))`` without building that map: the
    class-wide part's rules are counted once (cached beside it), then the decision's own entries (its
    runners-up and failures, a few) move their provider/regions between rules. Only each rule's example
    text is formatted. What `awan plan` writes by default for 10,000 decisions of ~100 rejections each."""
    tails = cc.tails
    if tails is None:
        tails = cc.tails = RejectionTails(cc.rejections, cc.groups)
    win = best.group.key
    score = f"{best.score:.3f}"
    key = (seen, win, score)
    base, _ = tails.base(seen, win, score)
    ruled = tails.rules.get(key)
    if ruled is None:
        ruled = tails.rules[key] = _ruled(base)
    rule_at, keys_of, base_counts = ruled
    # the decision's own entries, with placed_rejections' precedence: failures over runners-up
    own: dict[str, tuple[str, Callable[[], str]]] = {}
    for o in reversed(opts[1:]):
        k = o.group.key
        if k != win:
            tied = abs(o.score - best.score) <= 1e-9
            own[k] = ("tied" if tied else "outscored", partial(_outscored, o, best, score, win))
    for k, f in fails.items():
        if k != win:
            own[k] = (FAILURE_RULE[f.kind], f.text)
    return _merged_counts(base, rule_at, keys_of, base_counts, own)


def unplaced_rule_counts(cc: ClassCandidates, fails: Mapping[str, Failure]) -> list[RuleCount]:
    """``RuleCounter()`` over an unplaced decision's rejections (the class's static ones, then a failure per
    provider/region the search reached: _unplaced_explainer) without wording them: a refused workload
    carries a failure for every group of its class (tens, when the fleet is full), and only each rule's
    example is worded. The static part's rules are counted once per class."""
    static = cc.static_rules
    if static is None:
        base = {k: cc.rejections[k] for k in sorted(cc.rejections)}
        static = cc.static_rules = (base, *_ruled(base))
    base, rule_at, keys_of, base_counts = static
    own = {k: (FAILURE_RULE[f.kind], f.text) for k, f in fails.items()}
    return _merged_counts(base, rule_at, keys_of, base_counts, own)


def _ruled(base: Mapping[str, str]) -> tuple[dict[str, str], dict[str, list[str]], dict[str, int]]:
    """A rejections map sorted by key, counted: each entry's rule, each rule's keys (sorted, as ``base``
    is), each rule's count. Holes (entries a decision's own fill in) are left out."""
    rule_at = {k: rule_of(why) for k, why in base.items() if why is not HOLE}
    keys_of: dict[str, list[str]] = {}
    for k, r in rule_at.items():
        keys_of.setdefault(r, []).append(k)
    return rule_at, keys_of, {r: len(ks) for r, ks in keys_of.items()}


def _merged_counts(base: Mapping[str, str], rule_at: Mapping[str, str], keys_of: Mapping[str, list[str]],
                   base_counts: Mapping[str, int], own: Mapping[str, tuple[str, Callable[[], str]]]
                   ) -> list[RuleCount]:
    """The rules of ``base`` (a rejections map sorted by key, counted: ``rule_at``, ``keys_of``,
    ``base_counts``) with the decision's ``own`` entries (provider/region -> its rule, its text unworded)
    put over them, counted as RuleCounter counts the merged map."""
    counts = dict(base_counts)
    own_first: dict[str, str] = {}          # rule -> its first provider/region among the decision's own
    for k, (r, _) in own.items():
        old = rule_at.get(k)
        if old is not None:
            counts[old] -= 1
        counts[r] = counts.get(r, 0) + 1
        was = own_first.get(r)
        if was is None or k < was:
            own_first[r] = k
    out: list[tuple[int, str, str, str]] = []
    for r, n in counts.items():
        if n <= 0:
            continue
        first = None
        for k in keys_of.get(r, ()):
            if k not in own:
                first = k
                break
        k_own = own_first.get(r)
        if k_own is not None and (first is None or k_own < first):
            out.append((-n, r, k_own, own[k_own][1]()))
        else:
            assert first is not None
            out.append((-n, r, first, base[first]))
    out.sort()
    return [(r, -n, k, why) for n, r, k, why in out]


_UNREACHABLE = ("health:", "failover:")


def rule_of(why: str) -> str:
    """The rule a rejection names: the text before its first ':' (``location``, ``policy regions``,
    ``residency``, ``rule <name>``, ``capacity``, ``outscored``...)."""
    return why.split(":", 1)[0]


def group_rejections(rejections: Mapping[str, str]) -> list[tuple[str, list[str], str]]:
    """(rule, the provider/regions it ruled out, one example text) per rule, the rule that ruled out most
    first: what ``awan describe`` and ``awan plan`` print instead of one line per region."""
    by: dict[str, list[str]] = {}
    example: dict[str, str] = {}
    for k, why in rejections.items():
        r = rule_of(why)
        by.setdefault(r, []).append(k)
        example.setdefault(r, why)
    return [(r, sorted(keys), example[r]) for r, keys in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


class RuleCounter:
    """``group_rejections`` without the lists, for writers that summarise thousands of decisions (``awan
    plan``: about a million rejections for 10,000 workloads). Called with a decision's rejections, it gives
    (rule, how many provider/regions it ruled out, the first of them in the mapping's order, its text) per
    rule, the rule that ruled out most first (then by name), as group_rejections orders them.

    Most rejection texts recur (a class's static rejections are shared by its decisions), so each text's
    rule is remembered (bounded) and the work per decision is C-level maps, sets and a Counter."""

    LIMIT = 200_000

    __slots__ = ("_rule",)

    def __init__(self) -> None:
        self._rule: dict[str, str] = {}

    def __call__(self, rejections: Mapping[str, str]) -> list[tuple[str, int, str, str]]:
        whys = list(rejections.values())
        memo = self._rule
        new = set(filterfalse(memo.__contains__, whys))
        if new:
            if len(memo) + len(new) > self.LIMIT:
                memo.clear()
                new = set(whys)
            memo.update(zip(new, map(rule_of, new), strict=True))
        rules = list(map(memo.__getitem__, whys))
        keys = list(rejections)
        # a handful of rules per decision: counted and found with list methods (C), not a Counter (whose
        # count goes through dict-subclass methods per element)
        got = [(-rules.count(r), r, rules.index(r)) for r in dict.fromkeys(rules)]
        got.sort()
        return [(r, -n, keys[i], whys[i]) for n, r, i in got]


def deciding_rules(rejections: Mapping[str, str], stages: Mapping[str, int]) -> list[str]:
    """One line per provider: the rule that shut it out. Of a provider's regions, the one that got furthest
    through the rules (``stages``) names it: the workload passed every earlier rule there, so this is the
    one that decided (a shape mismatch elsewhere decided nothing). Providers the workload's own filters
    (``gpu:``, ``location:``) shut out come last: they say only that it asked for something else there;
    then furthest first."""
    best: dict[str, tuple[int, str, str]] = {}
    for k, why in rejections.items():
        prov = k.split("/", 1)[0]
        st = stages.get(k, 0)
        if prov not in best or st > best[prov][0]:
            best[prov] = (st, k, why)
    lines = []
    def order(kv: tuple[str, tuple[int, str, str]]) -> tuple[bool, int, str]:
        return (kv[1][2].startswith(("gpu:", "location:")), -kv[1][0], kv[0])

    for prov, (_, k, why) in sorted(best.items(), key=order):
        same = sum(1 for k2, w2 in rejections.items()
                   if k2 != k and k2.split("/", 1)[0] == prov and rule_of(w2) == rule_of(why))
        more = f" (and {same} more {prov} region{'s' if same > 1 else ''} by the same rule)" if same else ""
        lines.append(f"{k}: {why}{more}")
    return lines


def _outscored(o: Option, best: Option, score: str, win: str) -> str:
    """Why a runner-up lost: a lower score, or at an exact tie what broke it (placer._rank: the lower
    marginal price, then fewer nodes, then provider/region/type name order). Scores that differ beyond what 3 decimals show
    get the digits that tell them apart, never "1.237 < winner 1.237"."""
    if abs(o.score - best.score) <= 1e-9:
        by = "the lower price" if o.marginal > best.marginal + 1e-9 else \
            "fewer nodes" if o.group.need_nodes > best.group.need_nodes else "name order"
        return f"tied: {o.score:.3f} = winner {score} ({win}); the tie went to {by}"
    mine = f"{o.score:.3f}"
    if mine == score:
        mine, score = f"{o.score:.6f}", f"{best.score:.6f}"
    return f"outscored: {mine} < winner {score} ({win})"


def unplaced_reasons(kind: str, fails: Mapping[str, Failure], rejections: Mapping[str, str],
                     replica: int | None = None, examples: int = 3,
                     stages: Mapping[str, int] | None = None) -> list[str]:
    head = _KIND_TEXT.get(kind, kind)
    if kind == "nothing-matches" and not fails:
        deciding = deciding_rules(rejections, stages or {})
        down = [line.split("/", 1)[0] for line in deciding if line.split(": ", 1)[1].startswith(_UNREACHABLE)]
        if not rejections:
            head = "providers unreachable: no provider reported capacity to place against"
        elif deciding and deciding[0].split(": ", 1)[1].startswith(_UNREACHABLE):
            # the furthest any pool got was the health/failover rule: the workload fits there but it is down
            head = (f"providers unreachable: {', '.join(down)} could serve it but "
                    f"{'is' if len(down) == 1 else 'are'} down or blocked after failures")
        return [head, *deciding]
    if replica is not None:
        head += f" (for replica {replica}; a workload is placed whole or not at all)"
    out = [head]
    if fails:
        # worded only for the examples shown: a refused workload may carry a failure for every group
        same = [(k, f) for k, f in sorted(fails.items()) if f.kind == kind][:examples]
        out.extend(f"{k}: {f.message}" for k, f in same)
    else:
        out.extend(f"{k}: {why}" for k, why in _telling(rejections, examples))
    return out


def _telling(rejections: Mapping[str, str], n: int) -> list[tuple[str, str]]:
    """``n`` rejections that explain the most. The workload's own filters (``gpu:``, then ``location:``) say
    only that it asked for something else there, so policy and capacity rules come first; and one provider
    each before a second from the same provider."""
    def rank(kv: tuple[str, str]) -> tuple[int, str]:
        return (2 if kv[1].startswith("location:") else 1 if kv[1].startswith("gpu:") else 0, kv[0])

    ordered = sorted(rejections.items(), key=rank)
    picked: list[tuple[str, str]] = []
    seen: set[str] = set()
    for k, why in ordered:
        if len(picked) < n and k.split("/", 1)[0] not in seen:
            picked.append((k, why))
            seen.add(k.split("/", 1)[0])
    for k, why in ordered:
        if len(picked) >= n:
            break
        if (k, why) not in picked:
            picked.append((k, why))
    return picked
