"""What the seller and buyer engines see of the option chain for one feature snapshot: the
freshest chain of the target expiry (or why there is none), the snapshot before it, and the
ATM IV of every earlier kept snapshot (for its percentile)."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from shared.contract.schemas import FeatureSnapshot, OptionChain
from shared.market.calendar import daily_close_time, daily_open_time, ist_iso, to_date
from shared.signals.chain import atm_iv, atm_ivs
from shared.signals.skew import SECONDS_PER_YEAR

TERM_MAX_DAYS = 95  # expiries in the term structure: within about three months

if TYPE_CHECKING:  # the cache reads Redis (its owner refreshes it); this module does not
    from shared.bus.engine import ChainCache


def years_to_expiry(chain: OptionChain) -> float:
    """Year fraction from the snapshot to the expiry day's 15:30 IST close."""
    return (daily_close_time(to_date(chain.expiry)) - chain.snapshot_time) / SECONDS_PER_YEAR


@dataclass(frozen=True)
class ChainView:
    chain: OptionChain | None  # fresh, of the target expiry; None with ``reason``
    previous: OptionChain | None  # the kept snapshot of that expiry just before ``chain``
    reason: str | None
    age_s: int | None  # snapshot age at the feature snapshot's as_of
    atm_iv: float | None  # of ``chain``
    atm_iv_history: tuple[float, ...]  # earlier kept snapshots of any expiry, oldest first
    history_from: int | None  # snapshot_time of the oldest one in the history
    history_expiries: int
    # the newest fresh snapshot of every other listed expiry (term structure), by expiry
    other_expiries: tuple[OptionChain, ...] = ()
    # the last snapshot of ``chain``'s expiry before this session opened (build-up since
    # the previous close); None when the cache holds none
    previous_close: OptionChain | None = None


class ChainViews:
    """Builds ``ChainView``s from a ``ChainCache``. Keeps every kept snapshot's ATM IV on a
    timeline sorted by (snapshot time, expiry), extended with the snapshots new since the last
    view (chains of one expiry arrive in time order: the sources reject older snapshots) and
    bounded like the cache. The timeline is three parallel lists, so a view slices them (C
    speed) instead of walking up to 24,000 rows in Python."""

    def __init__(self, cache: ChainCache, max_age_s: int, spot_band: float = 0.03) -> None:
        self.cache = cache
        self.max_age_s = max_age_s
        self.spot_band = spot_band  # |chain spot / bar spot - 1| beyond this: not this market
        self._atm_iv: dict[tuple[str, int], float | None] = {}
        self._keys: list[tuple[int, str]] = []  # (snapshot_time, expiry), sorted
        self._ivs: list[float] = []  # the ATM IV of each key
        self._expiries: list[str] = []  # the expiry of each key
        self._rows_of: Counter[str] = Counter()  # rows per expiry on the timeline
        self._limit = cache.max_per_expiry * cache.max_expiries

    def atm_iv_of(self, chain: OptionChain) -> float | None:
        key = (chain.expiry, chain.snapshot_time)
        if key not in self._atm_iv:
            self._atm_iv[key] = atm_iv(chain.quotes, chain.spot, years_to_expiry(chain))
        return self._atm_iv[key]

    def _sync(self) -> None:
        new: list[OptionChain] = []
        for expiry, rows in self.cache.by_expiry.items():
            for taken, chain in reversed(rows):
                if (expiry, taken) in self._atm_iv:
                    break
                new.append(chain)
        ivs = atm_ivs([(c.quotes, c.spot, years_to_expiry(c)) for c in new])
        for chain, iv in zip(new, ivs, strict=True):
            self._atm_iv[(chain.expiry, chain.snapshot_time)] = iv
            if iv is not None:
                key = (chain.snapshot_time, chain.expiry)
                i = bisect.bisect_right(self._keys, key)
                self._keys.insert(i, key)
                self._ivs.insert(i, iv)
                self._expiries.insert(i, chain.expiry)
                self._rows_of[chain.expiry] += 1
        drop = max(0, len(self._keys) - self._limit)
        for taken, expiry in self._keys[:drop]:
            self._atm_iv.pop((expiry, taken), None)
            self._rows_of[expiry] -= 1
            if not self._rows_of[expiry]:
                del self._rows_of[expiry]
        for column in (self._keys, self._ivs, self._expiries):
            del column[:drop]

    def view(self, snapshot: FeatureSnapshot) -> ChainView:
        """The view from what the cache holds now (the engine refreshes it, one XREAD a
        batch, before computing)."""
        expiry, as_of = snapshot.next_expiry, snapshot.as_of
        kept = self.cache.recent(expiry, as_of, 2)
        if not kept:
            rows = self.cache.by_expiry.get(expiry)
            if rows:  # held, but only from later: say so, not "held for: ..., <expiry>"
                reason = (
                    f"the first {expiry} chain held ({ist_iso(rows[0][0])}) is after this "
                    f"snapshot ({ist_iso(as_of)})"
                )
            else:
                have = sorted(self.cache.by_expiry)
                reason = (
                    f"no option chain of the target expiry {expiry} is held"
                    f" (chains held for: {', '.join(have) or 'none'})"
                )
            return ChainView(None, None, reason, None, None, (), None, 0)
        chain, age = kept[-1], as_of - kept[-1].snapshot_time
        if age > self.max_age_s:
            reason = (
                f"newest chain of {expiry} is {age} s old (limit AEGIS_CHAIN_MAX_AGE_S="
                f"{self.max_age_s})"
            )
            return ChainView(None, None, reason, age, None, (), None, 0)
        if years_to_expiry(chain) <= 0:
            reason = (
                f"the {expiry} contract expired at its 15:30 IST close; the newest chain held "
                f"({ist_iso(chain.snapshot_time)}) is from after it"
            )
            return ChainView(None, None, reason, age, None, (), None, 0)
        gap = chain.spot / snapshot.spot - 1
        if abs(gap) > self.spot_band:
            reason = (
                f"chain of {expiry} at {chain.snapshot_time} has spot {chain.spot:g}, "
                f"{gap:+.1%} from the bar stream's {snapshot.spot:g} (limit "
                f"AEGIS_CHAIN_SPOT_BAND={self.spot_band:g})"
            )
            return ChainView(None, None, reason, age, None, (), None, 0)
        self._sync()
        # the earlier snapshots: every key up to as_of but the chain's own
        end = bisect.bisect_right(self._keys, (as_of, "\uffff"))
        own = bisect.bisect_left(self._keys, (chain.snapshot_time, chain.expiry), hi=end)
        mine = own < end and self._keys[own] == (chain.snapshot_time, chain.expiry)
        skip = own if mine else end
        ivs = self._ivs[:skip] + self._ivs[skip + 1 : end]
        first = self._keys[0] if skip else self._keys[1] if end > 1 else None
        if end == len(self._keys):  # the live case: the whole timeline is at or before as_of
            alone = mine and self._rows_of[chain.expiry] == 1
            expiries = len(self._rows_of) - int(alone)
        else:
            expiries = len(set(self._expiries[:skip]) | set(self._expiries[skip + 1 : end]))
        return ChainView(
            chain=chain,
            previous=kept[-2] if len(kept) > 1 else None,
            reason=None,
            age_s=age,
            atm_iv=self.atm_iv_of(chain),
            atm_iv_history=tuple(ivs),
            history_from=first[0] if first else None,
            history_expiries=expiries,
            other_expiries=self._other_expiries(snapshot, expiry),
            previous_close=self._previous_close(snapshot, expiry),
        )

    def _other_expiries(self, snapshot: FeatureSnapshot, expiry: str) -> tuple[OptionChain, ...]:
        """The newest snapshot at or before as_of of each other unexpired expiry up to
        ``TERM_MAX_DAYS`` away (the weeklies and the next monthlies: far expiries' quotes are
        too thin for an IV), within the age limit, in expiry order."""
        out = []
        horizon = (to_date(snapshot.session_date) + timedelta(days=TERM_MAX_DAYS)).isoformat()
        for other in sorted(self.cache.by_expiry):
            if other == expiry or not snapshot.session_date <= other <= horizon:
                continue
            kept = self.cache.recent(other, snapshot.as_of, 1)
            if kept and snapshot.as_of - kept[-1].snapshot_time <= self.max_age_s:
                out.append(kept[-1])
        return tuple(out)

    def _previous_close(self, snapshot: FeatureSnapshot, expiry: str) -> OptionChain | None:
        opened = daily_open_time(to_date(snapshot.session_date))
        kept = self.cache.recent(expiry, opened - 1, 1)
        return kept[-1] if kept else None
