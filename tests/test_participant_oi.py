"""NSE's participant-wise OI report (tests/fixtures/nse/fao_participant_oi_*.csv) and the
shared history (data/nse_participant_oi_daily_2024-09_2026-02.csv) read into one record
type; the raw days reproduce the history's nets exactly, and bad files say what and where."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from services.ingest.sources.participant_oi import (
    ParticipantOIError,
    load_participant_oi,
    parse_participant_oi,
    read_participant_oi,
    read_participant_oi_history,
    write_participant_oi_history,
)
from shared.market.participant_oi import HISTORY_COLUMNS, PARTICIPANTS
from tests.conftest import DATA_DIR

NSE = Path(__file__).parent / "fixtures" / "nse"
HISTORY = DATA_DIR / "nse_participant_oi_daily_2024-09_2026-02.csv"
RAW_0602 = NSE / "fao_participant_oi_06022026.csv"


def raw_text() -> str:
    return RAW_0602.read_text()


def test_a_raw_day_parses_into_long_short_and_nets() -> None:
    day = read_participant_oi(RAW_0602)
    assert day.day == date(2026, 2, 6) and day.source == RAW_0602.name
    fii = day.fii
    assert fii.raw is not None
    assert (fii.raw.future_index_long, fii.raw.future_index_short) == (43462, 193712)
    assert fii.index_future_net == 43462 - 193712 == -150250
    assert fii.index_call_net == 707691 - 738387
    assert fii.index_put_net == 986167 - 669259
    assert fii.index_option_direction == fii.index_call_net - fii.index_put_net == -347604
    assert fii.total_net == 5952620 - 4535495
    # every category nets to zero over the four participant types, but for NSE's own slip
    # that day: the four Option Index Put Short add up to one above the TOTAL row (and Pro's
    # Total Short Contracts is one below the sum of its columns)
    for field in ("index_future_net", "stock_future_net", "index_call_net", "total_net"):
        assert sum(getattr(day.participant(p), field) for p in PARTICIPANTS) == 0
    assert sum(day.participant(p).index_put_net for p in PARTICIPANTS) == -1


def test_raw_days_reproduce_the_shared_history_exactly() -> None:
    history = {d.day: d for d in read_participant_oi_history(HISTORY)}
    raw = load_participant_oi(NSE)  # the folder: only fao_participant_oi_* files are read
    assert [d.day for d in raw] == [date(2026, 2, 4), date(2026, 2, 5), date(2026, 2, 6)]
    for day in raw:
        assert day.history_row() == history[day.day].history_row()


def test_history_reads_344_sessions_ending_2026_02_06_and_round_trips(tmp_path: Path) -> None:
    days = load_participant_oi(HISTORY)
    assert len(days) == 344 and days[0].day == date(2024, 9, 20)
    assert days[-1].day == date(2026, 2, 6)  # nothing after the data cut-off
    assert days[0].fii.index_future_net == 359062 and days[0].fii.raw is None
    out = tmp_path / "history.csv"
    write_participant_oi_history(days, out)
    assert out.read_text().splitlines()[0] == ",".join(HISTORY_COLUMNS)
    assert [d.history_row() for d in read_participant_oi_history(out)] == [
        d.history_row() for d in days
    ]


def test_history_direction_must_be_call_minus_put(tmp_path: Path) -> None:
    lines = HISTORY.read_text().splitlines()
    cells = lines[2].split(",")
    cells[5] = str(float(cells[5]) + 1)  # fii_index_option_direction
    bad = tmp_path / "h.csv"
    bad.write_text("\n".join([lines[0], lines[1], ",".join(cells)]) + "\n")
    with pytest.raises(ParticipantOIError, match=r"h\.csv line 3: fii_index_option_direction"):
        read_participant_oi_history(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace("Option Index Put Long", "Option Index Put Lng"), "line 2: header"),
        (lambda t: t.replace("Open Interest", "Trading Volume"), "trading-volume report"),
        (lambda t: t.replace("as on Feb 06, 2026", "as of today"), "no 'as on"),
        (
            lambda t: "\n".join(x for x in t.splitlines() if not x.startswith("DII")),
            "no row for DII",
        ),
        (lambda t: t.replace("FII,43462,", "FII,43x62,"), "line 5: Future Index Long = '43x62'"),
        (lambda t: t.replace("FII,43462,", "Banks,43462,"), "line 5: unknown client type 'Banks'"),
        (lambda t: t.replace("Pro,20769,", "Pro,20772,"), "line 6: Total Long Contracts"),
        (lambda t: t.replace("4535495", "4535499"), "line 5: Total Short Contracts"),
        (
            lambda t: t.replace("TOTAL,341553,341553,", "TOTAL,341553,341653,").replace(
                "23318309,23318309", "23318309,23318409"
            ),
            "line 7: TOTAL Future Index Short 341653 != 341553",
        ),
        (lambda t: t.replace("5952620,4535495", "5952620"), "line 5: 13 values, expected 14"),
        (lambda t: t.splitlines()[0], "no header"),
    ],
)
def test_bad_files_name_the_file_line_and_problem(
    change: Callable[[str], str], message: str
) -> None:
    with pytest.raises(ParticipantOIError, match=message.replace("(", r"\(")) as caught:
        parse_participant_oi(change(raw_text()), "fao_participant_oi_06022026.csv")
    assert "fao_participant_oi_06022026.csv" in str(caught.value)


def test_nse_own_one_contract_slips_are_tolerated_but_not_more() -> None:
    """NSE's published totals slip by a contract now and then: on 2026-02-06 Pro's Total
    Short Contracts is one above its columns' sum (on 2023-08-10 the TOTAL row's Option Index
    Call Short was one off). The default tolerance (2) reads the file; 0 names the slip."""
    assert parse_participant_oi(raw_text()).pro.total_net == 5299462 - 5340135
    with pytest.raises(ParticipantOIError, match="line 6: Total Short Contracts 5340135"):
        parse_participant_oi(raw_text(), tolerance=0)
    off = raw_text().replace("TOTAL,341553,341553,", "TOTAL,341554,341553,")
    off = off.replace("23318309,23318309", "23318310,23318309")
    assert parse_participant_oi(off).fii.index_future_net == -150250
    with pytest.raises(ParticipantOIError, match="TOTAL Future Index Long 341557"):
        parse_participant_oi(
            off.replace("TOTAL,341554,", "TOTAL,341557,").replace(
                "23318310,23318309", "23318313,23318309"
            )
        )


def test_title_date_must_match_the_file_name_and_dates_must_not_repeat(tmp_path: Path) -> None:
    wrong = tmp_path / "fao_participant_oi_05022026.csv"
    wrong.write_text(raw_text())
    with pytest.raises(ParticipantOIError, match="differs from the file name's 2026-02-05"):
        read_participant_oi(wrong)
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "fao_participant_oi_06022026.csv").write_text(raw_text())
    (folder / "copy_fao_participant_oi_06022026.csv").write_text(raw_text())
    with pytest.raises(ParticipantOIError, match="unique and increasing"):
        load_participant_oi(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ParticipantOIError, match="no fao_participant_oi"):
        load_participant_oi(empty)


def test_lf_endings_full_month_names_and_a_byte_order_mark(tmp_path: Path) -> None:
    text = raw_text().replace("\r\n", "\n").replace("Feb 06, 2026", "February 06, 2026")
    path = tmp_path / "fao_participant_oi_06022026.csv"
    path.write_text(text, encoding="utf-8-sig")
    assert read_participant_oi(path).day == date(2026, 2, 6)
