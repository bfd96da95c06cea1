"""Chain file layouts: NSE's option-chain export, end-of-day tables and F&O bhavcopies,
from the values of a real NSE response (tests/fixtures/nse), and per-file rejections."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from services.ingest.sources.base import RejectedInput
from services.ingest.sources.chain_file import ChainFileSource, daily_close_spot
from services.ingest.sources.chain_formats import (
    FileContext,
    detect_oi_unit,
    eod_columns,
    lot_size,
    number,
)
from shared.contract.schemas import OptionChain
from tests.conftest import DATA_DIR
from tests.fixtures.nse import recorded
from tests.narrowing import every

SNAPSHOT = 1648444639  # 2022-03-28T10:47:19+05:30, the response's own timestamp
CLOSE_2022_03_28 = 1648461600  # 15:30 IST
CLOSE_2008_10_24 = 1224842400  # 15:30 IST
BARS = daily_close_spot(DATA_DIR / "nifty50_daily.csv")


def load(path: Path, context: FileContext | None = None) -> list[OptionChain | RejectedInput]:
    return list(ChainFileSource(path, context=context).events())


def load_chains(path: Path, context: FileContext | None = None) -> list[OptionChain]:
    """``load`` of a file that gives chains only."""
    return every(load(path, context), OptionChain)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_lot_sizes_and_numbers() -> None:
    assert lot_size(date(2022, 3, 31)) == 50
    assert lot_size(date(2024, 5, 2)) == 25 and lot_size(date(2024, 12, 26)) == 25
    assert lot_size(date(2025, 1, 2)) == 75
    assert lot_size(date(2025, 6, 26)) == 75
    assert lot_size(date(2025, 12, 30)) == 75 and lot_size(date(2026, 1, 6)) == 65
    assert number('"17,72,550"') == 1772550 and number("-") is None and number(" ") is None
    with pytest.raises(ValueError):
        number("abc")


def test_nse_export_loads_with_lots_turned_into_units(tmp_path: Path) -> None:
    path = write(
        tmp_path, "option-chain-ED-NIFTY-31-Mar-2022.csv", recorded.nse_export("31-Mar-2022")
    )
    assert '"17,500.00"' in path.read_text()  # the layout as published: Indian separators
    (chain,) = load(path, FileContext(SNAPSHOT, 17022.5, BARS))
    assert isinstance(chain, OptionChain)
    real = recorded.rows_of("31-Mar-2022")
    assert (chain.expiry, chain.snapshot_time, chain.spot) == ("2022-03-31", SNAPSHOT, 17022.5)
    assert chain.lot_size == 50 and len(chain.quotes) == len(real)
    q = next(q for q in chain.quotes if q.strike == 17000)
    raw = next(r for r in real if r["strikePrice"] == 17000)
    assert q.ce_oi == raw["CE"]["openInterest"] * 50
    assert q.pe_oi_change == raw["PE"]["changeinOpenInterest"] * 50
    assert q.ce_volume == raw["CE"]["totalTradedVolume"] * 50
    assert q.ce_iv == pytest.approx(raw["CE"]["impliedVolatility"] / 100)
    assert (q.ce_ltp, q.pe_ltp) == (raw["CE"]["lastPrice"], raw["PE"]["lastPrice"])
    assert q.ce_bid == raw["CE"]["bidprice"] and q.pe_ask == raw["PE"]["askPrice"]
    # "-" cells: an untraded strike has no LTP, no IV, zero OI
    untraded = [q for q in chain.quotes if q.ce_ltp is None]
    assert untraded and all(q.ce_iv is None for q in untraded)


def test_nse_export_saved_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "option-chain-ED-NIFTY-07-Apr-2022.csv"
    path.write_text(recorded.nse_export("07-Apr-2022"), encoding="utf-8-sig")
    (chain,) = load(path, FileContext(SNAPSHOT, 17022.5, BARS))
    assert isinstance(chain, OptionChain) and chain.expiry == "2022-04-07"


def test_nse_export_without_snapshot_time_or_expiry_is_rejected_by_name(tmp_path: Path) -> None:
    text = recorded.nse_export("31-Mar-2022")
    path = write(tmp_path, "option-chain-ED-NIFTY-31-Mar-2022.csv", text)
    (rejected,) = load(path, FileContext(None, None, BARS))
    assert isinstance(rejected, RejectedInput)
    assert "AEGIS_CHAIN_FILE_SNAPSHOT_TS" in rejected.reason
    (no_expiry,) = load(write(tmp_path, "chain.csv", text), FileContext(SNAPSHOT, 1.0, BARS))
    assert isinstance(no_expiry, RejectedInput) and "file name" in no_expiry.reason
    # an intraday snapshot has no bar close to take the spot from: named, not invented
    (no_spot,) = load(path, FileContext(SNAPSHOT, None, BARS))
    assert isinstance(no_spot, RejectedInput) and "AEGIS_CHAIN_FILE_SPOT" in no_spot.reason
    bad = text.replace('"17,500.00"', '"17,5x0.00"')
    (bad_row,) = load(
        write(tmp_path, "option-chain-ED-NIFTY-31-Mar-2022.csv", bad),
        FileContext(SNAPSHOT, 17022.5, BARS),
    )
    assert isinstance(bad_row, RejectedInput) and "line" in bad_row.reason


def test_eod_table_takes_spot_from_the_bars_at_the_close(tmp_path: Path) -> None:
    path = write(tmp_path, "eod.csv", recorded.eod_table())
    chains = load_chains(path, FileContext(CLOSE_2022_03_28, None, BARS))
    assert [c.expiry for c in chains] == ["2022-03-31", "2022-04-07", "2022-04-28"]
    close = BARS(CLOSE_2022_03_28)
    assert close is not None and all(c.spot == close for c in chains)
    assert sum(len(c.quotes) for c in chains) == sum(
        len(recorded.rows_of(e)) for e in recorded.EXPIRIES
    )
    raw = next(r for r in recorded.rows_of("07-Apr-2022") if r["strikePrice"] == 17000)
    q = next(q for q in chains[1].quotes if q.strike == 17000)
    assert q.pe_oi == raw["PE"]["openInterest"] * 50
    assert q.pe_iv == pytest.approx(raw["PE"]["impliedVolatility"] / 100)


def test_eod_table_problems_name_the_missing_piece(tmp_path: Path) -> None:
    (no_oi,) = load(write(tmp_path, "a.csv", "expiry,strike,ce_ltp\n2022-03-31,17000,10\n"))
    assert isinstance(no_oi, RejectedInput) and "ce_oi or pe_oi" in no_oi.reason
    text = "expiry,strike,ce_oi,pe_oi\n2022-03-31,17000,10,20\n"
    (no_spot,) = load(write(tmp_path, "b.csv", text), FileContext(SNAPSHOT, None, BARS))
    assert isinstance(no_spot, RejectedInput) and "no spot" in no_spot.reason
    bad = "expiry,strike,ce_oi,pe_oi\n2022-13-31,17000,10,20\n"
    (bad_date,) = load(write(tmp_path, "c.csv", bad), FileContext(SNAPSHOT, 1.0, BARS))
    assert isinstance(bad_date, RejectedInput) and "line 2" in bad_date.reason


def test_udiff_bhavcopy_one_chain_per_expiry_spot_from_underlying(tmp_path: Path) -> None:
    chains = load_chains(
        write(tmp_path, "BhavCopy_NSE_FO_0_0_0_20220328_F_0000.csv", recorded.udiff_bhavcopy())
    )
    assert [c.expiry for c in chains] == ["2022-03-31", "2022-04-07", "2022-04-28"]
    assert all(c.snapshot_time == CLOSE_2022_03_28 and c.spot == recorded.SPOT for c in chains)
    raw = next(r for r in recorded.rows_of("31-Mar-2022") if r["strikePrice"] == 17000)
    q = next(q for q in chains[0].quotes if q.strike == 17000)
    assert q.ce_oi == raw["CE"]["openInterest"] * 50 and q.ce_ltp == raw["CE"]["lastPrice"]
    assert q.ce_iv is None  # a bhavcopy publishes no IV: implied later, never invented here


def test_classic_bhavcopy_spot_from_bars_and_gzip(tmp_path: Path) -> None:
    path = tmp_path / "fo28MAR2022bhav.csv.gz"
    with gzip.open(path, "wt") as out:
        out.write(recorded.classic_bhavcopy())
    (chain,) = load(path, FileContext(None, None, BARS))
    assert isinstance(chain, OptionChain) and chain.expiry == "2022-03-31"
    assert chain.spot == BARS(CLOSE_2022_03_28)
    cut = recorded.CLASSIC_HEADER.replace("OPEN_INT,", "")
    (rejected,) = load(write(tmp_path, "fo.csv", cut + "\n"))
    assert isinstance(rejected, RejectedInput) and "OPEN_INT" in rejected.reason


def test_unknown_layouts_and_missing_columns_are_rejections_not_crashes(tmp_path: Path) -> None:
    (unknown,) = load(write(tmp_path, "x.csv", "a,b,c\n1,2,3\n"))
    assert isinstance(unknown, RejectedInput) and "unknown chain file layout" in unknown.reason
    lacking = "snapshot_ts,expiry,strike,spot\n2026-01-22T09:39:45+05:30,2026-01-27,25400,25403.6\n"
    (missing,) = load(write(tmp_path, "y.csv", lacking))
    assert isinstance(missing, RejectedInput) and "ce_ltp" in missing.reason
    (empty,) = load(write(tmp_path, "z.csv", ""))
    assert isinstance(empty, RejectedInput)
    (absent,) = load(tmp_path / "absent.csv")
    assert isinstance(absent, RejectedInput) and "absent.csv" in absent.reason


def test_a_folder_of_daily_files_is_read_in_time_order(tmp_path: Path) -> None:
    folder = tmp_path / "bhav"
    folder.mkdir()
    write(folder, "b_fo28MAR2022bhav.csv", recorded.classic_bhavcopy())
    later = recorded.udiff_bhavcopy().replace("2022-03-28,2022-03-28,", "2022-03-29,2022-03-29,")
    write(folder, "a_BhavCopy_NSE_FO_0_0_0_20220329_F_0000.csv", later)
    write(folder, "c_broken.csv", "a,b\n1,2\n")
    events = load(folder, FileContext(None, None, BARS))
    rejected = [e for e in events if isinstance(e, RejectedInput)]
    chains = [e for e in events if isinstance(e, OptionChain)]
    assert len(rejected) == 1 and "c_broken.csv" in rejected[0].reason
    assert [c.snapshot_time for c in chains] == sorted(c.snapshot_time for c in chains)
    assert chains[0].snapshot_time == CLOSE_2022_03_28 and len(chains) == 4


NSE_FIXTURES = Path(__file__).parent / "fixtures" / "nse"


def test_a_real_udiff_bhavcopy_extract_keeps_only_nifty_index_options() -> None:
    """Real lines of NSE's 2025-09-02 UDiFF bhavcopy: two NIFTY option legs, one of them on
    its expiry day; futures, stock options and BANKNIFTY are skipped."""
    chains = load_chains(NSE_FIXTURES / "BhavCopy_NSE_FO_0_0_0_20250902_F_0000.csv")
    assert [c.expiry for c in chains] == ["2025-09-02", "2025-09-09"]
    assert {c.spot for c in chains} == {24579.60}  # UndrlygPric
    assert {c.lot_size for c in chains} == {75}
    (put,) = chains[1].quotes
    assert (put.strike, put.pe_ltp, put.pe_oi) == (24100.0, 18.55, 1678575.0)
    # TtlTradgVol 140322 is in contracts: TtlTrfVal 253797776433.75 / (24100 + premium)
    # is about 10.52 million units, 75 a contract; the loader turns it into units
    assert (put.pe_oi_change, put.pe_volume, put.ce_ltp) == (778050.0, 140322.0 * 75, None)
    (call,) = chains[0].quotes
    assert (call.strike, call.ce_ltp, call.ce_oi_change) == (22600.0, 1997.45, -4950.0)


def test_a_real_classic_bhavcopy_extract_takes_spot_from_the_bars() -> None:
    """Real lines of NSE's classic F&O bhavcopy of 2008-10-24 (trailing comma and all)."""
    (chain,) = load(NSE_FIXTURES / "fo24OCT2008bhav.csv", FileContext(None, None, BARS))
    assert isinstance(chain, OptionChain) and chain.expiry == "2008-10-29"
    assert chain.spot == BARS(CLOSE_2008_10_24) and chain.lot_size == 50
    (quote,) = chain.quotes
    assert (quote.strike, quote.ce_ltp, quote.ce_oi) == (2750.0, 48.45, 465500.0)
    assert (quote.pe_ltp, quote.pe_oi, quote.pe_oi_change) == (237.6, 374300.0, 374300.0)


def test_a_real_nse_option_chain_export_loads_with_its_time_and_spot_from_settings() -> None:
    """NSE's "Download (.csv)" of the 25-Jul-2024 expiry as published: two header rows,
    Indian thousands separators, "-" cells, ragged trailing cells. The export carries no
    snapshot time or spot, so they come from the settings (here: made up, not from NSE)."""
    path = NSE_FIXTURES / "option-chain-ED-NIFTY-25-Jul-2024.csv"
    (chain,) = load(path, FileContext(CLOSE_2022_03_28, 22_900.0, BARS))
    assert isinstance(chain, OptionChain)
    assert (chain.expiry, chain.lot_size, len(chain.quotes)) == ("2024-07-25", 25, 68)
    q = next(q for q in chain.quotes if q.strike == 23_000)
    assert (q.ce_oi, q.ce_oi_change, q.ce_ltp, q.ce_bid, q.ce_ask) == (
        1236 * 25,
        305 * 25,
        613.25,
        607.0,
        617.95,
    )
    assert q.ce_iv == pytest.approx(0.1238) and q.pe_iv == pytest.approx(0.1722)
    assert (q.pe_oi, q.pe_ltp) == (923 * 25, 682.95)
    empty = next(q for q in chain.quotes if q.strike == 20_650)
    assert (empty.ce_ltp, empty.ce_oi, empty.pe_bid, empty.pe_ltp) == (None, 0.0, 54.05, None)
    (no_time,) = load(path, FileContext(None, 22_900.0, BARS))
    assert isinstance(no_time, RejectedInput) and "AEGIS_CHAIN_FILE_SNAPSHOT_TS" in no_time.reason


EOD_HEAD = "expiry,strike,ce_oi,{change},pe_oi,pe_oi_change,ce_ltp,pe_ltp"
EOD_ROWS = (
    "2022-03-31,16900,{a},-{c},{b},{c},160,40\n2022-03-31,17000,{b},{c},{a},-{c},90,70\n"
    "2022-03-31,17100,{a},0,{a},{c},40,120\n"
)


def eod(change: str, a: int = 5100, b: int = 2550, c: int = 150, extra: str = "") -> str:
    return EOD_HEAD.format(change=change) + extra + "\n" + EOD_ROWS.format(a=a, b=b, c=c)


def test_change_in_oi_aliases_are_mapped_and_unknown_columns_reported(tmp_path: Path) -> None:
    ctx = FileContext(SNAPSHOT, 17022.5, BARS)
    for alias in ("ce_chng_in_oi", "ce_oi_chg", "CE_Change_In_OI"):
        (chain,) = load(write(tmp_path, "eod.csv", eod(alias)), ctx)
        assert isinstance(chain, OptionChain)
        assert [q.ce_oi_change for q in chain.quotes] == [-150.0, 150.0, 0.0]
    with capture_logs() as logs:
        (chain,) = load(write(tmp_path, "eod.csv", eod("ce_coi_x", extra=",foo")), ctx)
    assert isinstance(chain, OptionChain)
    assert all(q.ce_oi_change is None for q in chain.quotes)  # not loaded under a guess...
    (warning,) = [e for e in logs if e["event"] == "chain_file_unknown_columns"]
    assert warning["columns"] == ["ce_coi_x", "foo"]  # ...and not silently: named
    assert eod_columns(["expiry", "strike", "pe_oi_chng", "x"]) == (
        {"expiry": "expiry", "strike": "strike", "pe_oi_change": "pe_oi_chng"},
        ["x"],
    )
    (both,) = load(write(tmp_path, "eod.csv", eod("ce_oi_change", extra=",ce_oi_chg")), ctx)
    assert isinstance(both, RejectedInput) and "both give ce_oi_change" in both.reason


def test_eod_oi_unit_is_declared_or_detected_never_assumed(tmp_path: Path) -> None:
    ctx = FileContext(SNAPSHOT, 17022.5, BARS)
    # every non-zero OI a multiple of the 2022 lot (50): detected as units, kept as is
    (units,) = load(write(tmp_path, "u.csv", eod("ce_oi_change")), ctx)
    assert isinstance(units, OptionChain) and units.quotes[0].ce_oi == 5100
    # contract counts (not lot multiples), undeclared: rejected with how to declare
    counts = eod("ce_oi_change", a=102, b=51, c=3)
    (undeclared,) = load(write(tmp_path, "c.csv", counts), ctx)
    assert isinstance(undeclared, RejectedInput)
    assert "oi_unit" in undeclared.reason and "line 2" in undeclared.reason
    # declared by the caller (FileContext.oi_unit) or a column: turned into units
    declared = FileContext(SNAPSHOT, 17022.5, BARS, oi_unit="contracts")
    (chain,) = load(write(tmp_path, "c.csv", counts), declared)
    assert isinstance(chain, OptionChain)
    assert (chain.quotes[0].ce_oi, chain.quotes[0].ce_oi_change) == (102 * 50, -3 * 50)
    column = counts.replace("pe_ltp\n", "pe_ltp,oi_unit\n").replace(",120\n", ",120,lots\n")
    column = column.replace(",40\n", ",40,contracts\n").replace(",70\n", ",70,contracts\n")
    (chain,) = load(write(tmp_path, "d.csv", column), ctx)
    assert isinstance(chain, OptionChain) and chain.quotes[2].pe_oi == 102 * 50
    (bad,) = load(write(tmp_path, "e.csv", column.replace("lots", "crores")), ctx)
    assert isinstance(bad, RejectedInput) and "line 4: oi_unit 'crores'" in bad.reason
    wrong = FileContext(SNAPSHOT, 17022.5, BARS, oi_unit="bales")
    (bad_ctx,) = load(write(tmp_path, "c.csv", counts), wrong)
    assert isinstance(bad_ctx, RejectedInput) and "FileContext.oi_unit" in bad_ctx.reason
    # too few non-zero values to tell units from contracts: declare
    assert detect_oi_unit([(date(2022, 3, 31), 5100.0)] * 4) is None
    assert detect_oi_unit([(date(2022, 3, 31), 5100.0)] * 5) == "units"
    assert detect_oi_unit([(date(2026, 1, 6), 130.0)] * 4 + [(date(2026, 1, 6), 150.0)]) is None


def test_bhavcopy_without_a_change_in_oi_column_says_so(tmp_path: Path) -> None:
    text = (NSE_FIXTURES / "BhavCopy_NSE_FO_0_0_0_20250902_F_0000.csv").read_text()
    cut = "\n".join(
        ",".join(c for i, c in enumerate(line.split(",")) if i != 23) for line in text.splitlines()
    )
    assert "ChngInOpnIntrst" not in cut
    with capture_logs() as logs:
        chains = load_chains(write(tmp_path, "BhavCopy_NSE_FO_0_0_0_20250902_F_0000.csv", cut))
    assert all(q.pe_oi_change is None and q.ce_oi_change is None for c in chains for q in c.quotes)
    assert [e["expected"] for e in logs if e["event"] == "chain_file_no_oi_change"] == [
        "ChngInOpnIntrst"
    ]
