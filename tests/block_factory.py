"""Realistic signal blocks shaped as docs/DOCUMENT.md describes, for gateway tests and the
bench. ``spot`` moves every value that depends on it, so a new block visibly changes tiles."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from shared.codec import digest, pack
from shared.schemas import ModelRef, SignalBlock

AS_OF = 1_751_275_800  # 2025-06-30 09:30 UTC = 15:00 IST
SESSION = "2025-06-30"
DIRECTION_MODEL = ModelRef(
    name="direction",
    version="20250630-ab12cd",
    trained_at="2025-06-30T02:00:00Z",
    training_window="2015-01-01..2025-05-30",
)
SELLER_MODEL = ModelRef(
    name="seller_trap",
    version="20250630-77aa01",
    trained_at="2025-06-30T02:10:00Z",
    training_window="2015-01-01..2025-05-30",
)
BUYER_MODEL = ModelRef(
    name="buyer_breakout",
    version="20250630-5c5c5c",
    trained_at="2025-06-30T02:20:00Z",
    training_window="2015-01-01..2025-05-30",
)
WINDOW = "2023-06-30..2025-06-27"


def model(ref: ModelRef) -> dict[str, Any]:
    return {"source": "model", "model": ref.name, "version": ref.version, "in_sample": False}


def formula(text: str) -> dict[str, Any]:
    return {"source": "formula", "formula": text}


def data(window: str = WINDOW) -> dict[str, Any]:
    return {"source": "data", "window": window}


def heuristic(note: str) -> dict[str, Any]:
    return {"source": "heuristic", "note": note}


def climatology() -> dict[str, Any]:
    return {
        "source": "climatology",
        "model": DIRECTION_MODEL.name,
        "version": DIRECTION_MODEL.version,
        "window": DIRECTION_MODEL.training_window,
        "formula": "class frequencies over the training window",
        "note": "no significant out-of-sample skill at this horizon",
    }


def probs(up: float, neutral: float) -> dict[str, float]:
    return {"up": up, "neutral": neutral, "down": round(1 - up - neutral, 4)}


def market_data(spot: float, as_of: int) -> dict[str, Any]:
    prev = 25_517.05
    return {
        "spot": spot,
        "spot_change": round(spot - prev, 2),
        "spot_change_pct": round((spot - prev) / prev * 100, 3),
        "prev_close": prev,
        "vix": 12.79,
        "vix_change": -0.28,
        "vix_as_of": SESSION,
        "session_open": 25_551.35,
        "session_high": max(25_669.35, spot),
        "session_low": min(25_489.8, spot),
        "regime": {"label": "TRENDING_UP", "provenance": formula("EMA20 > EMA50, ADX14 > 20")},
        "sparkline": [
            [as_of - 60 * (59 - i), round(spot - 40 + i * 0.7 + (i % 5) * 3, 2)] for i in range(60)
        ],
        "provenance": data("NIFTY 1m, India VIX 1d"),
    }


def direction_data(spot: float, heuristic_today: bool = False) -> dict[str, Any]:
    horizons = {}
    for i, (key, label, n) in enumerate(
        [
            ("t1", "1 session", 1),
            ("t3", "3 sessions", 3),
            ("t5", "5 sessions", 5),
            ("t10", "10 sessions", 10),
            ("t20", "20 sessions", 20),
            ("t40", "40 sessions", 40),
        ]
    ):
        up = round(0.40 + 0.03 * i, 3)
        horizons[key] = {
            "label": label,
            "direction": "UP" if up > 0.45 else "NEUTRAL",
            "conviction": max(up, 0.33),
            "probabilities": probs(up, 0.33),
            "expected_move_points": round(spot * 0.0045 * n**0.5, 1),
            "forecast": key != "t40",
            "beats_climatology": i % 2 == 0,
            "climatology": probs(0.41, 0.27),
            "provenance": model(DIRECTION_MODEL) if key != "t40" else climatology(),
        }
    today = {
        "direction": "UP",
        "conviction": 0.47,
        "probabilities": probs(0.47, 0.30),
        "expected_move_points": round(spot * 0.0042, 1),
        "provenance": heuristic("model not loaded") if heuristic_today else model(DIRECTION_MODEL),
    }
    return {
        "today": today,
        "horizons": horizons,
        "risk_score": {
            "value": 38.0,
            "components": {"vix": 0.3, "trend": 0.2, "breadth": 0.5},
            "provenance": formula("weighted VIX percentile, trend, realised vol"),
        },
        "regime": {"label": "TRENDING_UP", "provenance": formula("EMA20 > EMA50")},
    }


def seller_data(spot: float) -> dict[str, Any]:
    points = []
    for pct in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        for side, sign in (("above", 1), ("below", -1)):
            strike = round(spot * (1 + sign * pct / 100) / 50) * 50
            points.append(
                {
                    "strike": strike,
                    "distance_points": round(abs(strike - spot), 1),
                    "distance_pct": pct,
                    "side": side,
                    "probability": round(0.42 * 2.718 ** (-pct * 1.3), 4),
                }
            )
    return {
        "safe_range": {
            "lower": round(spot * 0.975, 1),
            "upper": round(spot * 1.021, 1),
            "coverage_target": 0.9,
            "expiry": "2025-07-03",
            "days_to_expiry": 3,
            "z_lower": 1.71,
            "z_upper": 1.48,
            "provenance": formula("S*exp(±z*VIX/100*sqrt(T/365))"),
        },
        "max_pain": {
            "strike": 25_500,
            "lower": 25_400,
            "upper": 25_600,
            "chain_as_of": "2025-06-30T09:25:00.000Z",
            "expiry": "2025-07-03",
            "provenance": data("option chain 2025-06-30 14:55 IST"),
        },
        "trap": {
            "score": 0.31,
            "label": "LOW",
            "iv_percentile": 0.18,
            "rv_percentile": 0.24,
            "provenance": model(SELLER_MODEL),
        },
        "skew": {
            "put": 0.62,
            "call": 0.38,
            "net": 0.24,
            "method": "return_distribution",
            "provenance": data(),
        },
        "expiry_stress": {
            "score": 0.27,
            "label": "CALM",
            "probabilities": {"low": 0.61, "medium": 0.24, "high": 0.15},
            "provenance": model(SELLER_MODEL),
        },
        "breach_probabilities": {"points": points, "provenance": formula("lognormal, VIX-implied")},
        "seller_flag": {
            "label": "FAVOURABLE",
            "reasons": ["trap risk low", "expiry stress calm", "VIX below median"],
            "provenance": formula("rules over trap, stress, VIX percentile"),
        },
        "historical_hit_rate": {
            "value": 0.893,
            "window": WINDOW,
            "regime": "TRENDING_UP",
            "samples": 103,
            "provenance": data(),
        },
        "regime": {"label": "RANGE_BOUND", "provenance": formula("ATR14 / price percentile")},
    }


def buyer_data(spot: float) -> dict[str, Any]:
    blocks = [
        f"{h:02d}:{m:02d}-{(h * 60 + m + 30) // 60:02d}:{(m + 30) % 60:02d}"
        for h, m in [
            (9, 15),
            (9, 45),
            (10, 15),
            (10, 45),
            (11, 15),
            (11, 45),
            (12, 15),
            (12, 45),
            (13, 15),
            (13, 45),
            (14, 15),
            (14, 45),
        ]
    ] + ["15:15-15:30"]
    return {
        "breakout_today": {
            "score": 0.58,
            "label": "MODERATE",
            "broken": None,
            "provenance": model(BUYER_MODEL),
        },
        "breakout_next": {
            "days": [
                {"day_offset": d, "date": f"2025-07-0{d}", "score": round(0.3 + 0.08 * d, 2)}
                for d in range(1, 6)
            ],
            "provenance": model(BUYER_MODEL),
        },
        "spike_direction_bias": {
            "up_prob": 0.56,
            "down_prob": 0.44,
            "provenance": model(BUYER_MODEL),
        },
        "gamma_windows": {
            "windows": [
                {"block": b, "score": round(0.8 - 0.05 * i, 2)} for i, b in enumerate(blocks)
            ],
            "provenance": data(),
        },
        "theta_edge": {
            "score": 0.41,
            "label": "neutral",
            "predicted_move_points": round(spot * 0.011, 1),
            "implied_move_points": round(spot * 0.012, 1),
            "provenance": formula("predicted move / S*sigma*sqrt(T/365)"),
        },
        "regime": {"label": "TREND_FOLLOWING", "provenance": model(BUYER_MODEL)},
        "breakout_levels": {
            "upper": round(spot + 120, 1),
            "lower": round(spot - 140, 1),
            "provenance": formula("prior high/low ± 0.25*ATR14"),
        },
        "environment": {
            "label": "premium-friendly",
            "text": "Calm volatility with a mild trend; moves have been orderly.",
            "provenance": formula("rules over breakout, theta edge, VIX"),
        },
        "historical_spike_rate": {
            "value": 0.12,
            "window": WINDOW,
            "regime": "TREND_FOLLOWING",
            "samples": 187,
            "provenance": data(),
        },
    }


def make_block(
    engine: str,
    *,
    as_of: int = AS_OF,
    spot: float = 25_637.8,
    freshness_limit_s: int = 300,
    kind: str = "intraday",
    computed_at: int | None = None,
    degraded: tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
) -> SignalBlock:
    """One engine's block; ``extra`` adds fields to its data (e.g. bulk for load tests)."""
    payload = {
        "market": lambda: market_data(spot, as_of),
        "direction": lambda: direction_data(spot, heuristic_today=bool(degraded)),
        "seller": lambda: seller_data(spot),
        "buyer": lambda: buyer_data(spot),
    }[engine]() | (extra or {})
    models = {
        "direction": (DIRECTION_MODEL,),
        "seller": (SELLER_MODEL,),
        "buyer": (BUYER_MODEL,),
    }.get(engine, ())
    return SignalBlock(
        engine=engine,
        as_of=as_of,
        session_date=SESSION,
        kind=kind,
        computed_at=computed_at if computed_at is not None else as_of * 1000 + 180,
        freshness_limit_s=freshness_limit_s,
        models=models,
        degraded=degraded,
        data=payload,
        digest=digest(pack(payload)),
    )


def all_blocks(**kwargs: Any) -> list[SignalBlock]:
    return [make_block(engine, **kwargs) for engine in ("market", "direction", "seller", "buyer")]


def closing_day(
    day: str,
    spot: float,
    vix: float,
    expiry: str,
    stress: float = 0.5,
    straddle_band: float | None = None,
) -> list[SignalBlock]:
    """A session's last market and seller blocks (15:29 IST) with a 150-point safe range and
    breach probabilities of 0.3 at 100 points and 0.1 at 200 points either side; with
    ``straddle_band``, a chain of the same expiry whose straddle band is that many points
    either side."""
    as_of = int(datetime.fromisoformat(f"{day}T15:29:00+05:30").timestamp())
    safe = {
        "spot": spot,
        "vix": vix,
        "lower": spot - 150,
        "upper": spot + 150,
        "coverage_target": 0.9,
        "expiry": expiry,
        "days_to_expiry": (date.fromisoformat(expiry) - date.fromisoformat(day)).days,
        "provenance": {"source": "model"},
    }
    market = make_block("market", as_of=as_of, spot=spot, extra={"vix": vix})
    breach = {
        "points": [
            {"strike": spot + sign * gap, "side": side, "probability": p}
            for sign, side in ((1, "above"), (-1, "below"))
            for gap, p in ((100, 0.3), (200, 0.1))
        ]
    }
    extra = {
        "safe_range": safe,
        "breach_probabilities": breach,
        "expiry_stress": {"score": stress, "provenance": model(SELLER_MODEL)},
    }
    if straddle_band is not None:
        band = {"lower": spot - straddle_band, "upper": spot + straddle_band, "coverage": 0.9}
        extra["chain"] = {"status": "fresh", "expiry": expiry, "straddle": {"band": band}}
    seller = make_block("seller", as_of=as_of, spot=spot, extra=extra)
    return [b.model_copy(update={"session_date": day}) for b in (market, seller)]


def chain_minute(as_of: int, oi: float, expiry: str = "2025-07-03") -> SignalBlock:
    """A seller block whose fresh chain has three strikes, OI growing with ``oi``."""
    rows = [{"strike": k, "ce_oi": oi + k / 100, "pe_oi": 2 * oi} for k in (25_200, 25_250, 25_300)]
    chain = {
        "status": "fresh",
        "expiry": expiry,
        "spot": 25_260.0,
        "oi_by_strike": rows,
        "provenance": data(f"chain at {as_of}"),
    }
    block = make_block("seller", as_of=as_of, extra={"chain": chain})
    return block.model_copy(update={"session_date": "2025-06-30"})
