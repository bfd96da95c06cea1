"""The alert rules file: TOML validated by pydantic (unknown fields refused), loaded once at
start. A mistake is refused with the file, the line and the field named (``RulesError``).

Reference: docs/ALERTS.md. The shipped defaults: services/alerts/rules.default.toml.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from shared.contract.schemas import Engine

DEFAULT_RULES = Path(__file__).with_name("rules.default.toml")
ENGINES: tuple[Engine, ...] = ("market", "direction", "seller", "buyer")
Severity = Literal["info", "warning", "critical"]
Zone = Literal["below", "inside", "above"]
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file, line and field."""


def _path(text: str) -> tuple[str | int, ...]:
    """``seller.chain.walls.calls.0.strike`` -> ('seller', 'chain', 'walls', 'calls', 0,
    'strike'); the first part must be an engine."""
    parts = text.split(".")
    if len(parts) < 2 or any(not p for p in parts):
        raise ValueError(f"{text!r} is not engine.field[.field...]")
    if parts[0] not in ENGINES:
        raise ValueError(f"{text!r} must start with an engine: {', '.join(ENGINES)}")
    return tuple(int(p) if p.isdigit() else p for p in parts)


def parse_quiet(text: str) -> tuple[int, int]:
    """``22:00-07:00`` -> minutes of the IST day (start, end); the span may wrap midnight."""
    start, sep, end = text.partition("-")
    ms, me = _HHMM.match(start.strip()), _HHMM.match(end.strip())
    if not sep or ms is None or me is None:
        raise ValueError(f"{text!r} is not HH:MM-HH:MM (IST)")
    a = int(ms.group(1)) * 60 + int(ms.group(2))
    b = int(me.group(1)) * 60 + int(me.group(2))
    if a == b:
        raise ValueError(f"{text!r} is an empty span")
    return a, b


def _checked_quiet(value: str) -> str:
    parse_quiet(value)  # raises ValueError naming the problem
    return value


QuietHours = Annotated[str, AfterValidator(_checked_quiet)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    enabled: bool = True
    severity: Severity = "warning"
    cooldown_s: int = Field(0, ge=0, description="block-time seconds between two alerts")
    hysteresis: float = Field(0.0, ge=0)
    quiet_hours: QuietHours | None = Field(
        None, description="HH:MM-HH:MM IST: recorded, not pushed"
    )
    label: str | None = Field(None, description="what the value is, in words")

    def reads(self) -> frozenset[str]:
        """Engines whose blocks this rule looks at (it is evaluated on their blocks only)."""
        return frozenset(ENGINES)


class BandRule(_Rule):
    """A number against a low and/or high edge (fixed, or another value of a block)."""

    kind: Literal["band"]
    value: str
    low: float | None = None
    high: float | None = None
    low_path: str | None = None
    high_path: str | None = None
    notify_on: tuple[Zone, ...] = ("below", "above")
    unit: str = ""
    low_label: str = "the low edge"
    high_label: str = "the high edge"

    @model_validator(mode="after")
    def _edges(self) -> BandRule:
        for attr in ("value", "low_path", "high_path"):
            if getattr(self, attr) is not None:
                _path(getattr(self, attr))
        if self.low is not None and self.low_path is not None:
            raise ValueError("give low or low_path, not both")
        if self.high is not None and self.high_path is not None:
            raise ValueError("give high or high_path, not both")
        if all(getattr(self, a) is None for a in ("low", "high", "low_path", "high_path")):
            raise ValueError("a band needs low, high, low_path or high_path")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")
        return self

    def reads(self) -> frozenset[str]:
        paths = (self.value, self.low_path, self.high_path)
        return frozenset(p.split(".")[0] for p in paths if p)


class BreachRule(_Rule):
    """The breach probability at one strike (or at the strike nearest a distance from spot)
    crossing a threshold."""

    kind: Literal["breach"]
    side: Literal["above", "below"]
    distance_pct: float | None = Field(None, gt=0)
    strike: float | None = Field(None, gt=0)
    threshold: float = Field(gt=0, lt=1)
    notify_recovery: bool = False

    @model_validator(mode="after")
    def _which(self) -> BreachRule:
        if (self.distance_pct is None) == (self.strike is None):
            raise ValueError("give exactly one of distance_pct or strike")
        if self.hysteresis >= self.threshold:
            raise ValueError("hysteresis must be smaller than the threshold")
        return self

    def reads(self) -> frozenset[str]:
        return frozenset({"seller"})


class LabelRule(_Rule):
    """A label (trap, stress, seller flag, chain status...) changing; ``hysteresis`` is the
    number of blocks in a row a new label must hold before it counts."""

    kind: Literal["label"]
    path: str
    to: tuple[str, ...] | None = None
    detail_path: str | None = None

    @model_validator(mode="after")
    def _paths(self) -> LabelRule:
        _path(self.path)
        if self.detail_path:
            _path(self.detail_path)
        if self.hysteresis != int(self.hysteresis):
            raise ValueError("hysteresis of a label rule counts blocks: a whole number")
        return self

    def reads(self) -> frozenset[str]:
        return frozenset({self.path.split(".")[0]})


class ShiftRule(_Rule):
    """A number moving from where it was when last reported by at least ``min_change``
    points or ``min_change_pct`` per cent (its reference moves only when it alerts)."""

    kind: Literal["shift"]
    path: str
    min_change: float | None = Field(None, gt=0)
    min_change_pct: float | None = Field(None, gt=0)
    unit: str = ""

    @model_validator(mode="after")
    def _change(self) -> ShiftRule:
        _path(self.path)
        if (self.min_change is None) == (self.min_change_pct is None):
            raise ValueError("give exactly one of min_change or min_change_pct")
        if self.hysteresis:
            raise ValueError("a shift rule has no hysteresis: its reference moves only on alert")
        return self

    def reads(self) -> frozenset[str]:
        return frozenset({self.path.split(".")[0]})


class FallbackRule(_Rule):
    """A signal of an engine falling back to a heuristic (provenance source heuristic, or
    the block's degraded reasons); ``hysteresis`` counts blocks, as for labels."""

    kind: Literal["fallback"]
    engines: tuple[Engine, ...] = ENGINES
    notify_recovery: bool = True

    def reads(self) -> frozenset[str]:
        return frozenset(self.engines)


class StaleRule(_Rule):
    """An engine's newest block going stale, judged on stream time: another engine's block
    is newer than the stale one's next-bar-due + freshness limit (feed or engine down);
    and live, by the service's clock while nothing arrives (docs/ALERTS.md)."""

    kind: Literal["stale"]
    engines: tuple[Engine, ...] = ENGINES
    notify_recovery: bool = True

    @model_validator(mode="after")
    def _no_hysteresis(self) -> StaleRule:
        if self.hysteresis:
            raise ValueError("a stale rule has no hysteresis (its state changes once per gap)")
        return self


Rule = Annotated[
    BandRule | BreachRule | LabelRule | ShiftRule | FallbackRule | StaleRule,
    Field(discriminator="kind"),
]


AnyRule = BandRule | BreachRule | LabelRule | ShiftRule | FallbackRule | StaleRule


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    cooldown_s: int | None = Field(None, ge=0)
    quiet_hours: QuietHours | None = None
    severity: Severity | None = None


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    defaults: Defaults = Defaults()
    rule: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> RulesFile:
        seen: set[str] = set()
        for rule in self.rule:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return self

    def active(self) -> tuple[AnyRule, ...]:
        """The enabled rules, with the defaults filled in where a rule left them out."""
        out: list[AnyRule] = []
        for rule in self.rule:
            if not rule.enabled:
                continue
            update = {
                k: v
                for k, v in self.defaults.model_dump().items()
                if v is not None and k not in rule.model_fields_set
            }
            out.append(rule.model_copy(update=update) if update else rule)
        return tuple(out)


# Loading, with the line of every mistake ----------------------------------------------------
_TABLE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?")


def _line_of(text: str, loc: tuple[str | int, ...]) -> int | None:
    """The line (1-based) a validation error's location points at, found in the TOML text:
    the n-th ``[[rule]]`` table, then the key inside it (or the table line itself)."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    rest = list(loc)
    if rest and rest[0] in ("rule", "defaults"):
        table = rest.pop(0)
        index = rest.pop(0) if table == "rule" and rest and isinstance(rest[0], int) else 0
        headers = [i for i, line in enumerate(lines) if (m := _TABLE.match(line)) and m[1] == table]
        if index >= len(headers):
            return None
        start = headers[index]
        after = [i for i, line in enumerate(lines) if i > start and _TABLE.match(line)]
        end = after[0] if after else len(lines)
        if table == "rule" and rest and rest[0] in _KINDS:  # the discriminated union's tag
            rest.pop(0)
    else:
        first = [i for i, line in enumerate(lines) if _TABLE.match(line)]
        end = first[0] if first else len(lines)
    key = next((k for k in rest if isinstance(k, str)), None)
    if key is not None:
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i in range(start, end):
            if pattern.match(lines[i]):
                return i + 1
    return start + 1 if loc and loc[0] in ("rule", "defaults") else None


_KINDS = ("band", "breach", "label", "shift", "fallback", "stale")


def parse_rules(text: str, source: str = "<rules>") -> RulesFile:
    """Validate a rules file's text; ``RulesError`` names the line and field of each problem."""
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return RulesFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                loc = (*loc, "kind")  # the discriminator: point at the kind line
            line = _line_of(text, loc)
            inner = loc[2:] if len(loc) > 2 and loc[0] == "rule" else loc
            field = ".".join(str(p) for p in inner if p not in _KINDS) or "(file)"
            where = f"line {line}" if line else "somewhere"
            name = _rule_name(raw, loc)
            problems.append(f"{source} {where}: {name}field {field!r}: {err['msg']}")
        raise RulesError("invalid alert rules:\n  " + "\n  ".join(problems)) from None


def _rule_name(raw: dict[str, Any], loc: tuple[str | int, ...]) -> str:
    if len(loc) >= 2 and loc[0] == "rule" and isinstance(loc[1], int):
        rules = raw.get("rule")
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            name = rules[loc[1]].get("name")
            return f"rule {loc[1] + 1} ({name!r}) " if name else f"rule {loc[1] + 1} "
    return ""


def load_rules(path: Path | None) -> RulesFile:
    """The rules at ``path`` (the shipped defaults when None)."""
    path = path or DEFAULT_RULES
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read alert rules {path}: {exc}") from exc
    return parse_rules(text, str(path))


def split_path(text: str) -> tuple[str | int, ...]:
    return _path(text)
