"""Alert rule evaluation per block (pure: services.alerts.evaluate), 20 rules of every kind,
over a stream of real-shaped blocks (tests.block_factory: market, direction, seller, buyer
in turn, spot wandering across the safe range, labels and chain values changing, one engine
on heuristics now and then). Times ``evaluate`` + ``apply`` of each block; prints p50, p99,
max and the alerts fired. Goal: p99 <= 1 ms per block.

Usage: python -m bench.bench_alerts [--blocks 20000]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

from services.alerts.evaluate import Evaluator, empty_state
from services.alerts.rules import parse_rules
from shared.contract.schemas import SignalBlock
from tests.block_factory import AS_OF, make_block

GOAL_MS = 1.0

RULES = """
[defaults]
cooldown_s = 120
quiet_hours = "22:00-07:00"

[[rule]]
name = "spot_safe_range"
kind = "band"
value = "market.spot"
low_path = "seller.safe_range.lower"
high_path = "seller.safe_range.upper"
hysteresis = 15
notify_on = ["below", "above", "inside"]

[[rule]]
name = "spot_breakout_levels"
kind = "band"
value = "market.spot"
low_path = "buyer.breakout_levels.lower"
high_path = "buyer.breakout_levels.upper"
hysteresis = 10

[[rule]]
name = "spot_fixed"
kind = "band"
value = "market.spot"
low = 25000
high = 26000
hysteresis = 20

[[rule]]
name = "vix_high"
kind = "band"
value = "market.vix"
high = 18
hysteresis = 0.5

[[rule]]
name = "pcr"
kind = "band"
value = "seller.chain.pcr.oi"
low = 0.7
high = 1.3
hysteresis = 0.05

[[rule]]
name = "risk_score"
kind = "band"
value = "direction.risk_score.value"
high = 70
hysteresis = 5

[[rule]]
name = "theta"
kind = "band"
value = "buyer.theta_edge.score"
low = 0.3
high = 0.7
hysteresis = 0.05

[[rule]]
name = "breach_above_1"
kind = "breach"
side = "above"
distance_pct = 1.0
threshold = 0.3
hysteresis = 0.03

[[rule]]
name = "breach_below_1"
kind = "breach"
side = "below"
distance_pct = 1.0
threshold = 0.3
hysteresis = 0.03

[[rule]]
name = "breach_above_2"
kind = "breach"
side = "above"
distance_pct = 2.0
threshold = 0.1
hysteresis = 0.01

[[rule]]
name = "trap"
kind = "label"
path = "seller.trap.label"
hysteresis = 2

[[rule]]
name = "stress"
kind = "label"
path = "seller.expiry_stress.label"
hysteresis = 2

[[rule]]
name = "flag"
kind = "label"
path = "seller.seller_flag.label"
detail_path = "seller.seller_flag.reasons"

[[rule]]
name = "direction_today"
kind = "label"
path = "direction.today.direction"
hysteresis = 3

[[rule]]
name = "regime"
kind = "label"
path = "market.regime.label"

[[rule]]
name = "chain_status"
kind = "label"
path = "seller.chain.status"

[[rule]]
name = "max_pain"
kind = "shift"
path = "seller.max_pain.strike"
min_change = 100

[[rule]]
name = "straddle"
kind = "shift"
path = "seller.chain.straddle.move_points"
min_change_pct = 15

[[rule]]
name = "fallback"
kind = "fallback"

[[rule]]
name = "stale"
kind = "stale"
"""

ENGINES = ("market", "direction", "seller", "buyer")


def stream(count: int) -> list[SignalBlock]:
    blocks = []
    for i in range(count):
        minute, engine = divmod(i, 4)
        spot = 25_600 + 700 * math.sin(minute / 40)
        extra = None
        if ENGINES[engine] == "seller":
            extra = {
                "trap": {"score": 0.5, "label": ("LOW", "HIGH")[(minute // 30) % 2]},
                "max_pain": {"strike": 25_500 + 50 * ((minute // 20) % 5)},
                "chain": {
                    "status": "fresh" if (minute // 90) % 4 else "unavailable",
                    "pcr": {"oi": 1.0 + 0.4 * math.sin(minute / 25)},
                    "straddle": {"move_points": 200 + 60 * math.sin(minute / 15)},
                },
            }
        degraded = (
            ("model not loaded",) if ENGINES[engine] == "direction" and minute % 97 < 3 else ()
        )
        blocks.append(
            make_block(
                ENGINES[engine],
                as_of=AS_OF - 5 * 3600 + 60 * (minute % 360) + 86_400 * (minute // 360),
                spot=round(spot, 2),
                extra=extra,
                degraded=degraded,
            )
        )
    return blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20_000)
    args = parser.parse_args()
    rules = parse_rules(RULES, "bench").active()
    assert len(rules) == 20
    evaluator = Evaluator(rules)
    blocks = stream(args.blocks)
    state = empty_state()
    for block in blocks[:400]:  # warm-up
        evaluator.evaluate(state, block).apply(state)
    state = empty_state()
    times_ms = []
    fired = 0
    for block in blocks:
        t0 = time.perf_counter_ns()
        evaluation = evaluator.evaluate(state, block)
        evaluation.apply(state)
        times_ms.append((time.perf_counter_ns() - t0) / 1e6)
        fired += len(evaluation.alerts)
    times_ms.sort()
    p50 = statistics.median(times_ms)
    p99 = times_ms[int(len(times_ms) * 0.99) - 1]
    load = os.getloadavg()
    print(
        f"alert rule evaluation, {len(rules)} rules, {len(blocks)} blocks: "
        f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {times_ms[-1]:.3f} ms per block "
        f"(goal p99 <= {GOAL_MS} ms: {'met' if p99 <= GOAL_MS else 'MISSED'}); "
        f"{fired} alerts; load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


if __name__ == "__main__":
    main()
