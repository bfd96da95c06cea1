"""The one configuration object. Every value comes from an ``AEGIS_*`` environment variable
or its default; components receive a ``Settings`` instead of reading the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Dates stay ISO strings (compared as text with the data files), so they must be well formed.
IsoDate = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AEGIS_", frozen=True, extra="forbid")

    # Redis: without AEGIS_REDIS_URL, the URL of the embedded server (port and password)
    redis_url: str = ""
    redis_port: int = 6390
    redis_password: str = "aegis-local"
    embedded_redis: bool = True

    # Folders
    var_dir: Path = PROJECT_ROOT / "var"
    data_dir: Path = PROJECT_ROOT / "data"
    model_dir: Path = PROJECT_ROOT / "var" / "models"
    output_path: Path = PROJECT_ROOT / "var" / "aegismatrix.json"

    # Bus
    stream_maxlen: int = Field(1_000_000, description="approximate MAXLEN of every stream")
    read_count: int = Field(256, description="entries per XREADGROUP batch")
    block_ms: int = Field(1000, description="how long a blocking read waits")
    claim_idle_ms: int = Field(15_000, description="idle time after which another replica claims")
    max_deliveries: int = Field(5, description="deliveries before a message is dead-lettered")
    handler_attempts: int = Field(3, description="in-process tries of a failing handler")
    health_ttl_s: int = 15

    # Clock: wall for live use; event makes replays reproducible byte for byte
    clock: Literal["wall", "event"] = "wall"

    # Ingest
    source: Literal["file", "stream", "yfinance"] = "file"
    replay_speed: float = Field(60.0, description="0 = as fast as possible, 60 = 60x real time")
    replay_daily_from: IsoDate | None = Field("2017-01-01", description="first daily bar replayed")
    replay_intraday_from: IsoDate | None = Field(
        "2022-06-01", description="first 1-minute bar replayed"
    )
    replay_paced_from: IsoDate | None = Field(
        "2022-06-01", description="bars before this replay as fast as possible, later ones paced"
    )
    replay_end: IsoDate | None = None
    replay_max_gap_s: float = Field(1.0, description="longest wall wait between two replayed bars")
    replay_file: Path | None = Field(None, description="recorded stream file for source=stream")
    yfinance_cache_dir: Path = PROJECT_ROOT / "var" / "yfinance-cache"
    yfinance_min_interval_s: float = Field(2.0, description="minimum seconds between requests")
    yfinance_poll_s: float = 60.0
    yfinance_max_retries: int = 5

    # Engines
    chain_file: Path | None = Field(
        None, description="option-chain CSV for max pain; None = no chain"
    )
    coverage_target: float = 0.90
    # A block is stale once newer data was due (NSE calendar) longer ago than this
    freshness_intraday_s: int = Field(300, description="grace after the next minute is due")
    freshness_daily_s: int = Field(3 * 3600, description="grace after the next close is due")

    # Gateway
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8765
    api_token: str | None = None
    cors_origins: str = "*"
    ws_queue_size: int = 64
    ws_heartbeat_s: float = 15.0

    # Training
    train_end: IsoDate | None = Field(None, description="last date used for training; None = all")
    training_queue: str = "aegis-training"
    # Retrain schedule (dir-cal-cron): rq's CronScheduler in the training worker. The cron
    # expression is read in UTC; an interval, when set, replaces it (rq enqueues an interval
    # job at start, then every interval seconds: tests and demos).
    training_cron_utc: str = Field("30 0 * * 6", description="Saturday 06:00 IST by default")
    training_interval_s: int | None = Field(None, ge=1, description="replaces the cron")
    training_schedule_profile: Literal["full", "fast"] = "full"

    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _embedded_redis_url(self) -> Settings:
        if not self.redis_url:
            url = f"redis://:{self.redis_password}@127.0.0.1:{self.redis_port}/0"
            object.__setattr__(self, "redis_url", url)  # frozen: filled in once, here
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
