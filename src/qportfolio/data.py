"""Market data: close prices in, per-period return estimates out.

Notation (README, "The problems"): ``n`` assets, prices ``P_t`` (dollars per share) at the end of period ``t``.

* Simple returns, one per period: ``r_t = P_t / P_{t-1} − 1`` (``T`` returns from ``T + 1`` prices).
* Expected return per period: ``mu = (1/T) Σ_t r_t`` (sample mean of each column).
* Covariance per period, either

  - ``sample``: ``Sigma = 1/(T−1) Σ_t (r_t − mu)(r_t − mu)ᵀ`` (unbiased, ``ddof=1``), or
  - ``ledoit_wolf``: ``Sigma = (1 − δ) S + δ (tr(S)/n) I`` with ``S`` the maximum-likelihood
    covariance (``1/T``) and the shrinkage ``δ`` of Ledoit & Wolf (2004), as computed by
    :class:`sklearn.covariance.LedoitWolf` (``assume_centered=False``).

A *period* is set by the sampling frequency: ``daily`` (last price of each calendar day with a
price), ``weekly`` (last price of each week ending Friday), ``monthly`` (last price of each calendar
month) or ``as_is`` (each row of the price table is one period). Resampled rows keep the date of
the observation they come from, so no date lies outside the data.

Sources: ``sp500`` (20 US stocks, daily 1990-01-02 … 2022-12-28, bundled with skfolio, offline),
``csv`` (a date column first, then one price column per ticker) and ``yfinance`` (optional extra,
auto-adjusted closes, needs network).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from qportfolio.choices import Covariance, DataSource, Frequency
from qportfolio.errors import DataError

SOURCES = DataSource.values()
FREQUENCIES = Frequency.values()
COVARIANCES = Covariance.values()

#: Fewest price rows accepted by :func:`load_prices` (two returns need three prices).
MIN_PRICE_ROWS = 3
#: Fewest returns accepted by :func:`estimate_market` (a covariance needs two).
MIN_RETURNS = 2


# --------------------------------------------------------------------------- helpers


def _check_choice(value, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise DataError(f"unknown {name} {value!r}; valid values: {', '.join(choices)}")
    return value


def _iso(ts: pd.Timestamp) -> str:
    return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()


def _parse_date(value, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name} {value!r} is not a date; use ISO format YYYY-MM-DD") from exc
    if ts is pd.NaT:
        raise DataError(f"{name} {value!r} is not a date; use ISO format YYYY-MM-DD")
    return ts.tz_localize(None) if ts.tzinfo is not None else ts


def _check_assets(assets) -> list[str] | None:
    if assets is None:
        return None
    if isinstance(assets, str) or not all(isinstance(a, str) and a for a in assets):
        raise DataError(f"data.assets must be a list of ticker names, got {assets!r}")
    assets = list(assets)
    if not assets:
        raise DataError("data.assets is empty; list at least one ticker or leave it out to use all")
    duplicates = sorted({a for a in assets if assets.count(a) > 1})
    if duplicates:
        raise DataError(f"ticker {duplicates[0]!r} appears twice in data.assets; list each ticker once")
    return assets


def _tidy_index(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Timezone-naive, ascending, unique DatetimeIndex; column names as strings."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(f"prices {where} must be indexed by dates, got {type(frame.index).__name__}")
    if frame.index.tz is not None:
        frame = frame.tz_localize(None)
    frame = frame.sort_index()
    frame.columns = [str(c) for c in frame.columns]
    duplicated = frame.index[frame.index.duplicated()]
    if len(duplicated):
        raise DataError(f"date {_iso(duplicated[0])} appears twice {where}; keep one row per date")
    return frame


def _check_values(frame: pd.DataFrame, where: str) -> None:
    """Every price present, finite and positive (after windowing and column selection)."""
    for ticker in frame.columns:
        column = frame[ticker]
        missing = column.isna().to_numpy()
        if missing.all():
            raise DataError(f"no prices for {ticker!r} {where}; drop {ticker!r} from data.assets")
        if missing.any():
            first = int(missing.argmax())
            if missing[first:].all():  # a trailing gap: end the window earlier
                fix = f"set data.end to {_iso(frame.index[first - 1])} or earlier"
            else:  # start after the last missing price that is followed by a price
                gap_ends = np.flatnonzero(missing[:-1] & ~missing[1:])
                fix = f"set data.start to {_iso(frame.index[gap_ends[-1] + 1])} or later"
            raise DataError(
                f"missing price for {ticker!r} on {_iso(frame.index[first])} {where}; "
                f"{fix}, or drop {ticker!r} from data.assets"
            )
        bad = ~(np.isfinite(column.to_numpy()) & (column.to_numpy() > 0))
        if bad.any():
            i = bad.argmax()
            raise DataError(
                f"price {float(column.iloc[i])} for {ticker!r} on {_iso(frame.index[i])} {where} is not "
                f"a positive number; fix the data or drop {ticker!r} from data.assets"
            )


# --------------------------------------------------------------------------- sources


def _load_sp500() -> pd.DataFrame:
    from skfolio.datasets import load_sp500_dataset  # bundled CSV, no network

    return load_sp500_dataset()


def _load_csv(path) -> pd.DataFrame:
    if path is None:
        raise DataError("data.path is required with data.source: csv; give the price CSV file")
    file = Path(path)
    if file.is_dir():
        raise DataError(f"data.path '{file}' is a folder, not a file; give the price CSV file")
    if not file.is_file():
        raise DataError(f"price file '{file}' not found; check data.path")
    try:
        raw = pd.read_csv(file, dtype=str, skipinitialspace=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read price file '{file}': {reason}; expected a CSV with a header") from exc
    names = [str(name).strip() for name in pd.read_csv(file, header=None, nrows=1, dtype=str,
                                                         skipinitialspace=True).iloc[0]]
    repeated = sorted({name for name in names[1:] if names[1:].count(name) > 1})
    if repeated:
        raise DataError(f"ticker {repeated[0]!r} heads two columns of price file '{file}'; keep one column per "
                        "ticker")
    if raw.shape[1] < 2:
        raise DataError(
            f"price file '{file}' has {raw.shape[1]} column(s); expected a date column, "
            "then one price column per ticker"
        )
    dates_raw = raw.iloc[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format" for odd dates
        dates = pd.to_datetime(dates_raw, errors="coerce")
    if dates.isna().any():
        i = int(dates.isna().to_numpy().argmax())
        raise DataError(
            f"unparsable date {dates_raw.iloc[i]!r} in row {i + 2} of price file '{file}'; "
            f"the first column ({raw.columns[0]!r}) must hold dates, e.g. 2020-01-31"
        )
    columns = {}
    for name in raw.columns[1:]:
        text = raw[name].str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = (values.isna() & text.notna() & (text != "")).to_numpy()
        if bad.any():
            i = int(bad.argmax())
            raise DataError(
                f"non-numeric price {text.iloc[i]!r} for {str(name)!r} on {_iso(dates.iloc[i])} "
                f"in price file '{file}'; use plain numbers (empty cells mean missing)"
            )
        columns[str(name).strip()] = values.to_numpy(dtype=float)
    index = pd.DatetimeIndex(dates, name="Date")
    return pd.DataFrame(columns, index=index)


@contextlib.contextmanager
def _quiet_library(name: str):
    """A library's log records, warnings and prints kept from the terminal for the block (its retries are not
    the user's business; the error is one line); yields the messages it logged at WARNING or above."""
    logger, reported = logging.getLogger(name), []

    class Keep(logging.Handler):
        def emit(self, record):
            message = record.getMessage().strip()
            if message:
                reported.append(message)

    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers, logger.propagate = [Keep(logging.WARNING)], False
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield reported
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _load_yfinance(assets, start, end) -> pd.DataFrame:
    try:
        import yfinance as yf
    except ImportError as exc:
        raise DataError(
            "yfinance is not installed: pip install 'qportfolio[yfinance]' or use data.source: csv"
        ) from exc
    if assets is None:
        raise DataError("data.assets is required with data.source: yfinance; list the tickers")
    # yfinance's end is exclusive; ours is inclusive.
    end_excl = None if end is None else _iso((end + pd.Timedelta(days=1)).normalize())
    try:
        with _quiet_library("yfinance") as reported:
            raw = yf.download(
                list(assets),
                start=None if start is None else _iso(start.normalize()),
                end=end_excl,
                auto_adjust=True,
                progress=False,
            )
    except Exception as exc:  # network or service failure inside yfinance
        raise DataError(
            f"yfinance download failed for {', '.join(assets)}: {_one_line(str(exc))}; "
            "check the network and tickers, or use data.source: csv"
        ) from None
    if raw is None or raw.empty or "Close" not in raw:
        why = f" ({_one_line(reported[-1])})" if reported else ""
        raise DataError(
            f"yfinance returned no prices for {', '.join(assets)}{why}; check the network, the tickers and "
            "data.start/data.end, or use data.source: csv"
        )
    close = raw["Close"]
    if isinstance(close, pd.Series):
        close = close.to_frame(assets[0])
    return close.dropna(how="all")


# --------------------------------------------------------------------------- public API


def load_prices(
    source: str,
    assets: list[str] | None = None,
    path: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> pd.DataFrame:
    """Close prices, DatetimeIndex ascending, one column per ticker.

    Columns come in the order of ``assets`` (all columns of the source if None).
    ``start`` and ``end`` are inclusive ISO dates applied after loading. Within the window every
    requested price must be present and positive, and there must be at least three rows;
    otherwise :class:`DataError` says which ticker/date and what to change.
    """
    _check_choice(source, SOURCES, "data.source")
    assets = _check_assets(assets)
    start_ts, end_ts = _parse_date(start, "data.start"), _parse_date(end, "data.end")
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise DataError(f"data.start {_iso(start_ts)} is after data.end {_iso(end_ts)}; swap them")
    if path is not None and source != "csv":
        raise DataError(f"data.path is only used with data.source: csv (source is {source!r}); remove it")

    if source == "sp500":
        frame, where = _load_sp500(), "in the bundled S&P 500 sample"
    elif source == "csv":
        frame, where = _load_csv(path), f"in price file '{path}'"
    else:
        frame, where = _load_yfinance(assets, start_ts, end_ts), "from yfinance"
    frame = _tidy_index(frame, where)

    available = list(frame.columns)
    tickers = available if assets is None else assets
    for ticker in tickers:
        if ticker not in available:
            hint = [a for a in available if a.upper() == ticker.upper()]
            raise DataError(
                f"unknown ticker {ticker!r} in data.assets"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; available {where}: {', '.join(available)}"
            )
    full = frame[tickers].astype(float)

    keep = np.ones(len(full), dtype=bool)
    if start_ts is not None:
        keep &= full.index >= start_ts
    if end_ts is not None:
        # a date-only end includes that whole day
        if end_ts == end_ts.normalize():
            keep &= full.index < end_ts + pd.Timedelta(days=1)
        else:
            keep &= full.index <= end_ts
    prices = full[keep]

    if len(prices) < MIN_PRICE_ROWS:
        span = f"{_iso(full.index[0])} to {_iso(full.index[-1])}" if len(full) else "no dates"
        first, last = (_iso(ts) if ts is not None else "…" for ts in (start_ts, end_ts))
        window = f"{first} to {last}"
        raise DataError(
            f"only {len(prices)} price row(s) {where} for the window {window}; need at least "
            f"{MIN_PRICE_ROWS}: widen data.start/data.end (data covers {span})"
        )
    _check_values(prices, f"{where} (window {_iso(prices.index[0])} to {_iso(prices.index[-1])})")
    return prices


def resample_prices(prices: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """daily: one row per calendar day with a price (last); weekly: last price of each week (W-FRI);
    monthly: last price of each month; as_is: rows unchanged (each row is one period).

    The kept rows keep their own dates (e.g. Thursday for a week whose Friday was a holiday).
    """
    _check_choice(frequency, FREQUENCIES, "frequency")
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise DataError(f"prices must be indexed by dates, got {type(prices.index).__name__}")
    if frequency == "as_is":
        return prices.copy()
    prices = prices.sort_index()
    index = prices.index.tz_localize(None) if prices.index.tz is not None else prices.index
    if frequency == "daily":
        key = index.normalize()
    elif frequency == "weekly":
        key = index.to_period("W-FRI")
    else:
        key = index.to_period("M")
    return prices.groupby(key).tail(1)


@dataclass(frozen=True, eq=False)
class MarketData:
    """Per-period estimates for ``n`` assets; arrays are read-only."""

    tickers: tuple[str, ...]
    prices: pd.DataFrame  # resampled prices in the window
    returns: pd.DataFrame  # simple returns per period
    mu: np.ndarray  # (n,) mean simple return per period
    sigma: np.ndarray  # (n, n) covariance per period
    last_prices: np.ndarray  # (n,) last close in the window, dollars per share
    frequency: str
    covariance: str

    @property
    def n_assets(self) -> int:
        return len(self.tickers)

    def describe(self) -> dict:
        """JSON-ready summary."""
        return {
            "tickers": list(self.tickers),
            "first_date": _iso(self.prices.index[0]),
            "last_date": _iso(self.prices.index[-1]),
            "periods": int(len(self.returns)),
            "frequency": self.frequency,
            "covariance": self.covariance,
            "last_prices": {t: float(p) for t, p in zip(self.tickers, self.last_prices, strict=True)},
            "mu": {t: float(m) for t, m in zip(self.tickers, self.mu, strict=True)},
        }


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=float)
    array.flags.writeable = False
    return array


def estimate_market(prices: pd.DataFrame, frequency: str = "daily", covariance: str = "sample") -> MarketData:
    """Resample ``prices`` to ``frequency``, then estimate ``mu`` and ``Sigma`` of simple returns."""
    _check_choice(frequency, FREQUENCIES, "frequency")
    _check_choice(covariance, COVARIANCES, "covariance")
    if not isinstance(prices, pd.DataFrame) or prices.shape[1] == 0:
        raise DataError("prices must be a DataFrame with one column per ticker")
    if not prices.index.is_monotonic_increasing or prices.index.has_duplicates:
        raise DataError("prices must have ascending, unique dates; sort and de-duplicate them")
    prices = prices.astype(float)
    _check_values(prices, "in prices")

    sampled = resample_prices(prices, frequency)
    returns = (sampled / sampled.shift(1) - 1.0).iloc[1:]
    if len(returns) < MIN_RETURNS:
        raise DataError(
            f"only {len(returns)} {frequency} return(s) between {_iso(prices.index[0])} and "
            f"{_iso(prices.index[-1])}; need at least {MIN_RETURNS}: widen data.start/data.end "
            "or use a higher frequency (e.g. daily)"
        )
    x = returns.to_numpy()
    mu = x.mean(axis=0)
    if covariance == "sample":
        sigma = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
    else:
        from sklearn.covariance import LedoitWolf

        sigma = LedoitWolf(assume_centered=False).fit(x).covariance_
    return MarketData(
        tickers=tuple(str(c) for c in prices.columns),
        prices=sampled,
        returns=returns,
        mu=_readonly(mu),
        sigma=_readonly(sigma),
        last_prices=_readonly(sampled.iloc[-1].to_numpy()),
        frequency=frequency,
        covariance=covariance,
    )


def load_market(
    source: str = "sp500",
    assets: list[str] | None = None,
    path: str | None = None,
    start: str | None = None,
    end: str | None = None,
    frequency: str = "daily",
    covariance: str = "sample",
) -> MarketData:
    """:func:`load_prices` then :func:`estimate_market`."""
    _check_choice(frequency, FREQUENCIES, "frequency")
    _check_choice(covariance, COVARIANCES, "covariance")
    prices = load_prices(source, assets=assets, path=path, start=start, end=end)
    return estimate_market(prices, frequency=frequency, covariance=covariance)
