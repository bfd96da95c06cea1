"""Prometheus metrics of one gateway app (own registry, so several apps can live in a process).

For the end-to-end latency bench: per engine, the newest block's as_of, computed_at and the
wall time the gateway received it; ``block_delay`` is receive time minus computed_at."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "aegis_gateway_messages_consumed", "block stream entries read", registry=r
        )
        self.accepted = Counter(
            "aegis_gateway_blocks_accepted",
            "blocks that changed the document",
            ["engine", "kind"],
            registry=r,
        )
        self.duplicates = Counter(
            "aegis_gateway_duplicates", "blocks ignored as duplicates", ["engine"], registry=r
        )
        self.older = Counter(
            "aegis_gateway_older_blocks",
            "blocks ignored: a newer as_of is held",
            ["engine"],
            registry=r,
        )
        self.invalid = Counter(
            "aegis_gateway_invalid_blocks", "entries that failed validation", registry=r
        )
        self.block_errors = Counter(
            "aegis_gateway_block_errors",
            "valid entries whose processing raised (skipped)",
            registry=r,
        )
        self.changes = Counter(
            "aegis_gateway_document_changes", "document sequence increments", registry=r
        )
        self.ws_clients = Gauge(
            "aegis_gateway_websocket_clients", "connected websocket clients", registry=r
        )
        self.ws_resyncs = Counter(
            "aegis_gateway_websocket_resyncs",
            "full snapshots sent after a gap",
            ["reason"],
            registry=r,
        )
        self.push_latency = Histogram(
            "aegis_gateway_push_latency_seconds",
            "block received by the gateway -> update written to a client socket",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.block_delay = Histogram(
            "aegis_gateway_block_delay_seconds",
            "block computed_at (engine) -> received by the gateway (wall clock)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.last_as_of = Gauge(
            "aegis_gateway_last_block_as_of_seconds",
            "as_of of the newest block",
            ["engine"],
            registry=r,
        )
        self.last_computed = Gauge(
            "aegis_gateway_last_block_computed_at_seconds",
            "computed_at of the newest block",
            ["engine"],
            registry=r,
        )
        self.last_received = Gauge(
            "aegis_gateway_last_block_received_seconds",
            "wall time the newest block was received",
            ["engine"],
            registry=r,
        )
        self.sequence = Gauge(
            "aegis_gateway_document_sequence", "current document sequence", registry=r
        )
        self.redis_errors = Counter(
            "aegis_gateway_redis_errors", "block stream read failures", registry=r
        )
        # Reliability: refusals, staleness, feeds, output file, websockets
        self.rejected = Counter(
            "aegis_gateway_rejected_blocks",
            "valid blocks refused: outside the calendar, ahead of the clock or input, or "
            "breaking the document contract (reason contract)",
            ["engine", "reason"],
            registry=r,
        )
        self.block_stale = Gauge(
            "aegis_gateway_block_stale",
            "1 while the engine's block is stale",
            ["engine"],
            registry=r,
        )
        self.epoch = Gauge(
            "aegis_gateway_document_epoch", "epoch of the document sequence", registry=r
        )
        self.feed_up = Gauge(
            "aegis_gateway_feed_up",
            "1 while an ingest source reports ok, 0 when degraded, failing or gone",
            ["source"],
            registry=r,
        )
        self.feed_last_message = Gauge(
            "aegis_gateway_feed_last_message_seconds",
            "newest message time an ingest source reported (wall clock only)",
            ["source"],
            registry=r,
        )
        self.feed_lag = Gauge(
            "aegis_gateway_feed_lag", "lag an ingest source reported", ["source"], registry=r
        )
        self.newest_input = Gauge(
            "aegis_gateway_newest_input_close_seconds",
            "close of the newest bar ingest published (blocks may not lead it)",
            registry=r,
        )
        self.output_failures = Counter(
            "aegis_gateway_output_write_failures", "document file writes that failed", registry=r
        )
        self.output_ok = Gauge(
            "aegis_gateway_output_ok", "1 when the last document file write succeeded", registry=r
        )
        self.output_last_success = Gauge(
            "aegis_gateway_output_last_success_seconds",
            "wall time of the last successful document file write",
            registry=r,
        )
        self.ws_refused = Counter(
            "aegis_gateway_websocket_refused",
            "websocket connections refused or dropped",
            ["reason"],
            registry=r,
        )
        self.ws_resync_coalesced = Counter(
            "aegis_gateway_websocket_resyncs_coalesced",
            "client resync requests folded into a snapshot already pending",
            registry=r,
        )
        # The live scorecard (history database), recomputed at most once a minute on a scrape
        self.scorecard_closes = Gauge(
            "aegis_scorecard_closes",
            "session closes whose safe range was scored at its expiry",
            ["window"],
            registry=r,
        )
        self.scorecard_hit_rate = Gauge(
            "aegis_scorecard_safe_range_hit_rate",
            "share of scored closes whose safe range held at expiry",
            ["window", "range"],
            registry=r,
        )
        self.scorecard_brier = Gauge(
            "aegis_scorecard_breach_brier",
            "Brier score of the breach probabilities live at each close",
            ["window", "curve"],
            registry=r,
        )
        self.scorecard_trap = Gauge(
            "aegis_scorecard_trap",
            "the trap score live at each close against its outcome: brier, "
            "brier_observed_rate (the constant baseline), auc",
            ["window", "stat"],
            registry=r,
        )
