"""Training ``direction_intraday`` from the 1-minute bars, replaying each session through
``IntradaySession`` exactly as the live features worker does."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from services.trainer.artifacts import TrainedModel
from services.trainer.data import TrainingData
from services.trainer.profiles import Profile
from services.trainer.splits import purged_folds
from services.trainer.tabular import Head, fit
from shared.features.intraday import IntradaySession
from shared.market.calendar import SESSION_MINUTES
from shared.models import boosters, calibration, labels
from shared.models.intraday import BOOSTER_FILE, model_input


def session_samples(data: TrainingData, every_minutes: int) -> pd.DataFrame:
    """One row per sampled minute: model inputs, the label return ln(close/last), the
    neutral band and the session date."""
    if data.minutes is None or data.minutes.empty:
        raise ValueError("direction_intraday needs the 1-minute history")
    frame, feats = data.frame, data.features
    daily_rows = {d: i for i, d in enumerate(frame.index)}
    records = feats.to_dict("records")
    out = []
    for day, bars in data.minutes.groupby("date", sort=True):
        i = daily_rows.get(day)
        if i is None or i == 0:
            continue
        prev = i - 1
        session = IntradaySession(
            session_date=f"{day:%Y-%m-%d}",
            prev_close=float(frame["close"].iloc[prev]),
            prior_high=float(frame["high"].iloc[prev]),
            prior_low=float(frame["low"].iloc[prev]),
            atr_14=_finite(feats["atr_14"].iloc[prev]),
        )
        close_today = float(frame["close"].iloc[i])
        sigma = feats["sigma20_daily"].iloc[prev]
        for open_time, o, h, lo, c in bars[
            ["open_time", "open", "high", "low", "close"]
        ].itertuples(index=False, name=None):
            session.update(int(open_time), o, h, lo, c)
            elapsed = session.minute + 1
            if elapsed % every_minutes or not 0 < elapsed < SESSION_MINUTES:
                continue
            remaining = (SESSION_MINUTES - elapsed) / SESSION_MINUTES
            out.append(
                {
                    "x": model_input(records[prev], session.features()),
                    "ret": math.log(close_today / session.last),
                    "band": labels.NEUTRAL_BAND_SIGMA * sigma * math.sqrt(remaining),
                    "row": i,
                }
            )
    return pd.DataFrame(out)


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def train_intraday(data: TrainingData, profile: Profile) -> TrainedModel:
    samples = session_samples(data, profile.intraday_every_minutes)
    x = np.stack(samples["x"].to_numpy())
    y = labels.classify(samples["ret"], samples["band"])
    rows = samples["row"].to_numpy()
    keep = ~np.isnan(y)
    x, y, rows, ret = x[keep], y[keep], rows[keep], samples["ret"].to_numpy()[keep]
    sessions = np.unique(rows)
    folds = purged_folds(sessions, purge_sessions=0)
    part = {k: np.isin(rows, getattr(folds, k)) for k in ("train", "calibrate", "validate")}
    head = Head("multi", 3)
    held = fit(x[part["train"]], y[part["train"]], head, profile)
    clim = np.asarray([np.mean(y[part["train"]] == k) for k in range(3)])
    temperature = calibration.fit_temperature(
        boosters.predict(held, x[part["calibrate"]]), y[part["calibrate"]].astype(int)
    )
    yv = y[part["validate"]].astype(int)
    cal_v = calibration.apply_temperature(boosters.predict(held, x[part["validate"]]), temperature)
    ll_model = calibration.log_loss(cal_v, yv)
    ll_clim = calibration.log_loss(np.tile(clim, (len(yv), 1)), yv)
    weight = calibration.fit_shrink_weight(cal_v, yv, clim)

    clim_all = [float(np.mean(y == k)) for k in range(3)]
    means = [float(ret[y == k].mean()) if np.any(y == k) else 0.0 for k in range(3)]
    assert data.minutes is not None  # session_samples refused a history without minutes
    first, last = (f"{d:%Y-%m-%d}" for d in data.minutes["date"].iloc[[0, -1]])
    window = f"{first}..{last}"
    params = {
        "temperature": temperature,
        "shrink_weight": weight,
        "climatology": clim_all,
        "class_mean_return": means,
        "beats_climatology": ll_model < ll_clim,
        "sample_every_minutes": profile.intraday_every_minutes,
    }
    metrics = {
        "validation": {
            "log_loss": ll_model,
            "log_loss_climatology": ll_clim,
            "accuracy": float(np.mean(cal_v.argmax(1) == yv)),
            "accuracy_majority": float(np.mean(yv == int(np.argmax(clim)))),
            "samples": len(yv),
        },
        "beats_climatology": ll_model < ll_clim,
        "shrink_weight": weight,
        "climatology": clim_all,
        "minute_window": window,
    }
    return TrainedModel(
        name="direction_intraday",
        feature_sets=("daily", "intraday"),
        params=params,
        # it learns from the 1-minute sessions only: that is what in_sample must compare with
        metrics=metrics,
        training_window={"start": first, "end": last},
        writers={BOOSTER_FILE: lambda p: boosters.save(held, p)},
    )
