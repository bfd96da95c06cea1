"""ChainFileSource against the real NSE/Kite intraday option-chain file."""

from __future__ import annotations

import gzip
from pathlib import Path

from services.ingest.sources.base import RejectedInput
from services.ingest.sources.chain_file import ChainFileSource
from services.ingest.sources.pacing import Pacer
from shared.contract.schemas import OptionChain
from tests.conftest import DATA_DIR
from tests.narrowing import every

CHAIN_FILE = DATA_DIR / "nifty_option_chain_intraday_2026-01-22_2026-02-05.csv.gz"
HEADER = "snapshot_ts,expiry,strike,ce_ltp,ce_oi,ce_volume,pe_ltp,pe_oi,pe_volume,spot\n"


def test_real_file_yields_every_snapshot_in_order() -> None:
    events = every(ChainFileSource(CHAIN_FILE).events(), OptionChain)
    assert len(events) == 411
    times = [e.snapshot_time for e in events]
    assert times == sorted(times)
    first = events[0]
    assert first.snapshot_time == 1769054985  # 2026-01-22T09:39:45+05:30
    assert first.expiry == "2026-01-27" and first.spot == 25403.6
    assert {e.expiry for e in events} == {"2026-01-27", "2026-02-03", "2026-02-10"}
    assert all(95 <= len(e.quotes) <= 101 for e in events)
    q = first.quotes[0]
    assert (q.strike, q.ce_ltp, q.ce_oi, q.pe_ltp, q.pe_oi) == (23400.0, None, 0.0, 7.85, 1446770.0)
    assert all(x.ce_oi % 65 == 0 and x.pe_oi % 65 == 0 for e in events for x in e.quotes)
    last = events[-1]
    assert last.snapshot_time == 1770271378  # 2026-02-05T11:32:58+05:30
    assert (last.expiry, last.spot) == ("2026-02-10", 25653.1)


def test_bad_rows_and_snapshots_are_rejected_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "chain.csv.gz"
    rows = [
        "2026-01-22T09:39:45+05:30,2026-01-27,25400,120.5,650,0,98.0,1300,0,25403.6",
        "2026-01-22T09:39:45+05:30,2026-01-27,25450,abc,650,0,98.0,1300,0,25403.6",
        "2026-01-22T09:39:45+05:30,2026-01-27,25500,0,0,0,140.0,650,0,25403.6",
        "2026-01-22T09:40:45+05:30,2026-01-27,25400,121.0,650,0,97.0,1300,0,-1",
        "2026-01-22T09:41:45,2026-01-27,25400,121.0,650,0,97.0,1300,0,25410.0",
        "2026-01-22T09:42:45+05:30,2026-01-27,25400,122.0,650,0,96.0,1300,0,25412.0",
    ]
    with gzip.open(path, "wt") as out:
        out.write(HEADER + "\n".join(rows) + "\n")
    events = list(ChainFileSource(path).events())
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "RejectedInput",
        "OptionChain",
        "RejectedInput",
        "RejectedInput",
        "OptionChain",
    ]
    bad_row, chain, bad_spot, no_tz, good = events
    assert isinstance(bad_row, RejectedInput) and "ce_ltp='abc'" in bad_row.reason
    assert bad_row.raw.startswith(b"2026-01-22T09:39:45+05:30,2026-01-27,25450,abc")
    assert isinstance(chain, OptionChain) and [q.strike for q in chain.quotes] == [25400, 25500]
    assert chain.quotes[1].ce_ltp is None and chain.quotes[1].pe_ltp == 140.0
    assert isinstance(bad_spot, RejectedInput) and "spot" in bad_spot.reason
    assert isinstance(no_tz, RejectedInput) and "UTC offset" in no_tz.reason
    assert isinstance(good, OptionChain) and good.spot == 25412.0


class FakeTime:
    """A monotonic clock whose waits advance it instantly, recording each wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 6))
        self.now += seconds
        return False


def test_pacer_waits_gap_over_speed_capped() -> None:
    fake = FakeTime()
    pacer = Pacer(60.0, max_gap_s=5.0, wait=fake.wait, monotonic=fake.monotonic)
    for t in (0, 60, 120, 120, 3600):
        assert pacer.pace(t)
    assert fake.waits == [1.0, 1.0, 5.0]


def test_pacer_speed_zero_never_waits() -> None:
    fake = FakeTime()
    pacer = Pacer(0.0, wait=fake.wait, monotonic=fake.monotonic)
    assert all(pacer.pace(t) for t in (0, 10_000, 20_000))
    assert fake.waits == []


def test_chain_source_paced_and_stoppable() -> None:
    source = ChainFileSource(CHAIN_FILE, speed=60.0, max_gap_s=0.01)
    seen = []
    for event in source.events():
        seen.append(event)
        if len(seen) == 3:
            source.close()
    assert len(seen) == 3
