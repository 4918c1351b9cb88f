"""A config's instance: its data section → market estimates → the problem it describes."""

from __future__ import annotations

from qportfolio.app.config import ExperimentConfig
import pandas as pd

from qportfolio.data import MarketData, load_market, load_prices
from qportfolio.problems import IntegerSharesProblem, MarkowitzProblem, PortfolioProblem, SelectionProblem


def load_config_market(config: ExperimentConfig) -> MarketData:
    """The market estimates of the config's ``data`` section."""
    d = config.data
    return load_market(d.source, d.assets, d.path, d.start, d.end, d.frequency, d.covariance)


def load_config_prices(config: ExperimentConfig) -> pd.DataFrame:
    """The price table of the config's ``data`` section (its window, its assets)."""
    d = config.data
    return load_prices(d.source, d.assets, d.path, d.start, d.end)


def build_problem(config: ExperimentConfig, market: MarketData) -> PortfolioProblem:
    """The problem the config describes, on the market estimates."""
    p = config.problem
    if p.kind == "integer_shares":
        return IntegerSharesProblem.from_market(market, p.budget, p.min_return, p.max_shares, p.risk_aversion)
    if p.kind == "selection":
        return SelectionProblem.from_market(market, p.num_assets, p.risk_aversion)
    return MarkowitzProblem.from_market(market, p.objective, p.target_return, p.allow_short, p.max_volatility,
                                       p.risk_free, p.risk_aversion)


def build_problem_from_config(config: ExperimentConfig) -> PortfolioProblem:
    return build_problem(config, load_config_market(config))
