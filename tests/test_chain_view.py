"""The seller's chain view on real chains: the ATM IV history it slices from its timeline is
the one a plain scan of every kept snapshot gives, while chains arrive, expiries are evicted
and the view looks back in time; ``ChainCache.recent`` is the tail of ``kept``."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from services.ingest.sources.chain_file import ChainFileSource
from services.seller.compute import compute_seller
from shared.bus.engine import ChainCache
from shared.config import Settings
from shared.contract.document.chain import ChainUnavailable
from shared.contract.schemas import FeatureSnapshot, OptionChain
from shared.market.calendar import ist_iso
from shared.market.chain_view import ChainViews, years_to_expiry
from shared.models.context import EngineContext, ModelBook
from shared.signals.chain import atm_iv
from tests.engines_support import daily_snapshot
from tests.test_chain_file import CHAIN_FILE
from tests.test_engines_chain import real_chains

MAX_PER_EXPIRY, MAX_EXPIRIES = 40, 3  # small bounds: the timeline drops its oldest rows


@pytest.fixture(scope="module")
def arrivals() -> list[OptionChain]:
    """Real snapshots in time order, each also relabelled to the next weekly expiry and taken
    30 s later (two expiries per poll, as a live source of two expiries gives)."""
    out = []
    for chain in real_chains(120):
        later = (date.fromisoformat(chain.expiry) + timedelta(days=7)).isoformat()
        update = {"expiry": later, "snapshot_time": chain.snapshot_time + 30}
        out += [chain, chain.model_copy(update=update)]
    return out


def snapshot_at(as_of: int, expiry: str) -> FeatureSnapshot:
    update = {"as_of": as_of, "session_date": "2026-01-22", "next_expiry": expiry}
    return daily_snapshot("2025-06-27").model_copy(update=update)


def atm_ivs_of(chains: list[OptionChain]) -> dict[tuple[int, str], float | None]:
    return {
        (c.snapshot_time, c.expiry): atm_iv(c.quotes, c.spot, years_to_expiry(c)) for c in chains
    }


def plain_history(
    seen: list[OptionChain],
    ivs: dict[tuple[int, str], float | None],
    chain: OptionChain,
    as_of: int,
) -> list[tuple]:
    """(snapshot_time, expiry, ATM IV) of every snapshot seen up to ``as_of`` but ``chain``,
    oldest first, within the view's bound (the newest cache-capacity rows)."""
    rows = sorted(
        (c.snapshot_time, c.expiry, iv)
        for c in seen
        if (iv := ivs[(c.snapshot_time, c.expiry)]) is not None
    )[-MAX_PER_EXPIRY * MAX_EXPIRIES :]
    return [
        r for r in rows if r[0] <= as_of and (r[0], r[1]) != (chain.snapshot_time, chain.expiry)
    ]


@pytest.mark.slow
def test_history_is_a_plain_scan_of_the_kept_snapshots(arrivals: list[OptionChain]) -> None:
    cache = ChainCache(None, MAX_PER_EXPIRY, MAX_EXPIRIES)  # type: ignore[arg-type]  # no Redis
    views = ChainViews(cache, max_age_s=10**9)
    ivs = atm_ivs_of(arrivals)
    checked = 0
    for n, chain in enumerate(arrivals, start=1):
        cache.add(chain)
        if n % 9:
            continue
        seen = arrivals[:n]
        # per expiry, at and 30 s after: its newest snapshot, its oldest (early on the first
        # of the timeline: the history then starts after it) and one in the middle
        for rows in cache.by_expiry.values():
            for (taken, own), late in itertools.product(
                (rows[-1], rows[0], rows[len(rows) // 2]), (0, 30)
            ):
                view = views.view(snapshot_at(taken + late, own.expiry))
                expected = plain_history(seen, ivs, own, taken + late)
                assert view.chain is own
                assert view.atm_iv_history == tuple(r[2] for r in expected)
                assert view.history_from == (expected[0][0] if expected else None)
                assert view.history_expiries == len({r[1] for r in expected})
                checked += 1
    assert checked > 60
    newest = arrivals[-1]
    final = views.view(snapshot_at(newest.snapshot_time, newest.expiry))
    assert final.history_from is not None
    assert final.history_from > arrivals[0].snapshot_time  # the bound dropped the oldest


def test_recent_is_the_tail_of_the_kept_snapshots_up_to_as_of(
    arrivals: list[OptionChain],
) -> None:
    cache = ChainCache(None)  # type: ignore[arg-type]  # no Redis
    for chain in arrivals:
        cache.add(chain)
    expiry = arrivals[0].expiry
    times = [t for t, _ in cache.by_expiry[expiry]]
    for as_of in (times[0] - 1, times[0], times[5], times[5] + 1, times[-1] + 10**6):
        for count in (1, 2, 5):
            kept = [c for t, c in cache.by_expiry[expiry] if t <= as_of]
            assert cache.recent(expiry, as_of, count) == kept[-count:]
    assert cache.recent("2030-01-01", times[-1], 2) == []


def test_a_new_expiry_is_not_in_its_own_history(arrivals: list[OptionChain]) -> None:
    cache = ChainCache(None)  # type: ignore[arg-type]  # no Redis
    weekly = [c for c in arrivals if c.expiry == arrivals[0].expiry][:5]
    for chain in weekly:
        cache.add(chain)
    first_of_new = weekly[-1].model_copy(
        update={"expiry": "2026-03-31", "snapshot_time": weekly[-1].snapshot_time + 60}
    )
    cache.add(first_of_new)
    priced = [c for c in weekly if atm_iv(c.quotes, c.spot, years_to_expiry(c)) is not None]
    assert weekly[-1] in priced and len(priced) > 2
    views = ChainViews(cache, max_age_s=10**9)
    view = views.view(snapshot_at(first_of_new.snapshot_time, "2026-03-31"))
    assert view.chain is first_of_new
    assert len(view.atm_iv_history) == len(priced) and view.history_expiries == 1
    view = views.view(snapshot_at(first_of_new.snapshot_time, weekly[0].expiry))
    assert view.chain is weekly[-1]
    assert len(view.atm_iv_history) == len(priced) and view.history_expiries == 2


def test_a_chain_taken_after_its_expiry_close_is_no_target() -> None:
    """The real 2026-02-03 snapshot taken at 15:33, after the expiring contract's 15:30
    close: the view says so and the seller's chain group is unavailable with that reason (it
    raised a math domain error on the negative time to expiry). The snapshot before it, taken
    while the contract still traded, is the target as usual."""
    chains = [
        e
        for e in ChainFileSource(CHAIN_FILE).events()
        if isinstance(e, OptionChain) and e.expiry == "2026-02-03"
    ]
    expired = next(c for c in chains if years_to_expiry(c) <= 0)
    before = chains[chains.index(expired) - 1]
    assert years_to_expiry(before) > 0 and ist_iso(expired.snapshot_time).startswith(
        "2026-02-03T15:3"
    )
    cache = ChainCache(None)  # type: ignore[arg-type]  # filled directly, no Redis
    views = ChainViews(cache, max_age_s=3600)

    def snapshot_after(chain: OptionChain) -> FeatureSnapshot:
        update = {
            "as_of": chain.snapshot_time + 30,
            "session_date": "2026-02-03",
            "next_expiry": "2026-02-03",
            "spot": chain.spot,
        }
        return daily_snapshot("2025-06-27").model_copy(update=update)

    cache.add(before)
    assert views.view(snapshot_after(before)).chain is before
    cache.add(expired)
    snapshot = snapshot_after(expired)
    view = views.view(snapshot)
    assert view.chain is None and view.reason is not None
    assert "2026-02-03 contract expired at its 15:30 IST close" in view.reason
    ctx = EngineContext(Settings(), snapshot, ModelBook(), None, {})
    group = compute_seller(ctx, view).chain
    assert isinstance(group, ChainUnavailable) and group.reason == view.reason
