"""The one configuration object. Every value comes from an ``AEGIS_*`` environment variable
or its default; components receive a ``Settings`` instead of reading the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, StringConstraints, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The folder holding data/ and var/: the source tree, or AEGIS_HOME where the package is
# installed (the container image). Read here, before Settings, because its defaults use it.
PROJECT_ROOT = Path(os.environ.get("AEGIS_HOME") or Path(__file__).resolve().parent.parent)
# Dates stay ISO strings (compared as text with the data files), so they must be well formed.
IsoDate = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AEGIS_", frozen=True, extra="forbid")

    # Redis (redis-ops): where Redis is and who this process is. Without AEGIS_REDIS_URL, the
    # URL is built from host and port. AEGIS_REDIS_USER / AEGIS_REDIS_PASSWORD are put into a
    # URL that has no credentials (URL-escaped). Secrets never appear in a dump or a repr.
    redis_url: str = Field("", exclude=True, repr=False)
    redis_host: str = "127.0.0.1"
    redis_port: int = 6390
    redis_user: str = Field("", description="ACL user of this process; empty = default user")
    redis_password: str = Field("aegis-local", exclude=True, repr=False)
    embedded_redis: bool = True
    redis_maxmemory_mb: int = Field(2048, description="embedded server's maxmemory (noeviction)")
    redis_memory_alarm: float = Field(0.8, description="used/maxmemory fraction that alarms")
    redis_sentinels: str = Field("", description="host:port,host:port; set = follow Sentinel")
    redis_sentinel_master: str = Field("aegis", description="primary's name at the sentinels")
    redis_sentinel_password: str | None = Field(None, exclude=True, repr=False)
    # Durable acknowledgement: a write counts as done only once this many replicas hold it
    # (WAIT after each batch); until then the batch is retried like an outage, so nothing a
    # failover to a lagging replica loses was already reported published (docs/RELIABILITY.md)
    redis_wait_replicas: int = Field(0, ge=0, description="replicas each write must reach")
    redis_wait_timeout_ms: int = Field(1000, ge=1, description="how long one WAIT waits")

    # Folders
    var_dir: Path = PROJECT_ROOT / "var"
    data_dir: Path = PROJECT_ROOT / "data"
    model_dir: Path = PROJECT_ROOT / "var" / "models"
    # Set: engines serve each snapshot the version valid for its session from this registry
    # of walk-forward folds (``services.trainer evaluate --registry``), no hot reload; a
    # replay then publishes the evaluation's forecasts (docs/HISTORY.md, Scorecard)
    walk_forward_model_dir: Path | None = None
    output_path: Path = PROJECT_ROOT / "var" / "aegismatrix.json"

    # Bus
    stream_maxlen: int = Field(
        100_000, description="length above which acknowledged entries are trimmed (≈ a year)"
    )
    read_count: int = Field(256, description="entries per XREADGROUP batch")
    block_ms: int = Field(1000, description="how long a blocking read waits")
    claim_idle_ms: int = Field(2500, description="idle time after which another replica claims")
    max_deliveries: int = Field(5, description="deliveries before a message is dead-lettered")
    handler_attempts: int = Field(3, description="in-process tries of a failing handler")
    health_ttl_s: int = Field(10, description="a worker whose report is older is presumed dead")

    # Clock: wall for live use; event makes replays reproducible byte for byte
    clock: Literal["wall", "event"] = "wall"

    # Ingest
    source: Literal["file", "stream", "yfinance"] = "file"
    replay_speed: float = Field(60.0, description="0 = as fast as possible, 60 = 60x real time")
    # The default replay: the fortnight of 2026-01-22..02-06 with the intraday option chain
    # (1-minute bars from 2026-01-01, chain snapshots from 01-22 09:39); the 2021-2022 minutes
    # are one setting away (README "Useful variations").
    replay_daily_from: IsoDate | None = Field(
        "2024-07-01",  # ~390 sessions before the paced start: the 300-row feature look-back + 60
        description="first daily bar replayed",
    )
    replay_intraday_from: IsoDate | None = Field(
        "2026-01-22", description="first 1-minute bar replayed"
    )
    replay_paced_from: IsoDate | None = Field(
        "2026-01-22", description="bars before this replay as fast as possible, later ones paced"
    )
    replay_end: IsoDate | None = None
    replay_watch: bool = Field(
        True,
        description="after a replay ingest stays up, keeping what it published: it trims the "
        "bars, re-publishes what Redis loses, and replays again when Redis lost everything",
    )
    replay_max_gap_s: float = Field(1.0, description="longest wall wait between two replayed bars")
    replay_file: Path | None = Field(None, description="recorded stream file for source=stream")
    yfinance_cache_dir: Path = PROJECT_ROOT / "var" / "yfinance-cache"
    yfinance_min_interval_s: float = Field(2.0, description="minimum seconds between requests")
    yfinance_poll_s: float = 60.0
    yfinance_max_retries: int = 5

    # Engines
    chain_file: Path | None = Field(
        PROJECT_ROOT / "data" / "nifty_option_chain_intraday_2026-01-22_2026-02-05.csv.gz",
        description="option-chain file or folder ingested before the bars; empty = none",
    )
    coverage_target: float = 0.90
    # A block is stale once newer data was due (NSE calendar) longer ago than this
    freshness_intraday_s: int = Field(300, description="grace after the next minute is due")
    freshness_daily_s: int = Field(3 * 3600, description="grace after the next close is due")

    # Option chain: the live feed, file formats, freshness in the engines
    chain_source: Literal["none", "nse"] = Field(
        "none", description="live option-chain feed polled beside the bars; none = off"
    )
    chain_poll_s: float = Field(180.0, description="seconds between chain polls while open")
    chain_min_interval_s: float = Field(3.0, description="minimum seconds between NSE requests")
    chain_max_retries: int = Field(5, description="tries of one request before it fails")
    chain_weekly_expiries: int = Field(2, description="nearest weekly expiries polled (+monthly)")
    chain_max_age_s: int = Field(
        1800, description="a chain older than this at a snapshot's as_of is not used"
    )
    participant_oi_file: Path | None = Field(
        PROJECT_ROOT / "data" / "nse_participant_oi_daily_2024-09_2026-02.csv",
        description="NSE participant-wise OI: raw reports' folder, one report, or the nets "
        "history; published before the bars (positioning); None = off",
    )
    futures_file: Path | None = Field(
        PROJECT_ROOT / "data" / "nifty_futures_daily_2024-09_2026-02.csv",
        description="near-month future end-of-day rows (positioning, future build-up)",
    )
    chain_spot_band: float = Field(
        0.03, gt=0, description="a chain whose spot is further than this from the bars' is refused"
    )
    chain_file_snapshot_ts: str | None = Field(
        None, description="snapshot time (ISO, with offset) for chain files that lack one"
    )
    chain_file_spot: float | None = Field(
        None, description="spot for chain files that lack one (else the bars' close then)"
    )

    # Reliability, bus side: validation, durability, retention, recovery
    validation_max_future_s: int = Field(
        120, description="how far ahead of the clock a bar may start"
    )
    validation_band_nifty: float = Field(
        0.25, description="NIFTY prices stay within prev close x/÷ (1 + band) (circuit is 20 %)"
    )
    validation_band_vix: float = Field(1.5, description="VIX within prev close x/÷ (1 + band)")
    validation_minute_step_band: float = Field(
        0.05, description="a minute bar stays within the previous minute's close x/÷ (1 + band)"
    )
    health_reject_ratio: float = Field(
        0.05, description="degraded when rejections + errors exceed this share of recent inputs"
    )
    health_reject_window_s: int = Field(60, description="recent health reports the ratio covers")
    redis_appendfsync: Literal["always", "everysec", "no"] = "everysec"
    republish_buffer: int = Field(50_000, description="bars ingest keeps to re-publish a hole")
    digest_ttl_s: int = Field(3 * 86400, description="life of a series' per-day digest hash")
    blocks_maxlen: int = Field(20_000, description="signal blocks kept (≈ 13 days of minutes)")
    dead_letter_maxlen: int = Field(100_000, description="dead letters kept")
    dead_letter_excerpt_bytes: int = Field(4096, description="payload bytes a dead letter keeps")

    # Service lifecycle (lifecycle): reconnecting to Redis, full jitter (shared.bus.lifecycle)
    reconnect_initial_s: float = Field(
        0.2, gt=0, description="ceiling of the first wait before reconnecting to Redis"
    )
    reconnect_max_s: float = Field(5.0, gt=0, description="cap of every reconnect wait")

    # Gateway
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8765
    api_token: str | None = Field(None, exclude=True, repr=False)
    cors_origins: str = Field("", description="comma-separated origins; empty = same-origin")
    ws_queue_size: int = 64
    ws_heartbeat_s: float = 15.0
    # Gateway reliability: block admission, websocket limits
    block_max_bytes: int = Field(
        262_144, gt=0, description="largest block (as JSON) the gateway shows; larger: refused"
    )
    block_future_tolerance_s: int = Field(
        300, description="a block may lead the wall clock or the newest input bar by this"
    )
    ws_resync_interval_s: float = Field(1.0, description="fewest seconds between two snapshots")
    ws_send_timeout_s: float = Field(30.0, description="a send stuck this long drops the client")

    # Training
    train_end: IsoDate | None = Field(None, description="last date used for training; None = all")
    training_queue: str = "aegis-training"
    # Retrain schedule (dir-cal-cron): rq's CronScheduler in the training worker. The cron
    # expression is read in UTC; an interval, when set, replaces it (rq enqueues an interval
    # job at start, then every interval seconds: tests and demos).
    training_cron_utc: str = Field("30 0 * * 6", description="Saturday 06:00 IST by default")
    training_interval_s: int | None = Field(None, ge=1, description="replaces the cron")
    training_schedule_profile: Literal["full", "fast"] = "full"

    # History (services/history, docs/HISTORY.md): where the signal history is kept
    history_url: str = Field(
        "",
        exclude=True,
        repr=False,  # a PostgreSQL URL may carry a password
        description="history database: postgresql+psycopg://...; empty = var/history.sqlite3",
    )
    history_detail_days: int = Field(
        30, ge=1, description="every block and point kept this many days of stream time"
    )
    history_idle_cpu_in_replay: bool = Field(
        True,
        description="in a replay, write the history on idle CPU only (Linux SCHED_IDLE): it "
        "catches up after the flood instead of slowing the engines",
    )
    history_downsample_s: int = Field(
        900, ge=60, description="older than that: one block per engine and point per series each"
    )

    # Alerts (services/alerts, docs/ALERTS.md): rules, where they go, delivery retries
    alerts_rules: Path | None = Field(None, description="rules TOML; None = the shipped defaults")
    alerts_urls: str = Field("", exclude=True, repr=False, description="Apprise URLs (secret)")
    alerts_urls_file: Path | None = Field(None, description="file of Apprise URLs (a secret)")
    alerts_send_attempts: int = Field(5, ge=1, description="tries of one send, then dead letter")
    alerts_backoff_initial_s: float = Field(1.0, gt=0, description="first wait between tries")
    alerts_backoff_max_s: float = Field(60.0, gt=0, description="longest wait between tries")
    alerts_claim_ttl_s: int = Field(14 * 86400, ge=60, description="life of a send claim")
    alerts_lease_ms: int = Field(10_000, ge=500, description="leader lease of one replica")
    alerts_maxlen: int = Field(10_000, description="alerts kept in aegis:alerts")
    alerts_idle_cpu_in_replay: bool = Field(
        True,
        description="in a replay (source file or stream), run the alerts on idle CPU only "
        "(Linux SCHED_IDLE): they catch up after the flood; live, the niceness alone",
    )
    alerts_wait_for_replay: bool = Field(
        True,
        description="while a replay run as fast as possible pours blocks in, read none; catch "
        "up once they stop (the same alerts, after the flood); live or paced, read as they come",
    )
    alerts_nice: int = Field(
        19, ge=0, le=19, description="CPU niceness added to the alerts service (below the engines)"
    )
    public_url: str = Field("", description="dashboard address in alert links")

    log_level: str = "INFO"
    log_json: bool | None = Field(None, description="JSON lines; None = JSON unless a terminal")

    @field_validator("chain_file", "participant_oi_file", "futures_file", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        """An optional input file set to an empty string is switched off (not ``.``)."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _redis_url_credentials(self) -> Settings:
        """The embedded server's URL when none is given; a URL without credentials gets the
        user and password when either was set. Frozen: filled in once, here."""
        url = self.redis_url or f"redis://{self.redis_host}:{self.redis_port}/0"
        given = bool(self.redis_user) or "redis_password" in self.model_fields_set
        parts = urlsplit(url)
        if parts.username is None and parts.password is None and (given or not self.redis_url):
            userinfo = f"{quote(self.redis_user, safe='')}:{quote(self.redis_password, safe='')}"
            url = urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
        object.__setattr__(self, "redis_url", url)
        return self

    @model_validator(mode="after")
    def _history_in_var(self) -> Settings:
        """The embedded history database lives in ``var_dir`` unless a URL is given."""
        if not self.history_url:
            object.__setattr__(self, "history_url", f"sqlite:///{self.var_dir / 'history.sqlite3'}")
        return self

    @property
    def live(self) -> bool:
        """The feed is live market data (not a replay of files or a recorded stream)."""
        return self.source == "yfinance"

    def with_credentials(self, user: str, password: str) -> Settings:
        """These settings connecting to the same server as ``user``."""
        parts = urlsplit(self.redis_address)
        userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}"
        url = urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
        return self.model_copy(
            update={"redis_user": user, "redis_password": password, "redis_url": url}
        )

    @property
    def redis_address(self) -> str:
        """The Redis URL without credentials: safe to log or hand to another process."""
        parts = urlsplit(self.redis_url)
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every sentinel named in AEGIS_REDIS_SENTINELS."""
        out = []
        for item in filter(None, (x.strip() for x in self.redis_sentinels.split(","))):
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"AEGIS_REDIS_SENTINELS: {item!r} is not host:port")
            out.append((host, int(port)))
        return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
