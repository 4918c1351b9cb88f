"""Errors a user can cause and fix. The CLI prints them in one line and exits 2."""


class QPortfolioError(Exception):
    """Base class: the message says what was wrong and what to do."""


class DataError(QPortfolioError):
    """Prices or tickers that cannot be turned into market estimates."""


class ProblemError(QPortfolioError):
    """A portfolio problem whose parameters are inconsistent or infeasible."""


class ConfigError(QPortfolioError):
    """An experiment config that does not validate."""


class ResourceError(QPortfolioError):
    """A computation that would not fit in this machine's memory or the configured limits."""


class RunFolderError(QPortfolioError):
    """A run folder whose result.json (or config.yaml) is missing or unreadable."""


class BackendError(QPortfolioError):
    """A quantum backend that cannot be reached, configured or used as asked."""
