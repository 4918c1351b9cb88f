"""Tests for qportfolio.data: estimates checked against hand computations and sklearn."""

from __future__ import annotations

import socket
import sys
import types

import numpy as np
import pandas as pd
import pytest
from sklearn.covariance import ledoit_wolf

from qportfolio.data import (
    COVARIANCES,
    FREQUENCIES,
    SOURCES,
    MarketData,
    estimate_market,
    load_market,
    load_prices,
    resample_prices,
)
from qportfolio.errors import DataError, QPortfolioError

SP500_TICKERS = "AAPL AMD BAC BBY CVX GE HD JNJ JPM KO LLY MRK MSFT PEP PFE PG RRC UNH WMT XOM".split()


@pytest.fixture
def tiny() -> pd.DataFrame:
    """Four prices, three returns: A = 10, 11, 9.9, 10.89; B = 20, 20, 22, 22."""
    index = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
    return pd.DataFrame({"A": [10.0, 11.0, 9.9, 10.89], "B": [20.0, 20.0, 22.0, 22.0]}, index=index)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def write_csv(path, text: str):
    path.write_text(text.strip() + "\n")
    return path


# --------------------------------------------------------------------------- estimates


def test_mu_and_sample_sigma_match_hand_computation(tiny):
    market = estimate_market(tiny, frequency="as_is", covariance="sample")
    # A: +10 %, −10 %, +10 %; B: 0 %, +10 %, 0 %
    r = np.array([[0.1, 0.0], [-0.1, 0.1], [0.1, 0.0]])
    np.testing.assert_allclose(market.returns.to_numpy(), r, atol=1e-12)
    mu = np.array([0.1 / 3, 0.1 / 3])
    np.testing.assert_allclose(market.mu, mu, atol=1e-12)
    d = r - mu
    sigma = d.T @ d / (3 - 1)
    np.testing.assert_allclose(market.sigma, sigma, atol=1e-12)
    # written out: var(A) = ((0.2/3)² · 2 + (0.4/3)²) / 2
    assert market.sigma[0, 0] == pytest.approx(((0.2 / 3) ** 2 * 2 + (0.4 / 3) ** 2) / 2)
    np.testing.assert_allclose(market.last_prices, [10.89, 22.0])
    assert market.tickers == ("A", "B")
    assert market.frequency == "as_is" and market.covariance == "sample"


def test_ledoit_wolf_matches_sklearn_function():
    rng = np.random.default_rng(0)
    index = pd.bdate_range("2023-01-02", periods=60)
    prices = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(60, 4)), axis=0)),
        index=index,
        columns=list("WXYZ"),
    )
    market = estimate_market(prices, frequency="as_is", covariance="ledoit_wolf")
    returns = prices.to_numpy()[1:] / prices.to_numpy()[:-1] - 1
    expected, shrinkage = ledoit_wolf(returns, assume_centered=False)
    assert 0 < shrinkage < 1
    np.testing.assert_allclose(market.sigma, expected, rtol=1e-12)
    np.testing.assert_allclose(market.mu, returns.mean(axis=0), rtol=1e-12)
    assert market.sigma.shape == (4, 4)


def test_single_asset_sigma_is_one_by_one(tiny):
    market = estimate_market(tiny[["A"]], frequency="as_is")
    assert market.sigma.shape == (1, 1)
    assert market.sigma[0, 0] == pytest.approx(np.var([0.1, -0.1, 0.1], ddof=1))


def test_estimates_are_read_only(tiny):
    market = estimate_market(tiny, frequency="as_is")
    with pytest.raises(ValueError):
        market.mu[0] = 1.0


def test_describe_is_json_ready(tiny):
    import json

    summary = estimate_market(tiny, frequency="as_is").describe()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["first_date"] == "2024-01-02"
    assert summary["last_date"] == "2024-01-05"
    assert summary["periods"] == 3
    assert summary["tickers"] == ["A", "B"]
    assert summary["last_prices"] == {"A": 10.89, "B": 22.0}
    assert summary["mu"]["B"] == pytest.approx(0.1 / 3)


# --------------------------------------------------------------------------- resampling


@pytest.fixture
def daily() -> pd.DataFrame:
    """Business days 2024-01-01 … 2024-03-29 minus Friday 2024-01-12 (a holiday); price = day number."""
    index = pd.bdate_range("2024-01-01", "2024-03-29").drop(pd.Timestamp("2024-01-12"))
    return pd.DataFrame({"P": np.arange(1.0, len(index) + 1)}, index=index)


def test_weekly_keeps_last_day_of_each_week(daily):
    weekly = resample_prices(daily, "weekly")
    assert weekly.index[0] == pd.Timestamp("2024-01-05")
    assert weekly.index[1] == pd.Timestamp("2024-01-11")  # Friday was missing: Thursday's price
    assert weekly.index[2] == pd.Timestamp("2024-01-19")
    assert weekly.index[-1] == pd.Timestamp("2024-03-29")
    assert len(weekly) == 13
    np.testing.assert_array_equal(weekly["P"].to_numpy(), daily.loc[weekly.index, "P"].to_numpy())


def test_monthly_keeps_last_day_of_each_month(daily):
    monthly = resample_prices(daily, "monthly")
    assert list(monthly.index) == list(pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-29"]))
    np.testing.assert_array_equal(monthly["P"].to_numpy(), daily.loc[monthly.index, "P"].to_numpy())


def test_daily_takes_last_price_of_each_calendar_day():
    index = pd.to_datetime(["2024-01-02 10:00", "2024-01-02 16:00", "2024-01-03 16:00"])
    prices = pd.DataFrame({"P": [1.0, 2.0, 3.0]}, index=index)
    daily = resample_prices(prices, "daily")
    assert daily["P"].tolist() == [2.0, 3.0]
    assert resample_prices(prices, "as_is")["P"].tolist() == [1.0, 2.0, 3.0]


def test_weekly_market_uses_weekly_returns(daily):
    market = estimate_market(daily, frequency="weekly")
    weekly = daily.loc[resample_prices(daily, "weekly").index, "P"].to_numpy()
    np.testing.assert_allclose(market.returns["P"].to_numpy(), weekly[1:] / weekly[:-1] - 1)
    assert market.describe()["periods"] == 12


# --------------------------------------------------------------------------- sources


def test_sp500_loads_offline(no_network):
    prices = load_prices("sp500")
    assert list(prices.columns) == SP500_TICKERS
    assert len(prices) > 8000
    assert prices.index.is_monotonic_increasing
    assert (prices.to_numpy() > 0).all()
    assert not prices.isna().any().any()


def test_sp500_window_and_asset_order():
    prices = load_prices("sp500", assets=["XOM", "AAPL"], start="2020-01-06", end="2020-01-31")
    assert list(prices.columns) == ["XOM", "AAPL"]
    assert prices.index[0] == pd.Timestamp("2020-01-06")
    assert prices.index[-1] == pd.Timestamp("2020-01-31")  # end is inclusive
    assert len(prices) == 19  # 2020-01-20 was a market holiday


def test_load_market_sp500_monthly_ledoit_wolf():
    market = load_market(
        assets=["AAPL", "MSFT", "JNJ"],
        start="2015-01-01",
        end="2019-12-31",
        frequency="monthly",
        covariance="ledoit_wolf",
    )
    assert isinstance(market, MarketData)
    assert market.describe()["periods"] == 59
    assert np.allclose(market.sigma, market.sigma.T)
    assert np.all(np.linalg.eigvalsh(market.sigma) > 0)


def test_csv_round_trip(tmp_path, tiny):
    path = tmp_path / "prices.csv"
    tiny.rename_axis("when").to_csv(path)
    loaded = load_prices("csv", path=str(path))
    pd.testing.assert_frame_equal(loaded, tiny, check_names=False, check_freq=False)
    market = load_market("csv", path=str(path), frequency="as_is")
    np.testing.assert_allclose(market.mu, estimate_market(tiny, frequency="as_is").mu)
    assert list(load_prices("csv", assets=["B"], path=str(path))["B"]) == [20.0, 20.0, 22.0, 22.0]


def test_csv_in_descending_order_is_sorted(tmp_path):
    path = write_csv(tmp_path / "p.csv", "Date,X\n2024-01-04,3\n2024-01-03,2\n2024-01-02,1")
    assert load_prices("csv", path=path)["X"].tolist() == [1.0, 2.0, 3.0]


def test_yfinance_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "yfinance", None)  # makes `import yfinance` fail
    with pytest.raises(DataError, match=r"yfinance is not installed: pip install 'qportfolio\[yfinance\]'"):
        load_prices("yfinance", assets=["AAPL"])


def test_yfinance_empty_download(monkeypatch):
    calls = {}

    def download(tickers, **kwargs):
        calls.update(kwargs, tickers=tickers)
        return pd.DataFrame()

    monkeypatch.setitem(sys.modules, "yfinance", types.SimpleNamespace(download=download))
    with pytest.raises(DataError, match="yfinance returned no prices for AAPL, MSFT"):
        load_prices("yfinance", assets=["AAPL", "MSFT"], start="2020-01-01", end="2020-12-31")
    assert calls["end"] == "2021-01-01"  # yfinance's end is exclusive
    assert calls["auto_adjust"] is True


def test_yfinance_close_prices_are_used(monkeypatch):
    index = pd.bdate_range("2024-01-01", periods=4)
    columns = pd.MultiIndex.from_product([["Close", "Open"], ["AAPL", "MSFT"]])
    frame = pd.DataFrame(np.arange(1.0, 17.0).reshape(4, 4), index=index, columns=columns)
    monkeypatch.setitem(sys.modules, "yfinance", types.SimpleNamespace(download=lambda tickers, **kw: frame))
    prices = load_prices("yfinance", assets=["MSFT", "AAPL"])
    assert list(prices.columns) == ["MSFT", "AAPL"]
    assert prices["AAPL"].tolist() == [1.0, 5.0, 9.0, 13.0]


# --------------------------------------------------------------------------- errors


def test_constants():
    assert SOURCES == ("sp500", "csv", "yfinance")
    assert FREQUENCIES == ("daily", "weekly", "monthly", "as_is")
    assert COVARIANCES == ("sample", "ledoit_wolf")
    assert issubclass(DataError, QPortfolioError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "bloomberg"}, r"unknown data.source 'bloomberg'; valid values: sp500, csv, yfinance"),
        ({"frequency": "hourly"}, r"unknown frequency 'hourly'; valid values: daily, weekly, monthly, as_is"),
        ({"covariance": "robust"}, r"unknown covariance 'robust'; valid values: sample, ledoit_wolf"),
    ],
)
def test_unknown_choices(kwargs, message):
    with pytest.raises(DataError, match=message):
        load_market(**kwargs)


def test_unknown_ticker_lists_available():
    with pytest.raises(DataError, match=r"unknown ticker 'XYZ' in data.assets; available .*: AAPL, AMD, BAC"):
        load_prices("sp500", assets=["AAPL", "XYZ"])
    with pytest.raises(DataError, match=r"unknown ticker 'msft' in data.assets \(did you mean 'MSFT'\?\)"):
        load_prices("sp500", assets=["msft"])


@pytest.mark.parametrize(
    ("assets", "message"),
    [
        ([], "data.assets is empty"),
        ("AAPL", "data.assets must be a list of ticker names, got 'AAPL'"),
        (["AAPL", "AAPL"], "ticker 'AAPL' appears twice in data.assets"),
    ],
)
def test_bad_asset_lists(assets, message):
    with pytest.raises(DataError, match=message):
        load_prices("sp500", assets=assets)


def test_window_errors():
    with pytest.raises(DataError, match="data.start 2021-01-01 is after data.end 2020-01-01"):
        load_prices("sp500", start="2021-01-01", end="2020-01-01")
    with pytest.raises(DataError, match="data.end '2020-02-30' is not a date"):
        load_prices("sp500", end="2020-02-30")
    with pytest.raises(DataError, match=r"only 0 price row\(s\) .* window 2030-01-01 to …; need at least 3"):
        load_prices("sp500", start="2030-01-01")
    with pytest.raises(DataError, match=r"only 2 price row\(s\) .* window 2020-01-02 to 2020-01-03"):
        load_prices("sp500", assets=["AAPL"], start="2020-01-02", end="2020-01-03")


def test_too_few_returns_after_resampling():
    with pytest.raises(
        DataError, match=r"only 1 monthly return\(s\) .*widen data.start/data.end or use a higher frequency"
    ):
        load_market(assets=["AAPL"], start="2020-01-01", end="2020-02-28", frequency="monthly")


def test_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"price file '.*nope\.csv' not found"):
        load_prices("csv", path=str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="data.path is required with data.source: csv"):
        load_prices("csv")
    with pytest.raises(DataError, match="data.path is only used with data.source: csv"):
        load_prices("sp500", path=str(tmp_path / "nope.csv"))


def test_csv_empty_file(tmp_path):
    path = write_csv(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match=r"cannot read price file '.*empty\.csv'"):
        load_prices("csv", path=str(path))


def test_csv_without_price_columns(tmp_path):
    path = write_csv(tmp_path / "dates.csv", "Date\n2024-01-02\n2024-01-03")
    with pytest.raises(DataError, match=r"price file '.*dates\.csv' has 1 column\(s\)"):
        load_prices("csv", path=str(path))


def test_csv_unparsable_date(tmp_path):
    path = write_csv(tmp_path / "bad.csv", "Date,X\n2024-01-02,1\nyesterday,2\n2024-01-04,3")
    with pytest.raises(DataError, match=r"unparsable date 'yesterday' in row 3 of price file '.*bad\.csv'"):
        load_prices("csv", path=str(path))


def test_csv_non_numeric_cell(tmp_path):
    path = write_csv(tmp_path / "bad.csv", "Date,X,Y\n2024-01-02,1,2\n2024-01-03,1,n/a?\n2024-01-04,3,4")
    with pytest.raises(
        DataError, match=r"non-numeric price 'n/a\?' for 'Y' on 2024-01-03 in price file '.*bad\.csv'"
    ):
        load_prices("csv", path=str(path))


def test_csv_duplicate_date(tmp_path):
    path = write_csv(tmp_path / "dup.csv", "Date,X\n2024-01-02,1\n2024-01-02,2\n2024-01-03,3")
    with pytest.raises(DataError, match="date 2024-01-02 appears twice"):
        load_prices("csv", path=str(path))


def test_missing_values_name_ticker_date_and_fix(tmp_path):
    text = (
        "Date,A,B\n2024-01-01,1,\n2024-01-02,1,\n2024-01-03,1,2\n2024-01-04,1,2\n"
        "2024-01-05,1,2\n2024-01-08,1,2"
    )
    path = str(write_csv(tmp_path / "gaps.csv", text))
    with pytest.raises(
        DataError,
        match=r"missing price for 'B' on 2024-01-01 .*set data.start to 2024-01-03 or later, "
        r"or drop 'B' from data.assets",
    ):
        load_prices("csv", path=path)
    # gap outside the window, or asset not requested: fine
    assert len(load_prices("csv", path=path, start="2024-01-03")) == 4
    assert len(load_prices("csv", assets=["A"], path=path)) == 6


def test_trailing_gap_suggests_earlier_end(tmp_path):
    path = write_csv(tmp_path / "tail.csv", "Date,A\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n2024-01-04,")
    with pytest.raises(DataError, match=r"missing price for 'A' on 2024-01-04 .*set data.end to 2024-01-03"):
        load_prices("csv", path=str(path))


def test_all_missing_column(tmp_path):
    path = write_csv(tmp_path / "none.csv", "Date,A,B\n2024-01-01,1,\n2024-01-02,2,\n2024-01-03,3,")
    with pytest.raises(DataError, match="no prices for 'B'"):
        load_prices("csv", path=str(path))


@pytest.mark.parametrize("bad", ["0", "-3.5"])
def test_non_positive_price(tmp_path, bad):
    path = write_csv(tmp_path / "neg.csv", f"Date,A\n2024-01-01,1\n2024-01-02,{bad}\n2024-01-03,3")
    with pytest.raises(
        DataError, match=rf"price {float(bad)!r} for 'A' on 2024-01-02 .*not a positive number"
    ):
        load_prices("csv", path=str(path))


def test_estimate_market_rejects_bad_frames(tiny):
    with pytest.raises(DataError, match="prices must be a DataFrame"):
        estimate_market(tiny["A"])
    with pytest.raises(DataError, match="ascending, unique dates"):
        estimate_market(tiny.iloc[::-1])
    gappy = tiny.copy()
    gappy.iloc[2, 1] = np.nan
    with pytest.raises(DataError, match="missing price for 'B' on 2024-01-04"):
        estimate_market(gappy)
    with pytest.raises(DataError, match=r"only 1 as_is return\(s\)"):
        estimate_market(tiny.iloc[:2], frequency="as_is")
