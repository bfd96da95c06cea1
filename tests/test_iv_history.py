"""IV history from real NSE UDiFF bhavcopies (NIFTY rows of 2026-01-02 and 2026-01-05,
tests/fixtures/nse): per day and expiry ATM IV, straddle and parity forward."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from services.ingest.sources.chain_file import ChainFileSource
from services.ingest.sources.iv_history import (
    iv_points,
    load_iv_history,
    read_iv_history,
    write_iv_history,
)
from shared.contract.schemas import OptionChain
from shared.market.chain_view import years_to_expiry
from shared.signals.chain import atm_iv

NSE = Path(__file__).parent / "fixtures" / "nse"
DAYS = ("NIFTY_2026-01-02.csv.gz", "NIFTY_2026-01-05.csv.gz")
# oc_straddle_pct of the nearest expiry in data SOURCES §6b (abhayv7272/FII-DII-Decode),
# derived independently from the same bhavcopies
THEIR_STRADDLE_PCT = {date(2026, 1, 2): 0.508763, date(2026, 1, 5): 0.379615}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bhav")
    for name in DAYS:
        shutil.copy(NSE / name, path / name)
    return path


def test_every_day_and_expiry_gets_a_point(folder: Path) -> None:
    points, rejected = load_iv_history(folder)
    assert rejected == []
    days = sorted({p.day for p in points})
    assert days == [date(2026, 1, 2), date(2026, 1, 5)]
    assert points == sorted(points, key=lambda p: (p.day, p.expiry))
    first = [p for p in points if p.day == date(2026, 1, 2)]
    assert first[0].expiry == date(2026, 1, 6) and first[0].days_to_expiry == 4
    assert {p.spot for p in first} == {26328.55}  # UndrlygPric = the official close
    # the traded weeklies and monthlies: carry lifts the forward with the expiry. A newly
    # listed weekly whose ATM pair barely traded (2026-02-03: 2,405 units) has stale LTPs
    # and no trustworthy parity, so it is left out of this check.
    near = [p for p in first[:6] if (p.atm_volume or 0) >= 100_000]
    assert [p.expiry.isoformat() for p in near][:4] == [
        "2026-01-06", "2026-01-13", "2026-01-20", "2026-01-27"
    ]  # fmt: skip
    forwards = [p.forward for p in near]
    assert all(f is not None for f in forwards)
    assert forwards == sorted(f for f in forwards if f is not None)
    assert all(0.03 < (p.atm_iv or 0) < 0.3 for p in near)


def test_nearest_straddle_agrees_with_an_independent_derivation(folder: Path) -> None:
    points, _ = load_iv_history(folder)
    for day, theirs in THEIR_STRADDLE_PCT.items():
        nearest = min((p for p in points if p.day == day), key=lambda p: p.expiry)
        assert nearest.straddle_pct == pytest.approx(theirs, abs=0.001)


def test_atm_iv_is_the_shared_definition(folder: Path) -> None:
    points, _ = load_iv_history(folder)
    chains = [e for e in ChainFileSource(folder / DAYS[1]).events() if isinstance(e, OptionChain)]
    chain = chains[1]
    point = next(
        p for p in points if p.day == date(2026, 1, 5) and p.expiry.isoformat() == chain.expiry
    )
    assert point.atm_iv == atm_iv(chain.quotes, chain.spot, years_to_expiry(chain))
    assert iv_points([chain])[0] == point


def test_csv_round_trip_and_bad_rows(folder: Path, tmp_path: Path) -> None:
    points, _ = load_iv_history(folder)
    out = tmp_path / "iv.csv"
    write_iv_history(points, out)
    assert read_iv_history(out) == points
    lines = out.read_text().splitlines()
    lines[3] = lines[3].replace("2026-01-", "2026-13-", 1)
    out.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"iv\.csv line 4"):
        read_iv_history(out)
    (tmp_path / "cut.csv").write_text("day,expiry\n2026-01-02,2026-01-06\n")
    with pytest.raises(ValueError, match="lacks columns"):
        read_iv_history(tmp_path / "cut.csv")


def test_an_unreadable_file_is_one_rejection_the_rest_still_counts(
    folder: Path, tmp_path: Path
) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    (mixed / "broken.csv").write_text("TradDt,TckrSymb\n2026-01-06,NIFTY\n")
    points, rejected = load_iv_history(mixed)
    assert len(rejected) == 1 and "broken.csv" in rejected[0]
    assert len({p.day for p in points}) == 2
