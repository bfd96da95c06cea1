"""Realistic signal blocks built from the document contract (shared/contract/document), for
gateway tests and the bench: every block's data is a contract struct, so a block from here is
one the gateway shows. ``spot`` moves every value that depends on it, so a new block visibly changes
tiles. ``make_block(extra=...)`` merges raw fields over the data: a test breaking the
contract on purpose (or feeding a consumer that does not check it) says so that way."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import msgspec

from services.buyer.compute import GAMMA_BLOCKS
from shared.contract.codec import digest, pack
from shared.contract.document import BLOCK_DATA
from shared.contract.document.base import Contract, Rate
from shared.contract.document.buyer import (
    BreakoutLevels,
    BreakoutNext,
    BreakoutToday,
    BuyerData,
    BuyerRegime,
    Environment,
    GammaWindow,
    GammaWindows,
    NextDay,
    SpikeBias,
    ThetaEdge,
)
from shared.contract.document.chain import (
    AtmIv,
    BuildupGroup,
    ChainFresh,
    ChainMaxPain,
    ChainUnavailable,
    DeltaSkew,
    Forward,
    GammaExposure,
    GammaRow,
    Greeks,
    GreeksRow,
    OiRow,
    Pcr,
    Smile,
    SmilePoint,
    Straddle,
    StraddleBand,
    TermPoint,
    TermStructure,
    Wall,
    Walls,
)
from shared.contract.document.direction import (
    DirectionData,
    Horizon,
    Horizons,
    Probabilities,
    RiskComponents,
    RiskScore,
    Today,
)
from shared.contract.document.market import MarketData, MarketRegimeLabel, SparkPoint
from shared.contract.document.seller import (
    BreachCurve,
    BreachPoint,
    ExpiryStress,
    HitRate,
    MaxPain,
    PositioningUnavailable,
    SafeRange,
    SellerData,
    SellerFlag,
    Side,
    Skew,
    StressProbabilities,
    Trap,
    VixRegimeLabel,
)
from shared.contract.schemas import ModelRef, Provenance, SignalBlock
from shared.market.calendar import ist_iso

AS_OF = 1_751_275_800  # 2025-06-30 09:30 UTC = 15:00 IST
SESSION = "2025-06-30"
EXPIRY = "2025-07-03"
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
NO_CHAIN = "no option-chain source configured"
SIDES: tuple[tuple[Side, int], ...] = (("above", 1), ("below", -1))


def model(ref: ModelRef) -> Provenance:
    return Provenance(source="model", model=ref.name, version=ref.version, in_sample=False)


def formula(text: str) -> Provenance:
    return Provenance(source="formula", formula=text)


def data(window: str = WINDOW) -> Provenance:
    return Provenance(source="data", window=window)


def heuristic(note: str) -> Provenance:
    return Provenance(source="heuristic", note=note)


def climatology() -> Provenance:
    return Provenance(
        source="climatology",
        model=DIRECTION_MODEL.name,
        version=DIRECTION_MODEL.version,
        window=DIRECTION_MODEL.training_window,
        formula="class frequencies over the training window",
        note="no significant out-of-sample skill at this horizon",
    )


def dump_provenance(value: Provenance) -> dict[str, Any]:
    return msgspec.to_builtins(value)


def dump(value: Contract) -> dict[str, Any]:
    """A contract struct as a reader decodes it (fields left ``UNSET`` left out)."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(value))


def probs(up: float, neutral: float) -> Probabilities:
    return Probabilities(up=up, neutral=neutral, down=round(1 - up - neutral, 4))


def market_data(spot: float, as_of: int) -> MarketData:
    prev = 25_517.05
    return MarketData(
        spot=spot,
        spot_change=round(spot - prev, 2),
        spot_change_pct=round((spot - prev) / prev * 100, 3),
        prev_close=prev,
        vix=12.79,
        vix_change=-0.28,
        vix_as_of=SESSION,
        next_expiry=EXPIRY,
        days_to_expiry=3,
        session_open=25_551.35,
        session_high=max(25_669.35, spot),
        session_low=min(25_489.8, spot),
        regime=MarketRegimeLabel(label="TRENDING_UP", provenance=formula("EMA20 > EMA50")),
        sparkline=[
            SparkPoint(
                as_of - 60 * (59 - i), round(spot * (1 + (i * 0.7 + (i % 5) * 3 - 40) / 25_600), 2)
            )
            for i in range(60)
        ],
        provenance=data("NIFTY 1m, India VIX 1d"),
    )


HORIZON_SESSIONS = (("t1", 1), ("t3", 3), ("t5", 5), ("t10", 10), ("t20", 20), ("t40", 40))


def horizon(i: int, key: str, n: int, spot: float) -> Horizon:
    up = round(0.40 + 0.03 * i, 3)
    return Horizon(
        label=f"{n} session" + ("s" if n > 1 else ""),
        direction="UP" if up > 0.45 else "NEUTRAL",
        conviction=max(up, 0.33),
        probabilities=probs(up, 0.33),
        expected_move_points=round(spot * 0.0045 * n**0.5, 1),
        forecast=key != "t40",
        beats_climatology=i % 2 == 0,
        climatology=probs(0.41, 0.27),
        provenance=model(DIRECTION_MODEL) if key != "t40" else climatology(),
    )


def direction_data(spot: float, heuristic_today: bool = False) -> DirectionData:
    horizons = {key: horizon(i, key, n, spot) for i, (key, n) in enumerate(HORIZON_SESSIONS)}
    return DirectionData(
        today=Today(
            direction="UP",
            conviction=0.47,
            probabilities=probs(0.47, 0.30),
            expected_move_points=round(spot * 0.0042, 1),
            basis="next session (t1)",
            provenance=heuristic("model not loaded") if heuristic_today else model(DIRECTION_MODEL),
        ),
        horizons=Horizons(**horizons),
        risk_score=RiskScore(
            value=38.0,
            components=RiskComponents(iv_level=0.3, rv_level=0.2, drawdown=0.5, downside=0.33),
            provenance=formula("weighted VIX percentile, trend, realised vol"),
        ),
        regime=MarketRegimeLabel(label="TRENDING_UP", provenance=formula("EMA20 > EMA50")),
    )


def on_grid(level: float) -> float:
    """The nearest NIFTY strike (50 points apart); a tiny test spot keeps its own scale."""
    return float(round(level / 50) * 50) if level >= 1000 else round(level, 2)


def breach_points(spot: float) -> list[BreachPoint]:
    points = []
    for pct in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        for side, sign in SIDES:
            strike = on_grid(spot * (1 + sign * pct / 100))
            points.append(
                BreachPoint(
                    strike=float(strike),
                    distance_points=round(abs(strike - spot), 1),
                    distance_pct=pct,
                    side=side,
                    probability=round(0.42 * 2.718 ** (-pct * 1.3), 4),
                )
            )
    return points


def safe_range(
    spot: float, lower: float, upper: float, expiry: str = EXPIRY, days: int = 3, vix: float = 12.79
) -> SafeRange:
    scale = vix / 100 * math.sqrt(max(days, 1) / 365)
    return SafeRange(
        spot=spot,
        vix=vix,
        lower=lower,
        upper=upper,
        coverage_target=0.9,
        expiry=expiry,
        days_to_expiry=days,
        z_lower=round(-math.log(lower / spot) / scale, 4),
        z_upper=round(math.log(upper / spot) / scale, 4),
        provenance=formula("S*exp(±z*VIX/100*sqrt(T/365))"),
    )


def stress(score: float) -> ExpiryStress:
    return ExpiryStress(
        score=score,
        label="CALM" if score < 0.4 else "CAUTION" if score < 0.7 else "STRESS",
        probabilities=StressProbabilities(low=0.61, medium=0.24, high=0.15),
        provenance=model(SELLER_MODEL),
    )


def chain_unavailable(reason: str = NO_CHAIN) -> ChainUnavailable:
    return ChainUnavailable(reason=reason, provenance=Provenance(source="data", note=reason))


def seller_data(spot: float) -> SellerData:
    return SellerData(
        safe_range=safe_range(spot, round(spot * 0.975, 1), round(spot * 1.021, 1)),
        max_pain=MaxPain(
            strike=25_500.0,
            lower=25_400.0,
            upper=25_600.0,
            chain_as_of="2025-06-30T14:55:00+05:30",
            expiry=EXPIRY,
            provenance=data("option chain 2025-06-30 14:55 IST"),
        ),
        trap=Trap(
            score=0.31,
            label="LOW",
            iv_percentile=0.18,
            rv_percentile=0.24,
            selection=None,
            provenance=model(SELLER_MODEL),
        ),
        skew=Skew(
            put=0.062, call=0.038, net=0.024, method="return_distribution", provenance=data()
        ),
        expiry_stress=stress(0.27),
        breach_probabilities=BreachCurve(
            points=breach_points(spot), selection=None, provenance=formula("lognormal, VIX")
        ),
        seller_flag=SellerFlag(
            label="FAVOURABLE",
            reasons=["trap risk low", "expiry stress calm", "VIX below median"],
            provenance=formula("rules over trap, stress, VIX percentile"),
        ),
        historical_hit_rate=HitRate(
            value=0.893, window=WINDOW, regime="LOW", samples=103, provenance=data()
        ),
        chain=chain_unavailable(),
        positioning=PositioningUnavailable(
            reason="no participant-wise OI report known at this snapshot",
            future=None,
            provenance=Provenance(source="data", note="no participant-wise OI report"),
        ),
        regime=VixRegimeLabel(label="LOW", provenance=formula("India VIX < 13 LOW")),
    )


def buyer_data(spot: float) -> BuyerData:
    return BuyerData(
        breakout_today=BreakoutToday(
            score=0.58,
            label="MODERATE",
            broken=None,
            basis="whole session, as seen at the open",
            provenance=model(BUYER_MODEL),
        ),
        breakout_next=BreakoutNext(
            days=[
                NextDay(day_offset=d, date=f"2025-07-0{d}", score=round(0.3 + 0.08 * d, 2))
                for d in range(1, 6)
            ],
            provenance=model(BUYER_MODEL),
        ),
        spike_direction_bias=SpikeBias(up_prob=0.56, down_prob=0.44, provenance=model(BUYER_MODEL)),
        gamma_windows=GammaWindows(
            windows=[
                GammaWindow(block=b, score=round(0.8 - 0.05 * i, 2))
                for i, b in enumerate(GAMMA_BLOCKS)
            ],
            provenance=data(),
        ),
        theta_edge=ThetaEdge(
            score=0.41,
            label="don't waste premium",
            predicted_move_points=round(spot * 0.011, 1),
            implied_move_points=round(spot * 0.012, 1),
            implied_formula="S*VIX/100*sqrt(T/365)",
            implied_basis="india_vix",
            implied_basis_reason=NO_CHAIN,
            provenance=formula("predicted move / S*sigma*sqrt(T/365)"),
        ),
        regime=BuyerRegime(label="TREND_FOLLOWING", provenance=model(BUYER_MODEL)),
        breakout_levels=BreakoutLevels(
            upper=round(spot + 120, 1),
            lower=round(spot - 140 if spot > 1000 else spot * 0.99, 1),
            provenance=formula("prior high/low ± 0.25*ATR14"),
        ),
        environment=Environment(
            label="premium-friendly",
            text="Calm volatility with a mild trend; moves have been orderly.",
            provenance=formula("rules over breakout, theta edge, VIX"),
        ),
        historical_spike_rate=Rate(
            value=0.12, window=WINDOW, regime="LOW", samples=187, provenance=data()
        ),
        chain=chain_unavailable(),
    )


def fresh_chain(
    spot: float,
    expiry: str,
    chain_as_of: str,
    oi: Sequence[tuple[float, float, float]] = ((25_200.0, 1e6, 2e6), (25_300.0, 1.5e6, 1e6)),
    band: tuple[float, float] | None = None,
) -> ChainFresh:
    """A fresh chain group over the strikes of ``oi`` ((strike, call OI, put OI) rows); with
    ``band``, the straddle's priced band (lower, upper) at the 0.9 target."""
    strikes = [k for k, _, _ in oi]
    window = data(f"chain {chain_as_of}")
    move = round(spot * 0.012, 2)

    def wall(strike: float, open_interest: float) -> Wall:
        return Wall(
            strike=strike,
            oi=open_interest,
            change_since_previous=None,
            change_published=None,
            distance_points=round(strike - spot, 2),
        )

    calls = [wall(k, c) for k, c, _ in oi if k > spot]
    puts = [wall(k, p) for k, _, p in oi if k <= spot]
    return ChainFresh(
        expiry=expiry,
        chain_as_of=chain_as_of,
        age_s=60,
        spot=spot,
        source="file",
        pcr=Pcr(
            oi=1.1,
            volume=0.9,
            oi_near_atm=1.2,
            volume_near_atm=1.0,
            near_strikes=len(oi),
            provenance=window,
        ),
        walls=Walls(calls=calls, puts=puts, previous_as_of=None, provenance=window),
        smile=Smile(
            forward=spot,
            forward_from_parity=True,
            points=[
                SmilePoint(strike=k, iv=0.12, side="put" if k <= spot else "call", published=True)
                for k in strikes
            ],
            provenance=window,
        ),
        delta_skew=DeltaSkew(
            risk_reversal=0.01,
            put_strike=min(strikes),
            put_iv=0.13,
            call_strike=max(strikes),
            call_iv=0.12,
            provenance=window,
        ),
        straddle=Straddle(
            strike=strikes[0],
            move_points=move,
            move_pct=round(move / spot, 6),
            one_sd_points=round(move / math.sqrt(2 / math.pi), 2),
            vix_implied_move_points=round(move * 1.1, 2),
            band=None
            if band is None
            else StraddleBand(lower=band[0], upper=band[1], coverage=0.9, formula="lognormal"),
            provenance=window,
        ),
        atm_iv=AtmIv(
            value=0.12,
            percentile=None,
            rank=None,
            history_snapshots=0,
            reason="0 earlier snapshots (< 20)",
            provenance=window,
        ),
        max_pain=ChainMaxPain(
            strike=strikes[0], lower=strikes[0], upper=strikes[-1], provenance=window
        ),
        oi_by_strike=[
            OiRow(strike=k, ce_oi=c, pe_oi=p, ce_change=None, pe_change=None) for k, c, p in oi
        ],
        greeks=Greeks(
            forward=spot,
            forward_from_parity=True,
            years_to_expiry=0.01,
            reason=None,
            strikes=[
                GreeksRow(
                    strike=k,
                    iv=0.12,
                    iv_published=True,
                    call_delta=0.5,
                    put_delta=-0.5,
                    gamma_per_point=0.001,
                    vega_points_per_vol_point=10.0,
                    theta_points_per_day=-20.0,
                    reason=None,
                )
                for k in strikes
            ],
            provenance=window,
        ),
        gamma_exposure=GammaExposure(
            total_rupees_per_1pct=1e9,
            regime="positive",
            zero_gamma_level=None,
            zero_gamma_reason="total GEX stays positive",
            zero_gamma_range_pct=5.0,
            call_oi_without_gamma_units=0.0,
            put_oi_without_gamma_units=0.0,
            sign_convention="dealers assumed long calls (+) and short puts (-)",
            by_strike=[
                GammaRow(
                    strike=k,
                    call_rupees_per_1pct=1e8,
                    put_rupees_per_1pct=-5e7,
                    net_rupees_per_1pct=5e7,
                )
                for k in strikes
            ],
            provenance=window,
        ),
        buildup=BuildupGroup(
            since_previous=None,
            since_close=None,
            since_close_reason="no earlier snapshot",
            provenance=window,
        ),
        term_structure=TermStructure(
            expiries=[
                TermPoint(
                    expiry=expiry,
                    days_to_expiry=3.0,
                    atm_iv=0.12,
                    risk_reversal_25d=0.01,
                    butterfly_25d=0.002,
                    chain_as_of=chain_as_of,
                    reason=None,
                )
            ],
            provenance=window,
        ),
        forward=Forward(
            forward=spot,
            basis_points=0.0,
            basis_percent=0.0,
            parity_strikes=strikes[:1],
            reason=None,
            provenance=window,
        ),
        provenance=window,
    )


def bulky(chars: int) -> dict[str, Any]:
    """``extra`` that makes a block ``chars`` characters larger and keeps it valid (a long
    provenance note)."""
    return {"provenance": {"source": "data", "note": "x" * chars}}


def make_block(
    engine: str,
    *,
    as_of: int = AS_OF,
    spot: float = 25_637.8,
    freshness_limit_s: int = 300,
    kind: str = "intraday",
    computed_at: int | None = None,
    degraded: tuple[str, ...] = (),
    data: Contract | None = None,
    extra: dict[str, Any] | None = None,
) -> SignalBlock:
    """One engine's block: ``data`` (a contract struct of the engine's section, else this
    module's for ``spot``), with ``extra``'s raw fields merged over it."""
    if data is None:
        data = {
            "market": lambda: market_data(spot, as_of),
            "direction": lambda: direction_data(spot, heuristic_today=bool(degraded)),
            "seller": lambda: seller_data(spot),
            "buyer": lambda: buyer_data(spot),
        }[engine]()
    assert isinstance(data, BLOCK_DATA[engine]), f"{engine} data is not {BLOCK_DATA[engine]}"  # type: ignore[index]
    payload = dump(data) | (extra or {})
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


def typed_data(block: SignalBlock) -> Contract:
    """A block's data (as read from the bus) as its engine's contract struct."""
    return msgspec.convert(block.data, BLOCK_DATA[block.engine])


def all_blocks(**kwargs: Any) -> list[SignalBlock]:
    return [make_block(engine, **kwargs) for engine in ("market", "direction", "seller", "buyer")]


def closing_day(
    day: str,
    spot: float,
    vix: float,
    expiry: str,
    stress_score: float = 0.5,
    straddle_band: float | None = None,
) -> list[SignalBlock]:
    """A session's last market and seller blocks (15:29 IST) with a 150-point safe range and
    breach probabilities of 0.3 at 100 points and 0.1 at 200 points either side; with
    ``straddle_band``, a chain of the same expiry whose straddle band is that many points
    either side."""
    as_of = int(datetime.fromisoformat(f"{day}T15:29:00+05:30").timestamp())
    days = (date.fromisoformat(expiry) - date.fromisoformat(day)).days
    market = msgspec.structs.replace(market_data(spot, as_of), vix=vix)
    points = [
        BreachPoint(
            strike=spot + sign * gap,
            distance_points=float(gap),
            distance_pct=round(gap / spot * 100, 3),
            side=side,
            probability=p,
        )
        for side, sign in SIDES
        for gap, p in ((100, 0.3), (200, 0.1))
    ]
    update: dict[str, Any] = {
        "safe_range": safe_range(spot, spot - 150, spot + 150, expiry, days, vix),
        "breach_probabilities": BreachCurve(points=points, selection=None, provenance=formula("b")),
        "expiry_stress": stress(stress_score),
    }
    if straddle_band is not None:
        band = (spot - straddle_band, spot + straddle_band)
        update["chain"] = fresh_chain(spot, expiry, f"{day}T15:20:00+05:30", band=band)
    seller = msgspec.structs.replace(seller_data(spot), **update)
    blocks = (
        make_block("market", as_of=as_of, spot=spot, data=market),
        make_block("seller", as_of=as_of, spot=spot, data=seller),
    )
    return [b.model_copy(update={"session_date": day}) for b in blocks]


def chain_minute(as_of: int, oi: float, expiry: str = EXPIRY) -> SignalBlock:
    """A seller block whose fresh chain has three strikes, OI growing with ``oi``."""
    rows = [(k, oi + k / 100, 2 * oi) for k in (25_200.0, 25_250.0, 25_300.0)]
    chain = fresh_chain(25_260.0, expiry, ist_iso(as_of), oi=rows)
    block = make_block(
        "seller", as_of=as_of, data=msgspec.structs.replace(seller_data(25_637.8), chain=chain)
    )
    return block.model_copy(update={"session_date": "2025-06-30"})
