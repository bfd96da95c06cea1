"""Pure assembly: signal blocks and health reports in, document sections out. No I/O here.

Staleness is measured against a "now" the caller passes: wall time live, the newest as_of
seen with the event clock (so a replay gives the same document byte for byte).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from msgspec.structs import asdict

from shared.contract.document import ENGINES
from shared.contract.schemas import SignalBlock
from shared.market import calendar
from shared.market.clock import utc_iso_ms

SCHEMA_VERSION = 1

# The workers that publish the blocks: always listed, ``down`` without a live report.
EXPECTED_SERVICES: tuple[str, ...] = ("features", "direction", "seller", "buyer")
# The feed. A replay finishes, exits and its report expires, so ingest is listed (and counts
# in the overall status) only while it reports, or when a source last seen running - its
# report not ``finished`` - stopped reporting: that feed died (see FeedWatch).
FEED_SERVICE = "ingest"

Offer = Literal["new", "update", "duplicate", "older"]


def classify(current: SignalBlock | None, incoming: SignalBlock) -> Offer:
    """Newest as_of wins; same as_of + same digest is a duplicate, another digest an update."""
    if current is None:
        return "new"
    if incoming.as_of < current.as_of:
        return "older"
    if incoming.as_of == current.as_of:
        return "duplicate" if incoming.digest == current.digest else "update"
    return "new"


def is_stale(block: SignalBlock, now_ms: int) -> bool:
    """Newer data was due (next minute in session, next session for daily blocks) more than
    ``freshness_limit_s`` ago: a Friday close is not stale on Saturday, a stalled feed is."""
    due_s = calendar.next_bar_due(block.kind, block.as_of)
    return now_ms > (due_s + block.freshness_limit_s) * 1000


def section(block: SignalBlock, now_ms: int) -> dict[str, Any]:
    """The block's data plus its stamps, as the document shows it."""
    return {
        **block.data,
        "as_of": utc_iso_ms(block.as_of * 1000),
        "session_date": block.session_date,
        "kind": block.kind,
        "computed_at": utc_iso_ms(block.computed_at),
        "freshness_limit_s": block.freshness_limit_s,
        "stale": is_stale(block, now_ms),
        "models": [{k: v for k, v in asdict(m).items() if v is not None} for m in block.models],
        "degraded": list(block.degraded),
    }


@dataclass
class FeedWatch:
    """Ingest sources expected to keep reporting: last seen with ``finished`` false. A source
    whose report expires without a finished report first has died (crashed, killed); a
    finished replay, or one that ended before this gateway started, is not expected."""

    running: set[str] = field(default_factory=set)

    def missing(self, reports: list[dict[str, Any]]) -> list[str]:
        """Update from the live reports; returns the running sources that stopped reporting."""
        live = {
            str(r.get("consumer")): r
            for r in reports
            if isinstance(r, dict) and r.get("service") == FEED_SERVICE
        }
        for source, report in live.items():
            if report.get("finished"):
                self.running.discard(source)
            else:
                self.running.add(source)
        return sorted(self.running - set(live))


def health_section(
    reports: list[dict[str, Any]], volatile: bool, missing_feeds: Sequence[str] = ()
) -> dict[str, Any]:
    """Per service: worst status over replicas, replica count, models, degraded reasons,
    newest message time and largest lag. An expected service with no live report is ``down``;
    ingest is listed when it reports or ``missing_feeds`` (FeedWatch) names a dead source.
    The overall status covers the expected services and ingest when listed.

    ``volatile=False`` (event clock) leaves out wall-clock and timing fields
    (last_message_at, lag) so a replay's document is reproducible.
    """
    by_service: dict[str, list[dict[str, Any]]] = {s: [] for s in EXPECTED_SERVICES}
    if missing_feeds:
        by_service[FEED_SERVICE] = []
    for report in reports:
        if isinstance(report, dict):
            by_service.setdefault(str(report.get("service", "unknown")), []).append(report)
    engines = {name: _service_health(rows, volatile) for name, rows in sorted(by_service.items())}
    if missing_feeds:
        feed = engines[FEED_SERVICE]
        feed["degraded_reasons"] += [f"no live report from source {s}" for s in missing_feeds]
        if feed["status"] == "ok":
            feed["status"] = "degraded"
    counted = [*EXPECTED_SERVICES, *([FEED_SERVICE] if FEED_SERVICE in engines else [])]
    statuses = [engines[s]["status"] for s in counted]
    if all(s == "down" for s in statuses):
        overall = "down"
    elif any(s != "ok" for s in statuses):
        overall = "degraded"
    else:
        overall = "ok"
    return {"status": overall, "engines": engines}


def _service_health(rows: list[dict[str, Any]], volatile: bool) -> dict[str, Any]:
    if not rows:
        status = "down"
    elif any(r.get("status") != "ok" or r.get("degraded_reasons") for r in rows):
        status = "degraded"
    else:
        status = "ok"
    models: dict[tuple[str, str], dict[str, Any]] = {}
    reasons: list[str] = []
    for row in rows:
        for model in row.get("models") or []:
            if isinstance(model, dict) and "name" in model:
                key = (str(model["name"]), str(model.get("version")))
                models.setdefault(
                    key,
                    {
                        "name": model["name"],
                        "version": model.get("version"),
                        "trained_at": model.get("trained_at"),
                    },
                )
        for reason in row.get("degraded_reasons") or []:
            if reason not in reasons:
                reasons.append(str(reason))
    out: dict[str, Any] = {
        "status": status,
        "replicas": len(rows),
        "models": [models[k] for k in sorted(models)],
        "degraded_reasons": reasons,
        "last_message_at": None,
        "lag": None,
    }
    if volatile:
        times = [r["last_message_at"] for r in rows if isinstance(r.get("last_message_at"), int)]
        lags = [r["lag"] for r in rows if isinstance(r.get("lag"), int)]
        out["last_message_at"] = utc_iso_ms(max(times)) if times else None
        out["lag"] = max(lags) if lags else None
    return out


@dataclass
class DocumentState:
    """The latest block per engine, the sections built from them, and the change counter.

    Every method that changes the document returns the change (``blocks``: engine -> section,
    ``generated_at``, and ``health`` only when it changed) and bumps ``sequence`` by exactly
    one; no change, no bump.
    """

    blocks: dict[str, SignalBlock] = field(default_factory=dict)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=lambda: health_section([], volatile=False))
    sequence: int = 0
    epoch: int = 0  # set by the gateway (see core.py); the sequence counts within it
    generated_at_ms: int = 0
    _pending_health: dict[str, Any] | None = None

    def offer(self, block: SignalBlock, now_ms: int) -> tuple[Offer, dict[str, Any] | None]:
        """Take a block if it is newer; returns its classification and the change."""
        verdicts, change = self.offer_batch([block], now_ms)
        return verdicts[0], change

    def offer_batch(
        self, blocks: Sequence[SignalBlock], now_ms: int
    ) -> tuple[list[Offer], dict[str, Any] | None]:
        """Offer a read batch at once: the same verdicts, sections, stale flags and
        ``sequence`` as offering its blocks one by one (``now_ms`` is the batch's newest time),
        folded into one change; ``sequence`` moves by the number of blocks taken. A block is
        taken if it is newer than the engine's current one or the batch's earlier one."""
        verdicts: list[Offer] = []
        winners: dict[str, SignalBlock] = {}
        for block in blocks:
            verdict = classify(winners.get(block.engine) or self.blocks.get(block.engine), block)
            verdicts.append(verdict)
            if verdict in ("new", "update"):
                winners[block.engine] = block
        accepted = sum(v in ("new", "update") for v in verdicts)
        if not accepted:
            return verdicts, None
        self.blocks.update(winners)
        changed: dict[str, dict[str, Any]] = {
            engine: section(block, now_ms) for engine, block in winners.items()
        }
        changed.update(self._restale(now_ms, skip=winners))
        self.sequence += accepted - 1  # _commit adds the last one
        return verdicts, self._commit(changed, now_ms)

    def restale(self, now_ms: int) -> dict[str, Any] | None:
        """Re-evaluate stale flags against ``now_ms``; a flip is a change."""
        changed = self._restale(now_ms)
        return self._commit(changed, now_ms) if changed else None

    def set_health(
        self, health: dict[str, Any], now_ms: int, publish: bool
    ) -> dict[str, Any] | None:
        """Store new health; ``publish`` makes it a change of its own (wall clock), otherwise
        it rides along with the next block change (event clock keeps sequence reproducible)."""
        if health == (self._pending_health or self.health):
            return None
        self._pending_health = health
        return self._commit({}, now_ms) if publish else None

    def document(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "generated_at": utc_iso_ms(self.generated_at_ms),
            "epoch": self.epoch,
            "sequence": self.sequence,
            **{engine: self.sections.get(engine) for engine in ENGINES},
            "health": self.health,
        }

    def _restale(self, now_ms: int, skip: Collection[str] = ()) -> dict[str, dict[str, Any]]:
        changed = {}
        for engine, block in self.blocks.items():
            if engine in skip:
                continue
            stale = is_stale(block, now_ms)
            if self.sections[engine]["stale"] != stale:
                changed[engine] = {**self.sections[engine], "stale": stale}
        return changed

    def _commit(self, changed: dict[str, dict[str, Any]], now_ms: int) -> dict[str, Any]:
        self.sections.update(changed)
        change: dict[str, Any] = {"blocks": changed, "generated_at": utc_iso_ms(now_ms)}
        if self._pending_health is not None:
            self.health, self._pending_health = self._pending_health, None
            change["health"] = self.health
        self.sequence += 1
        self.generated_at_ms = now_ms
        return change
