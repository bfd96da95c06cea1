"""Rule evaluation, pure: (rules, state, block) -> alerts and the state after the block.

Nothing here touches Redis, the network or the wall clock: time is the block's ``as_of``
(stream time), so the same stream always gives the same alerts (replays, test-rules, the
replicas). The state is plain data (msgpack-able dicts): the newest block of each engine
(its data, kind, as_of, freshness limit) and one small record per (rule, subject) - the
zone, label or reference seen last, a debouncing candidate, when it last alerted.

``Evaluator.evaluate`` never changes the state it is given; ``Evaluation.apply`` does, so a
caller can deliver first and commit after (services.alerts.main).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from services.alerts.rules import (
    ENGINES,
    AnyRule,
    BandRule,
    BreachRule,
    FallbackRule,
    LabelRule,
    ShiftRule,
    StaleRule,
    parse_quiet,
    split_path,
)
from shared.contract.paths import number, value_at
from shared.contract.schemas import SignalBlock
from shared.market.calendar import next_bar_due

IST = timezone(timedelta(hours=5, minutes=30))
DETAIL_CHARS = 240  # longest reason text an alert carries
State = dict[str, Any]  # {"latest": {engine: {...}}, "rules": {"rule|subject": {...}}}


def empty_state() -> State:
    return {"latest": {}, "rules": {}}


@dataclass(frozen=True)
class Alert:
    """One alert: what changed (rule, subject, from -> to), when (the block's as_of), in
    words (``text``), the value, and whether quiet hours hold it back from being pushed."""

    rule: str
    kind: str
    severity: str
    subject: str
    transition: tuple[str, str]
    engine: str
    as_of: int
    value: float | str | None
    text: str
    quiet: bool = False

    @property
    def key(self) -> str:
        """Deterministic identity: rule, subject, transition, the block's as_of."""
        return f"{self.rule}|{self.subject}|{self.transition[0]}->{self.transition[1]}|{self.as_of}"

    @property
    def id(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:20]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "subject": self.subject,
            "from": self.transition[0],
            "to": self.transition[1],
            "engine": self.engine,
            "as_of": self.as_of,
            "as_of_ist": ist(self.as_of),
            "value": self.value,
            "text": self.text,
            "quiet": self.quiet,
        }


@dataclass
class Evaluation:
    alerts: list[Alert] = field(default_factory=list)
    rule_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest: tuple[str, dict[str, Any]] | None = None
    skipped: str | None = None  # why the block changed nothing (older than the engine's newest)

    def apply(self, state: State) -> None:
        """The state after the block (in place)."""
        if self.latest is not None:
            state["latest"][self.latest[0]] = self.latest[1]
        state["rules"].update(self.rule_states)


def ist(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(IST).strftime("%Y-%m-%d %H:%M IST")


def in_quiet_hours(span: str | None, epoch_s: int) -> bool:
    """Whether the IST time of ``epoch_s`` lies in ``HH:MM-HH:MM`` (which may wrap midnight)."""
    if span is None:
        return False
    start, end = parse_quiet(span)
    minute = (epoch_s + 19_800) // 60 % 1440
    return start <= minute < end if start < end else minute >= start or minute < end


def fmt(value: float, unit: str = "") -> str:
    text = f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4g}"
    return f"{text} {unit}".rstrip()


# Zones with hysteresis (a Schmitt trigger) ---------------------------------------------------
def zone_of(value: float, low: float | None, high: float | None) -> str:
    if high is not None and value > high:
        return "above"
    if low is not None and value < low:
        return "below"
    return "inside"


def next_zone(
    previous: str | None, value: float, low: float | None, high: float | None, h: float
) -> str:
    """The zone after ``value``: entering ``above`` takes a value over ``high``; leaving it
    takes one at or under ``high - h`` (likewise ``below`` and ``low + h``), so a value
    hovering at an edge changes the zone once, not on every block."""
    raw = zone_of(value, low, high)
    if previous == "above" and high is not None and value > high - h:
        return "above"
    if previous == "below" and low is not None and value < low + h:
        return "below"
    return raw


def debounce(
    previous: Mapping[str, Any], label: str, blocks: int
) -> tuple[dict[str, Any], str | None]:
    """Label debouncing: a new label counts once seen ``blocks`` times in a row (<= 1: at
    once). Returns the record after ``label`` and the label accepted by it (None: no change
    of the accepted label)."""
    current = previous.get("label")
    if current is None:
        return {**previous, "label": label, "cand": None, "n": 0}, None
    if label == current:
        return {**previous, "cand": None, "n": 0}, None
    count = previous.get("n", 0) + 1 if previous.get("cand") == label else 1
    if count >= max(1, blocks):
        return {**previous, "label": label, "cand": None, "n": 0}, label
    return {**previous, "cand": label, "n": count}, None


# What each kind reports ---------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    subject: str
    record: dict[str, Any]  # the (rule, subject) state after this block
    transition: tuple[str, str] | None = None
    value: float | str | None = None
    text: str = ""


def contemporaneous(engines: Iterable[str], times: Mapping[str, tuple[int, int]]) -> bool:
    """Whether the newest blocks of ``engines`` are close enough in time to be compared:
    their as_of differ by no more than the largest of their freshness limits."""
    known = [times[e] for e in engines if e in times]
    if len(known) < 2:
        return True
    stamps = [t for t, _ in known]
    return max(stamps) - min(stamps) <= max(limit for _, limit in known)


BREACH_POINTS = ("seller", "breach_probabilities", "points")


class Compiled:
    """A rule with its paths split once (the hot path only looks values up)."""

    def __init__(self, rule: AnyRule) -> None:
        self.rule = rule
        self.reads = rule.reads()
        # a rule comparing values of several engines (not stale/fallback, which judge each)
        self.cross = len(self.reads) > 1 and not isinstance(rule, StaleRule | FallbackRule)
        self.paths: dict[str, tuple[str | int, ...]] = {}
        for attr in ("value", "low_path", "high_path", "path", "detail_path"):
            text = getattr(rule, attr, None)
            if text:
                self.paths[attr] = split_path(text)
        # what it looks up in the world (the newest block of every engine)
        self.world_paths = [*self.paths.values(), *([BREACH_POINTS] * (rule.kind == "breach"))]


Tree = dict[str, Any]  # a key's subtree is kept whole where the tree holds True


def path_tree(paths: Iterable[tuple[str | int, ...]]) -> Tree:
    """The keys along ``paths`` (to their first list index: that list is kept whole)."""
    tree: Tree = {}
    for path in paths:
        node = tree
        keys = [str(p) for p in itertools.takewhile(lambda p: isinstance(p, str), path)]
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if child is True:
                break
            node = child
        else:
            if keys:
                node[keys[-1]] = True
    return tree


def project(data: Any, tree: Tree | bool) -> Any:
    """``data`` with only the keys of ``tree`` (the values rules read of it)."""
    if isinstance(tree, bool) or not isinstance(data, dict):
        return data
    return {k: project(data[k], sub) for k, sub in tree.items() if k in data}


def _band(c: Compiled, world: Mapping[str, Any], prev: Mapping[str, Any]) -> list[Change]:
    rule = c.rule
    assert isinstance(rule, BandRule)
    value = number(value_at(world, c.paths["value"]))
    paths = c.paths
    low = rule.low if "low_path" not in paths else number(value_at(world, paths["low_path"]))
    high = rule.high if "high_path" not in paths else number(value_at(world, paths["high_path"]))
    if value is None or (low is None and high is None):
        return []
    before = prev.get("zone")
    after = next_zone(before, value, low, high, rule.hysteresis)
    record = {**prev, "zone": after}
    subject = rule.value
    if before is None or after == before or after not in rule.notify_on:
        return [Change(subject, record)]
    label, unit = rule.label or rule.value, rule.unit
    if after == "above" and high is not None:
        text = f"{label} {fmt(value, unit)} rose above {rule.high_label} {fmt(high, unit)}"
    elif after == "below" and low is not None:
        text = f"{label} {fmt(value, unit)} fell below {rule.low_label} {fmt(low, unit)}"
    else:
        edges = " and ".join(
            f"{name} {fmt(edge, unit)}"
            for name, edge in ((rule.low_label, low), (rule.high_label, high))
            if edge is not None
        )
        text = f"{label} {fmt(value, unit)} is back inside ({edges})"
    return [Change(subject, record, (before, after), round(value, 4), f"{text} (was {before})")]


def _breach(c: Compiled, world: Mapping[str, Any], prev: Mapping[str, Any]) -> list[Change]:
    rule = c.rule
    assert isinstance(rule, BreachRule)
    points = value_at(world, ("seller", "breach_probabilities", "points"))
    if not isinstance(points, list):
        return []
    side = [p for p in points if isinstance(p, dict) and p.get("side") == rule.side]
    if rule.strike is not None:
        chosen = next((p for p in side if number(p.get("strike")) == rule.strike), None)
        subject = f"breach {rule.side} {rule.strike:g}"
    else:
        wanted = rule.distance_pct or 0.0
        scored = [
            (abs((number(p.get("distance_pct")) or 1e9) - wanted), i) for i, p in enumerate(side)
        ]
        chosen = side[min(scored)[1]] if scored else None
        subject = f"breach {rule.side} {wanted:g}%"
    prob = number(chosen.get("probability")) if chosen else None
    if chosen is None or prob is None:
        return []
    before = prev.get("zone")
    after = next_zone(before, prob, None, rule.threshold, rule.hysteresis)
    record = {**prev, "zone": after}
    if before is None or after == before or (after == "inside" and not rule.notify_recovery):
        return [Change(subject, record)]
    strike = number(chosen.get("strike")) or 0.0
    away = number(chosen.get("distance_pct")) or 0.0
    where = f"strike {strike:,.0f} ({away:.2f}% {rule.side} spot)"
    verb = "rose to" if after == "above" else "fell back to"
    text = f"breach probability at {where} {verb} {prob:.1%} (threshold {rule.threshold:.0%})"
    return [Change(subject, record, (before, after), round(prob, 4), text)]


def _label(c: Compiled, world: Mapping[str, Any], prev: Mapping[str, Any]) -> list[Change]:
    rule = c.rule
    assert isinstance(rule, LabelRule)
    raw = value_at(world, c.paths["path"])
    if raw is None or isinstance(raw, dict | list):
        return []
    record, accepted = debounce(prev, str(raw), int(rule.hysteresis))
    before = prev.get("label")
    if accepted is None or before is None or (rule.to is not None and accepted not in rule.to):
        return [Change(rule.path, record)]
    text = f"{rule.label or rule.path} changed from {before} to {accepted}"
    if "detail_path" in c.paths:
        detail = value_at(world, c.paths["detail_path"])
        if isinstance(detail, list):
            detail = "; ".join(str(d) for d in detail)
        if detail:
            text += f": {detail}"
    return [Change(rule.path, record, (str(before), accepted), accepted, text)]


def _shift(c: Compiled, world: Mapping[str, Any], prev: Mapping[str, Any]) -> list[Change]:
    rule = c.rule
    assert isinstance(rule, ShiftRule)
    value = number(value_at(world, c.paths["path"]))
    if value is None:
        return []
    ref = prev.get("ref")
    if ref is None:
        return [Change(rule.path, {**prev, "ref": value})]
    moved = value - ref
    enough = (
        abs(moved) >= rule.min_change
        if rule.min_change is not None
        else ref != 0 and abs(moved) / abs(ref) * 100 >= (rule.min_change_pct or 0.0)
    )
    if not enough:
        return [Change(rule.path, dict(prev))]
    unit = rule.unit
    pct = f", {moved / ref:+.1%}" if ref else ""
    text = (
        f"{rule.label or rule.path} moved from {fmt(ref, unit)} to {fmt(value, unit)} "
        f"({moved:+,.2f}{pct})"
    )
    transition = (f"{ref:g}", f"{value:g}")
    return [Change(rule.path, {**prev, "ref": value}, transition, round(value, 4), text)]


def heuristic_groups(data: Mapping[str, Any], degraded: Iterable[str]) -> list[str]:
    """The signal groups (and sub-groups one level down) whose provenance is a heuristic."""
    found = []
    for name, group in data.items():
        if not isinstance(group, dict):
            continue
        prov = group.get("provenance")
        if isinstance(prov, dict) and prov.get("source") == "heuristic":
            found.append(name)
            continue
        for sub, inner in group.items():
            if isinstance(inner, dict):
                p = inner.get("provenance")
                if isinstance(p, dict) and p.get("source") == "heuristic":
                    found.append(f"{name}.{sub}")
    if any(True for _ in degraded) and not found:
        found.append("degraded")
    return sorted(found)


def _fallback(c: Compiled, block: SignalBlock, prev: Mapping[str, Any]) -> list[Change]:
    rule = c.rule
    assert isinstance(rule, FallbackRule)
    groups = heuristic_groups(block.data, block.degraded)
    record, accepted = debounce(prev, ",".join(groups), int(rule.hysteresis))
    before = prev.get("label")
    subject = f"{block.engine} fallbacks"
    if accepted is None or before is None:
        return [Change(subject, record)]
    old, new = set(filter(None, before.split(","))), set(groups)
    parts = []
    if new - old:
        parts.append(f"{block.engine}: {', '.join(sorted(new - old))} fell back to a heuristic")
        if block.degraded:
            why = "; ".join(block.degraded)
            parts.append(why if len(why) <= DETAIL_CHARS else why[: DETAIL_CHARS - 1] + "…")
    if old - new:
        if not rule.notify_recovery and not new - old:
            return [Change(subject, record)]
        parts.append(f"{block.engine}: {', '.join(sorted(old - new))} no longer on a heuristic")
    to = "heuristic" if new else "models"
    transition = (before or "models", accepted or "models")
    return [Change(subject, record, transition, to, "; ".join(parts))]


def _stale(
    c: Compiled, block: SignalBlock, latest: Mapping[str, Any], prev_of: Mapping[str, Any]
) -> list[Change]:
    rule = c.rule
    assert isinstance(rule, StaleRule)
    now = block.as_of
    out = []
    for engine in rule.engines:
        subject = f"{engine} data"
        prev = prev_of.get(f"{rule.name}|{subject}", {})
        before = prev.get("zone", "fresh")
        if engine == block.engine:
            if before == "stale":
                last = number(prev.get("last_as_of")) or now
                gap = (now - int(last)) // 60
                text = f"{engine} data flowing again: block of {ist(now)} after {gap} min"
                if rule.notify_recovery:
                    out.append(Change(subject, {"zone": "fresh"}, ("stale", "fresh"), now, text))
                else:
                    out.append(Change(subject, {"zone": "fresh"}))
            continue
        newest = latest.get(engine)
        if newest is None or before == "stale":
            continue
        due = _next_bar_due(newest["kind"], newest["as_of"]) + newest["limit"]
        # ... and overdue in processing time too (the blocks' computed_at): in a replay run
        # as fast as possible one engine may be hours of data ahead of another, not stale
        lag_ms = block.computed_at - newest.get("computed_at", block.computed_at)
        if now > due and lag_ms > newest["limit"] * 1000:
            mins = (now - newest["as_of"]) // 60
            text = (
                f"{engine} data stale: its newest block is of {ist(newest['as_of'])}, "
                f"{mins} min before this {block.engine} block of {ist(now)}"
            )
            record = {"zone": "stale", "last_as_of": newest["as_of"]}
            out.append(Change(subject, record, ("fresh", "stale"), newest["as_of"], text))
    return out


_next_bar_due = lru_cache(maxsize=64)(next_bar_due)  # the same few newest blocks, every block


def stale_at(
    rules: Iterable[AnyRule], state: State, now_s: int
) -> list[tuple[StaleRule, str, dict[str, Any]]]:
    """(rule, engine, newest block) of every engine whose newest block is stale at ``now_s``
    and not yet reported stale on the stream (the live watchdog's question)."""
    out: list[tuple[StaleRule, str, dict[str, Any]]] = []
    for rule in rules:
        if not isinstance(rule, StaleRule):
            continue
        for engine in rule.engines:
            newest = state["latest"].get(engine)
            record = state["rules"].get(f"{rule.name}|{engine} data", {})
            if newest is None or record.get("zone") == "stale":
                continue
            if now_s > next_bar_due(newest["kind"], newest["as_of"]) + newest["limit"]:
                out.append((rule, engine, newest))
    return out


class Evaluator:
    """The enabled rules, grouped by the engines they read."""

    def __init__(self, rules: Iterable[AnyRule]) -> None:
        self.rules = tuple(rules)
        self.by_engine: dict[str, list[Compiled]] = {e: [] for e in ENGINES}
        paths: list[tuple[str | int, ...]] = []
        for rule in self.rules:
            compiled = Compiled(rule)
            paths.extend(compiled.world_paths)
            for engine in compiled.reads:
                self.by_engine[engine].append(compiled)
        # the state keeps of each engine's newest block only what the rules read of it
        self.kept = path_tree(paths)

    def evaluate(self, state: State, block: SignalBlock) -> Evaluation:
        """The alerts of ``block`` after ``state`` (unchanged) and the state changes."""
        latest = state["latest"]
        newest = latest.get(block.engine)
        if newest is not None and block.as_of < newest["as_of"]:
            return Evaluation(skipped=f"older than the newest {block.engine} block")
        snapshot = {
            "as_of": block.as_of,
            "kind": block.kind,
            "limit": block.freshness_limit_s,
            "computed_at": block.computed_at,
            "data": project(block.data, self.kept.get(block.engine, {})),
        }
        world = {e: v["data"] for e, v in latest.items()}
        world[block.engine] = block.data
        times = {e: (v["as_of"], v["limit"]) for e, v in latest.items()}
        times[block.engine] = (block.as_of, block.freshness_limit_s)
        result = Evaluation(latest=(block.engine, snapshot))
        rule_states = state["rules"]
        for c in self.by_engine[block.engine]:
            rule = c.rule
            if c.cross and not contemporaneous(c.reads, times):
                continue  # e.g. a new spot against an old safe range: no comparison
            if isinstance(rule, StaleRule):
                changes = _stale(c, block, latest, rule_states)
            else:
                key = rule.name + "|"
                if isinstance(rule, FallbackRule):
                    prev = rule_states.get(f"{key}{block.engine} fallbacks", {})
                    changes = _fallback(c, block, prev)
                else:
                    subject = _subject(rule)
                    prev = rule_states.get(key + subject, {}) if subject else {}
                    changes = KINDS[rule.kind](c, world, prev)
            for change in changes:
                self._settle(rule, block, change, rule_states, result)
        return result

    @staticmethod
    def _settle(
        rule: AnyRule,
        block: SignalBlock,
        change: Change,
        rule_states: Mapping[str, Any],
        result: Evaluation,
    ) -> None:
        """Record the subject's new state; turn a transition into an alert unless the
        rule's cooldown (block time since its last alert on this subject) holds it."""
        key = f"{rule.name}|{change.subject}"
        record = dict(change.record)
        previous = rule_states.get(key, {})
        if "fired" in previous:
            record.setdefault("fired", previous["fired"])
        if change.transition is not None:
            fired = previous.get("fired")
            if fired is None or block.as_of - fired >= rule.cooldown_s:
                record["fired"] = block.as_of
                result.alerts.append(
                    Alert(
                        rule=rule.name,
                        kind=rule.kind,
                        severity=rule.severity,
                        subject=change.subject,
                        transition=change.transition,
                        engine=block.engine,
                        as_of=block.as_of,
                        value=change.value,
                        text=change.text,
                        quiet=in_quiet_hours(rule.quiet_hours, block.as_of),
                    )
                )
        result.rule_states[key] = record


def _subject(rule: AnyRule) -> str:
    if isinstance(rule, BandRule):
        return rule.value
    if isinstance(rule, LabelRule | ShiftRule):
        return rule.path
    if isinstance(rule, BreachRule):
        if rule.strike is not None:
            return f"breach {rule.side} {rule.strike:g}"
        return f"breach {rule.side} {rule.distance_pct or 0.0:g}%"
    return ""


KINDS = {"band": _band, "breach": _breach, "label": _label, "shift": _shift}


def run(
    evaluator: Evaluator, blocks: Iterable[SignalBlock], state: State | None = None
) -> list[Alert]:
    """Every alert of a sequence of blocks from ``state`` (empty), in order (test-rules,
    the bench, tests)."""
    state = state if state is not None else empty_state()
    out: list[Alert] = []
    for block in blocks:
        evaluation = evaluator.evaluate(state, block)
        evaluation.apply(state)
        out.extend(evaluation.alerts)
    return out
