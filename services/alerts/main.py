"""Alerts: consume signal blocks (aegis:blocks, consumer group ``alerts``) -> evaluate the
rules (services.alerts.evaluate, pure) -> deliver through Apprise -> record the alerts on
aegis:alerts for the gateway. docs/ALERTS.md says it in full; in short:

- One replica works, the others stand by: the worker holding the lease
  ``aegis:alerts:leader`` (renewed every step and before every send) reads; when it dies,
  the lease expires and a standby takes over, claiming the dead leader's pending entries
  first (``ordered``). Rules with hysteresis need the blocks in stream order and one state.
- The evaluation state (newest block per engine, one record per rule and subject) lives in
  ``aegis:alerts:state`` with the id of the last entry it includes. It is written in the
  same MULTI/EXEC as the acknowledgement, together with the alert records, by a script that
  writes only when that id moves forward: a redelivered or late batch changes nothing.
- Sending happens before the commit and is made once by a claim per alert
  (services.alerts.delivery.Claims): a batch redone after a crash re-evaluates to the same
  alerts, finds them ``sent`` and sends nothing again; a claim left ``pending`` by a dead
  leader is taken over and sent. At-least-once window (the only one): a target accepted the
  message but the sender died before marking the claim (one Redis SET after the HTTP reply);
  the next leader sends it again. Messages carry their alert id for a receiver to dedupe.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from typing import Any, cast

import orjson
import redis

from services.alerts.delivery import (
    DEAD,
    SENT,
    AppriseSender,
    Claims,
    Sender,
    Target,
    dashboard_link,
    load_targets,
    message,
)
from services.alerts.evaluate import (
    Alert,
    Evaluator,
    State,
    empty_state,
    in_quiet_hours,
    ist,
    stale_at,
)
from services.alerts.flood import ReplayFlood
from services.alerts.rules import RulesError, load_rules
from shared.bus import streams
from shared.bus.lifecycle import check_credentials, idle_cpu, prepare, stop_on_signals
from shared.bus.replies import Entry
from shared.bus.worker import StreamWorker
from shared.config import Settings
from shared.contract.codec import pack, unpack
from shared.contract.schemas import Message, SignalBlock
from shared.logs import get_logger
from shared.market.clock import RunClock, RunInfo

STATE = f"{streams.ALERTS_PREFIX}state"
LEADER = f"{streams.ALERTS_PREFIX}leader"
WATCHED = f"{streams.ALERTS_PREFIX}watched:"  # one marker per live feed-down alert
WATCH_EVERY_S = 1.0

# Holds or renews the lease of ARGV[1] for ARGV[2] ms: 1 when this consumer holds it.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# The state and the batch's alert records, only when the batch's last entry id (ARGV[1]) is
# past the one the state holds: a batch committed already (a late or redone batch) writes
# nothing. KEYS: state hash, alerts stream. ARGV: last id, packed state, maxlen, records...
_COMMIT = """
local function newer(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
local current = redis.call('HGET', KEYS[1], 'last_id')
if current and not newer(ARGV[1], current) then return 0 end
redis.call('HSET', KEYS[1], 'last_id', ARGV[1], 'state', ARGV[2])
for i = 4, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'd', ARGV[i])
end
return 1
"""
# A live feed-down record once per silent block: KEYS marker, stream; ARGV ttl, maxlen, record.
_WATCHED = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'd', ARGV[3])
  return 1
end
return 0
"""


class Interrupted(redis.ConnectionError):
    """Delivery stopped mid-batch: this replica lost the lease, or is stopping. The batch in
    hand is dropped uncommitted, its claims stay pending for whoever leads next (the worker's
    loop treats it like a lost connection: reset, back off or stop, look again)."""


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class AlertsWorker(StreamWorker):
    service = "alerts"
    input_stream = streams.BLOCKS
    ordered = True  # one state, blocks in stream order (see the module docstring)

    def __init__(
        self, settings: Settings, consumer: str | None = None, *, sender: Sender | None = None
    ) -> None:
        rules = load_rules(settings.alerts_rules)  # RulesError before anything connects
        super().__init__(settings, consumer)
        self.rules = rules.active()
        self.evaluator = Evaluator(self.rules)
        self.targets: list[Target] = load_targets(settings)
        self.sender: Sender = sender or AppriseSender()
        self.claims = Claims(self.client, settings.alerts_claim_ttl_s, self.consumer)
        self.state: State = empty_state()
        self.last_id: str | None = None
        self._batch_last: str | None = None
        self._committed: str | None = None  # last_id of the state this replica committed
        self._records: list[bytes] = []
        self._leader = False
        self._last_watch = 0.0
        self.run_clock = RunClock()
        self.flood = (
            ReplayFlood(self.client, max_backlog=settings.blocks_maxlen // 2, group=self.group)
            if settings.alerts_wait_for_replay
            else None
        )
        self._waiting = False  # for an unpaced replay's flood to end
        self.stats.update(
            role="standby",
            replay_waits=0,
            alerts=0,
            quiet=0,
            sent=0,
            send_failures=0,
            alerts_dead_lettered=0,
            claims_taken_over=0,
            already_sent=0,
            skipped_committed=0,
        )
        self.log.info(
            "alert_rules_loaded",
            rules=[r.name for r in self.rules],
            source=str(settings.alerts_rules or "default"),
            targets=[t.scheme for t in self.targets],  # the scheme only: URLs are secrets
        )

    # Leadership ---------------------------------------------------------------------------
    def _hold_lease(self) -> bool:
        held = bool(
            self.client.eval(_LEASE, 1, LEADER, self.consumer, self.settings.alerts_lease_ms)
        )
        if held != self._leader:
            self.log.info("alerts_role", role="leader" if held else "standby")
            self._leader = held
            self.stats["role"] = "leader" if held else "standby"
        return held

    def _ensure_leader(self) -> None:
        if not self._hold_lease():
            raise Interrupted("the alerts lease moved to another replica")

    def _step(self) -> bool | None:
        if not self._hold_lease():
            self._write_health()
            self.stop_event.wait(self.settings.block_ms / 1000)
            return None
        if self.flood is not None and self._wait_for_replay(self.flood):
            self._write_health()
            self.stop_event.wait(self.flood.every_s)
            return None
        return super()._step()

    def _wait_for_replay(self, flood: ReplayFlood) -> bool:
        """While an unpaced replay floods the blocks, read none until the backlog reaches
        half the stream's cap (services.alerts.flood)."""
        waiting = flood.on()
        if waiting != self._waiting:
            self._waiting = waiting
            self.stats["replay_waits"] += waiting
            self.log.info(
                "alerts_wait_for_replay",
                waiting=waiting,
                processed=self.stats["processed"],
                backlog=flood.backlog,
                max_backlog=flood.max_backlog,
            )
        return waiting

    def run(self, max_idle_reads: int | None = None) -> None:
        try:
            super().run(max_idle_reads)
        finally:
            try:
                self.client.eval(_RELEASE, 1, LEADER, self.consumer)
            except redis.RedisError as exc:
                self.log.warning("lease_not_released", error=str(exc))

    # State --------------------------------------------------------------------------------
    def load_state(self) -> None:
        """The committed state. The one in memory is it when Redis holds the id this
        replica committed last (states are deterministic in that id): then only that id
        is read, not the whole state."""
        held = cast(bytes | None, self.client.hget(STATE, "last_id"))
        if held is not None and self._committed is not None and held.decode() == self._committed:
            self.last_id = self._committed
            return
        pipe = self.client.pipeline(transaction=True)  # both fields of one commit
        pipe.hget(STATE, "last_id")
        pipe.hget(STATE, "state")
        last_id, raw = cast(list[bytes | None], pipe.execute())
        self.last_id = last_id.decode() if last_id else None
        self.state = unpack(raw) if raw else empty_state()

    def before_batch(self, entries: list[Entry]) -> None:
        self.load_state()
        self._records = []
        self._batch_last = entries[-1][0].decode() if entries else None

    def after_batch(self) -> None:
        super().after_batch()
        # committed, unless a newer commit was there (then the ids differ on the next load)
        self._committed = self._batch_last or self._committed

    def on_reset(self) -> None:
        self._records = []
        self._batch_last = None
        self._committed = None  # the state in memory may hold a dropped batch's changes

    def stage_extra(self, pipe: Any) -> None:
        if self._batch_last is None:
            return
        pipe.eval(
            _COMMIT,
            2,
            STATE,
            streams.ALERTS,
            self._batch_last,
            pack(self.state),
            self.settings.alerts_maxlen,
            *self._records,
        )

    # The work -----------------------------------------------------------------------------
    def handle(self, message: Message, entry_id: str) -> Iterable[Message]:
        if not isinstance(message, SignalBlock):
            return []
        if self.last_id is not None and _id_key(entry_id) <= _id_key(self.last_id):
            self.stats["skipped_committed"] += 1  # evaluated and committed already
            return []
        evaluation = self.evaluator.evaluate(self.state, message)
        records = [self.deliver(alert, entry_id) for alert in evaluation.alerts]
        evaluation.apply(self.state)
        self._records.extend(orjson.dumps(r) for r in records)
        return []

    def deliver(self, alert: Alert, entry_id: str) -> dict[str, Any]:
        """Send ``alert`` to every target once (claims), with retries; its record."""
        link = dashboard_link(self.settings, alert.as_of)
        record = {**alert.to_json(), "link": link, "entry_id": entry_id}
        self.stats["alerts"] += 1
        self.log.info("alert", id=alert.id, rule=alert.rule, text=alert.text, quiet=alert.quiet)
        if alert.quiet:
            self.stats["quiet"] += 1
            return {**record, "delivery": "quiet hours: recorded, not pushed"}
        if not self.targets:
            return {**record, "delivery": "no targets configured"}
        claim, taken_from = self.claims.take(alert)
        if claim["state"] != "pending":
            self.stats["already_sent"] += 1
            return {**record, "delivery": claim["state"]}
        if taken_from is not None:
            self.stats["claims_taken_over"] += 1
            self.log.warning("claim_taken_over", id=alert.id, previous_owner=taken_from)
        title, body = message(alert, link)
        for target in self.targets:
            if target.id in claim["sent"] or target.id in claim["dead"]:
                continue
            failure = self._send_with_retries(target, title, body, alert)
            if failure is None:
                claim["sent"].append(target.id)
                self.claims.save(alert.id, claim)
                continue
            claim["dead"].append(target.id)
            self.stats["alerts_dead_lettered"] += 1
            pipe = self.client.pipeline(transaction=True)
            self.bus.dead_letter(
                origin_stream=self.input_stream,
                origin_id=entry_id,
                service=self.service,
                reason=(
                    f"alert {alert.id} ({alert.rule}) not delivered to {target.scheme}:// "
                    f"after {self.settings.alerts_send_attempts} tries: {failure}"
                ),
                payload=orjson.dumps({**record, "title": title, "body": body}),
                pipe=pipe,
            )
            self.claims.save(alert.id, claim, pipe)
            pipe.execute()
        claim["state"] = DEAD if claim["dead"] else SENT
        self.claims.save(alert.id, claim)
        return {**record, "delivery": claim["state"], "targets": len(self.targets)}

    def _send_with_retries(self, target: Target, title: str, body: str, alert: Alert) -> str | None:
        """None once ``target`` accepted the message, else the last reason after every try.
        Waits double from ``alerts_backoff_initial_s`` up to ``alerts_backoff_max_s``."""
        attempts = self.settings.alerts_send_attempts
        wait = self.settings.alerts_backoff_initial_s
        reason = ""
        for attempt in range(1, attempts + 1):
            self._ensure_leader()  # a replica that lost the lease must not send
            try:
                ok, reason = self.sender.send(target, title, body, alert.severity)
            except Exception as exc:  # a notifier bug is a failed try, not a dead worker
                ok, reason = False, target.redact(f"{type(exc).__name__}: {exc}")
            if ok:
                self.stats["sent"] += 1
                self.log.info("alert_sent", id=alert.id, scheme=target.scheme, attempt=attempt)
                return None
            self.stats["send_failures"] += 1
            self.log.warning(
                "alert_send_failed",
                id=alert.id,
                scheme=target.scheme,
                attempt=attempt,
                of=attempts,
                reason=reason,
            )
            if attempt < attempts:
                if self.stop_event.wait(wait):
                    raise Interrupted("stopping mid-delivery")  # the claim stays pending
                wait = min(wait * 2, self.settings.alerts_backoff_max_s)
        return reason

    # Live watchdog: the feed is down while nothing arrives ---------------------------------
    def on_idle(self) -> None:
        """No block for a whole read: judge staleness on the feed's clock (the replay's own
        time, else wall time) and report each engine whose newest block is overdue, once
        per block. Off with AEGIS_CLOCK=event (no clock but the blocks')."""
        now = time.monotonic()
        if self.settings.clock == "event" or now - self._last_watch < WATCH_EVERY_S:
            return
        self._last_watch = now
        if not self._leader:
            return
        raw = self.client.get(streams.RUN)
        try:
            self.run_clock.set_run(RunInfo.from_json(orjson.loads(raw)) if raw else None)
        except ValueError as exc:
            self.log.warning("run_record_unreadable", error=str(exc))
        now_s = self.run_clock.now_ms() // 1000
        self.load_state()
        for rule, engine, newest in stale_at(self.rules, self.state, now_s):
            alert = Alert(
                rule=rule.name,
                kind=rule.kind,
                severity=rule.severity,
                subject=f"{engine} data",
                transition=("fresh", "down"),
                engine=engine,
                as_of=newest["as_of"],
                value=now_s,
                text=(
                    f"{engine} feed down: no block since {ist(newest['as_of'])}, "
                    f"{(now_s - newest['as_of']) // 60} min at {ist(now_s)}"
                ),
                quiet=in_quiet_hours(rule.quiet_hours, now_s),
            )
            record = self.deliver(alert, "")
            self.client.eval(
                _WATCHED,
                2,
                WATCHED + alert.id,
                streams.ALERTS,
                self.settings.alerts_claim_ttl_s,
                self.settings.alerts_maxlen,
                orjson.dumps(record),
            )

    # Health -------------------------------------------------------------------------------
    def health_details(self) -> dict[str, Any]:
        return {
            "rules": len(self.rules),
            "targets": [t.scheme for t in self.targets],
            "waiting_for_replay": self._waiting,
        }


def main(settings: Settings | None = None) -> int:
    settings = prepare(settings)
    check_credentials(settings)
    log = get_logger("alerts")
    try:
        worker = AlertsWorker(settings)
    except RulesError as exc:
        log.error("alert_rules_refused", error=str(exc))
        print(exc, file=sys.stderr)
        return 2
    # Alerts are not on the document's path: below the engines in CPU priority, so a replay
    # flood on a small box is not slowed by them (they catch up after); live, the block rate
    # leaves the CPU idle and they keep pace (docs/ALERTS.md "Cost").
    niceness = os.nice(settings.alerts_nice)
    idle = settings.alerts_idle_cpu_in_replay and not settings.live and idle_cpu()
    log.info("alerts_priority", nice=niceness, idle_cpu_only=idle)
    stop_on_signals(worker.stop)
    worker.run()
    return 0
