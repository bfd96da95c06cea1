"""The alert rules as pure functions (no Redis): hysteresis, cooldown, quiet hours, each
kind's transitions, determinism, and a rules file refused with its line and field named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.alerts.evaluate import (
    Evaluator,
    debounce,
    empty_state,
    in_quiet_hours,
    next_zone,
    path_tree,
    project,
    run,
)
from services.alerts.rules import DEFAULT_RULES, RulesError, load_rules, parse_rules
from shared.contract.schemas import SignalBlock
from tests.alerts_support import RULES, START, at, scenario
from tests.block_factory import make_block

IST_OFFSET = 19_800


def ist_epoch(hhmm: str) -> int:
    """2025-06-30 at HH:MM IST, epoch seconds."""
    h, m = map(int, hhmm.split(":"))
    midnight_ist = (START + IST_OFFSET) // 86_400 * 86_400 - IST_OFFSET
    return midnight_ist + h * 3600 + m * 60


def evaluator(text: str) -> Evaluator:
    return Evaluator(parse_rules(text).active())


BAND = """
[[rule]]
name = "pcr"
kind = "band"
value = "seller.chain.pcr.oi"
low = 0.7
high = 1.3
hysteresis = 0.05
notify_on = ["below", "above", "inside"]
{extra}
"""


def pcr_blocks(values: list[float], step_s: int = 60) -> list:
    return [
        make_block("seller", as_of=START + i * step_s, extra={"chain": {"pcr": {"oi": v}}})
        for i, v in enumerate(values)
    ]


def test_hysteresis_a_value_hovering_at_the_threshold_changes_the_zone_once() -> None:
    assert next_zone("inside", 1.31, 0.7, 1.3, 0.05) == "above"
    assert next_zone("above", 1.29, 0.7, 1.3, 0.05) == "above"  # within the band: held
    assert next_zone("above", 1.25, 0.7, 1.3, 0.05) == "inside"  # back by the hysteresis
    assert next_zone("below", 0.74, 0.7, 1.3, 0.05) == "below"
    assert next_zone("below", 0.76, 0.7, 1.3, 0.05) == "inside"
    hovering = [1.0, 1.31, 1.29, 1.31, 1.28, 1.32, 1.29, 1.31]
    alerts = run(evaluator(BAND.format(extra="")), pcr_blocks(hovering))
    assert [(a.transition, a.as_of) for a in alerts] == [(("inside", "above"), START + 60)]
    # without hysteresis the same values flap on every block
    flapping = run(evaluator(BAND.format(extra="").replace("0.05", "0.0")), pcr_blocks(hovering))
    assert len(flapping) == 7
    back = run(evaluator(BAND.format(extra="")), pcr_blocks([1.0, 1.31, 1.29, 1.24, 0.69]))
    assert [a.transition for a in back] == [
        ("inside", "above"),
        ("above", "inside"),
        ("inside", "below"),
    ]


def test_first_value_sets_the_state_silently() -> None:
    assert run(evaluator(BAND.format(extra="")), pcr_blocks([1.5, 1.6])) == []


def test_cooldown_is_judged_on_block_time() -> None:
    rules = evaluator(BAND.format(extra="cooldown_s = 300"))
    # out at 1 min, back at 2 min (held: 60 s after the last alert), out again at 8 min
    values = [1.0, 1.4, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.4]
    alerts = run(rules, pcr_blocks(values))
    assert [(a.transition, a.as_of - START) for a in alerts] == [
        (("inside", "above"), 60),
        (("inside", "above"), 480),
    ]
    # the state moved on meanwhile: the second alert is a fresh crossing, not a late one


def test_quiet_hours_in_ist_also_across_midnight() -> None:
    assert in_quiet_hours("22:00-07:00", ist_epoch("23:30"))
    assert in_quiet_hours("22:00-07:00", ist_epoch("06:59"))
    assert not in_quiet_hours("22:00-07:00", ist_epoch("07:00"))
    assert in_quiet_hours("12:00-13:00", ist_epoch("12:00"))
    assert not in_quiet_hours("12:00-13:00", ist_epoch("13:00"))
    assert not in_quiet_hours(None, ist_epoch("03:00"))
    rules = evaluator(BAND.format(extra='quiet_hours = "11:00-11:05"'))
    alerts = run(rules, pcr_blocks([1.0, 1.4, 1.0, 1.0, 1.0, 1.0, 1.4], step_s=60))
    # 11:01 is quiet (recorded, not pushed), 11:06 is not
    assert [(a.as_of - START, a.quiet) for a in alerts] == [(60, True), (120, True), (360, False)]


def test_defaults_fill_what_a_rule_leaves_out() -> None:
    rules = parse_rules(
        '[defaults]\ncooldown_s = 60\nquiet_hours = "22:00-07:00"\n'
        + BAND.format(extra="cooldown_s = 5")
    ).active()
    assert rules[0].cooldown_s == 5 and rules[0].quiet_hours == "22:00-07:00"


def test_label_debounce_counts_blocks_in_a_row() -> None:
    record, accepted = debounce({}, "LOW", 2)
    assert accepted is None and record["label"] == "LOW"
    record, accepted = debounce(record, "HIGH", 2)
    assert accepted is None
    record, accepted = debounce(record, "LOW", 2)  # back: the candidate is forgotten
    assert accepted is None
    record, accepted = debounce(record, "HIGH", 2)
    record, accepted = debounce(record, "HIGH", 2)
    assert accepted == "HIGH" and record["label"] == "HIGH"


def trap(label: str, minute: int) -> SignalBlock:
    data = {"trap": {"score": 0.5, "label": label, "provenance": {"source": "formula"}}}
    return make_block("seller", as_of=at(minute), extra=data)


def test_label_rule_with_hysteresis_and_a_target_filter() -> None:
    rules = evaluator(
        '[[rule]]\nname = "trap"\nkind = "label"\npath = "seller.trap.label"\nhysteresis = 2\n'
        'to = ["HIGH"]\n'
    )
    labels = ["LOW", "HIGH", "LOW", "HIGH", "HIGH", "HIGH", "LOW", "LOW", "HIGH", "HIGH"]
    alerts = run(rules, [trap(label, i) for i, label in enumerate(labels)])
    assert [(a.transition, a.as_of) for a in alerts] == [
        (("LOW", "HIGH"), at(4)),  # HIGH held two blocks
        (("LOW", "HIGH"), at(9)),  # LOW was accepted at 7 (not notified: to = HIGH only)
    ]


def test_shift_rule_moves_its_reference_only_when_it_alerts() -> None:
    rules = evaluator(
        '[[rule]]\nname = "mp"\nkind = "shift"\npath = "seller.max_pain.strike"\nmin_change = 100\n'
    )
    strikes = [25_500, 25_550, 25_600, 25_650, 25_700, 25_650]
    blocks = [
        make_block("seller", as_of=at(i), extra={"max_pain": {"strike": s}})
        for i, s in enumerate(strikes)
    ]
    alerts = run(rules, blocks)
    assert [a.transition for a in alerts] == [("25500", "25600"), ("25600", "25700")]
    assert "moved from 25,600.00 to 25,700.00" in alerts[1].text


def test_breach_rule_picks_the_point_nearest_the_distance() -> None:
    rules = evaluator(
        '[[rule]]\nname = "b"\nkind = "breach"\nside = "above"\ndistance_pct = 1.0\n'
        "threshold = 0.3\nhysteresis = 0.02\n"
    )

    def block(minute: int, prob: float) -> SignalBlock:
        seller = make_block("seller").data["breach_probabilities"]
        points = [
            {**p, "probability": prob if p["side"] == "above" and p["distance_pct"] == 1.0 else 0.1}
            for p in seller["points"]
        ]
        return make_block(
            "seller", as_of=at(minute), extra={"breach_probabilities": {"points": points}}
        )

    alerts = run(rules, [block(i, p) for i, p in enumerate([0.2, 0.31, 0.29, 0.27, 0.32])])
    assert [(a.as_of, a.subject) for a in alerts] == [
        (at(1), "breach above 1%"),
        (at(4), "breach above 1%"),
    ]
    assert "rose to 31.0%" in alerts[0].text


def test_stale_rule_on_stream_time_and_recovery() -> None:
    rules = evaluator('[[rule]]\nname = "stale"\nkind = "stale"\nengines = ["seller", "market"]\n')
    blocks = [
        make_block("seller", as_of=at(0)),
        make_block("market", as_of=at(0)),
        make_block("market", as_of=at(5)),  # seller due at 1 min + 300 s: not yet stale
        make_block("market", as_of=at(7)),  # stale now
        make_block("market", as_of=at(8)),  # reported once
        make_block("seller", as_of=at(9)),  # flowing again
    ]
    alerts = run(rules, blocks)
    assert [(a.subject, a.transition, a.as_of) for a in alerts] == [
        ("seller data", ("fresh", "stale"), at(7)),
        ("seller data", ("stale", "fresh"), at(9)),
    ]


def test_stale_is_not_a_fast_replay_with_one_engine_ahead() -> None:
    rules = evaluator('[[rule]]\nname = "stale"\nkind = "stale"\nengines = ["seller"]\n')
    computed = 1_800_000_000_000  # every block computed within a second: a fast replay
    blocks = [
        make_block("seller", as_of=at(0), computed_at=computed),
        make_block("market", as_of=at(30), computed_at=computed + 500),
    ]
    assert run(rules, blocks) == []


def test_rules_comparing_engines_skip_blocks_far_apart_in_time() -> None:
    rules = evaluator(RULES)
    blocks = [
        make_block("seller", as_of=at(0), spot=25_600),
        make_block("market", as_of=at(0), spot=25_600),
        make_block("market", as_of=at(20), spot=26_500),  # 20 min after the safe range
        make_block("seller", as_of=at(21), spot=25_600),  # a fresh range: now compared
    ]
    alerts = run(rules, blocks)
    assert [(a.rule, a.transition, a.as_of) for a in alerts] == [
        ("spot_safe_range", ("inside", "above"), at(21))
    ]


def test_scenario_is_deterministic_and_older_blocks_are_ignored() -> None:
    blocks, expected = scenario()
    first = run(evaluator(RULES), blocks)
    assert [(a.rule, *a.transition, a.as_of) for a in first] == expected
    again = run(evaluator(RULES), blocks)
    assert [a.key for a in again] == [a.key for a in first]  # same stream, same alerts
    assert len({a.id for a in first}) == len(first)


def test_the_state_keeps_only_what_rules_read_and_alerts_are_unchanged() -> None:
    """Each engine's newest block is kept projected onto the rules' paths (a smaller state
    to write per batch); the alerts equal those of a state holding every block whole."""
    blocks, expected = scenario()
    ev, whole = evaluator(RULES), evaluator(RULES)
    whole.kept = dict.fromkeys(("market", "direction", "seller", "buyer"), True)
    state = empty_state()
    alerts = run(ev, blocks, state)
    assert [a.key for a in alerts] == [a.key for a in run(whole, blocks)]
    assert [(a.rule, *a.transition, a.as_of) for a in alerts] == expected
    seller = state["latest"]["seller"]["data"]
    assert set(seller) <= {"safe_range", "breach_probabilities", "trap", "seller_flag", "max_pain"}
    assert set(seller["safe_range"]) == {"lower", "upper"}
    assert path_tree([("a", "b", "c"), ("a", "b"), ("a", "d", 0, "e"), ("f",)]) == {
        "a": {"b": True, "d": True},
        "f": True,
    }
    assert project({"a": {"b": 1, "x": 2}, "f": [1]}, {"a": {"b": True}}) == {"a": {"b": 1}}


def test_evaluate_leaves_the_given_state_alone() -> None:
    ev = evaluator(RULES)
    state = empty_state()
    blocks, _ = scenario()
    for block in blocks[:4]:
        ev.evaluate(state, block).apply(state)
    snapshot = repr(state)
    result = ev.evaluate(state, blocks[4])
    assert repr(state) == snapshot and result.rule_states


def test_the_shipped_rules_load_and_a_typo_names_its_line_and_field() -> None:
    shipped = load_rules(DEFAULT_RULES)
    assert len(shipped.rule) >= 12 and shipped.active()
    text = DEFAULT_RULES.read_text()
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.startswith("hysteresis = 15"))
    with pytest.raises(RulesError) as refused:
        parse_rules(text.replace("hysteresis = 15", "hysterisis = 15"), "rules.toml")
    message = str(refused.value)
    assert f"rules.toml line {line}:" in message
    assert "'spot_safe_range'" in message and "field 'hysterisis'" in message
    assert "Extra inputs are not permitted" in message


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ('[[rule]]\nname = "x"\nkind = "band"\nvalue = "seller.a"\nhigh = "y"\n', "line 5"),
        ('[[rule]]\nname = "x"\nkind = "nope"\n', "line 3"),
        ('[[rule]]\nname = "x"\nkind = "band"\nvalue = "nowhere.a"\nhigh = 1\n', "line 1"),
        ('[defaults]\nquiet = "22:00-07:00"\n', "line 2: field 'defaults.quiet'"),
        ('[defaults]\nquiet_hours = "25:00-07:00"\n', "line 2"),
        ("[[rule]\n", "not valid TOML"),
    ],
)
def test_other_mistakes_are_refused_with_their_place(text: str, wanted: str) -> None:
    with pytest.raises(RulesError) as refused:
        parse_rules(text, "r.toml")
    assert wanted in str(refused.value)


def test_in_a_replay_the_alerts_run_on_idle_cpu_only() -> None:
    """SCHED_IDLE in its own process (it would slow this one): scheduled only when nothing
    else wants the CPU, below any niceness."""
    code = (
        "import os; from shared.bus.lifecycle import idle_cpu; "
        "print(idle_cpu(), os.sched_getscheduler(0) == os.SCHED_IDLE)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]
