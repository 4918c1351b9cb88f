"""The experiment config: a YAML file validated against this schema; unknown keys are errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qportfolio.errors import ConfigError

DateLike = Union[dt.date, str, None]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    source: Literal["sp500", "csv", "yfinance"] = "sp500"
    path: Optional[str] = None
    assets: Optional[list[str]] = None
    start: DateLike = None
    end: DateLike = None
    frequency: Literal["daily", "weekly", "monthly", "as_is"] = "daily"
    covariance: Literal["sample", "ledoit_wolf"] = "sample"


PenaltyLike = Union[Literal["auto"], float, dict[str, Union[float, Literal["auto"]]]]
PenaltyChoice = Union[Literal["auto", "calibrated"], float, dict[str, Union[float, Literal["auto"]]]]


class ProblemConfig(_Strict):
    kind: Literal["integer_shares", "selection", "markowitz"] = "integer_shares"
    budget: Optional[float] = Field(None, description="dollars (integer_shares)")
    min_return: Optional[float] = Field(None, description="expected dollar return per period (integer_shares)")
    constraint_encoding: Literal["slack", "squared"] = "slack"
    penalty: PenaltyChoice = "auto"
    slack_resolution: PenaltyLike = "auto"
    integer_encoding: Literal["bounded", "binary"] = "bounded"
    max_shares: Union[int, list[int], None] = None
    num_assets: Optional[int] = Field(None, description="K, assets to select (selection)")
    risk_aversion: float = 1.0
    target_return: Optional[float] = Field(None, description="per-period return (markowitz)")
    allow_short: bool = False
    objective: Literal["min_variance", "max_return", "max_sharpe", "utility_variance", "utility_volatility"] = Field(
        "min_variance", description="markowitz objective")
    max_volatility: Optional[float] = Field(None, gt=0, description="σ₀ per period (markowitz max_return)")
    risk_free: float = Field(0.0, description="per-period risk-free return (markowitz max_sharpe)")
    baselines: bool = Field(True, description="run the classical baselines beside the exact answer")
    time_limit: float = Field(60.0, gt=0, description="seconds per classical solver (SCIP, tabu)")
    max_qubits: Optional[int] = Field(None, ge=1, description="narrow share windows to fit (default: the simulator's limit)")
    narrowing: Literal["auto", "off"] = "auto"


class SolverConfig(_Strict):
    algorithm: Literal["qaoa", "vqe"] = "qaoa"
    reps: int = Field(2, ge=1)
    optimizer: Literal["cobyla", "nelder_mead", "spsa", "powell", "l_bfgs_b"] = "cobyla"
    maxiter: int = Field(100, ge=1)
    objective: Literal["expectation", "cvar"] = "expectation"
    cvar_alpha: float = Field(1.0, gt=0, le=1)
    shots: int = Field(4096, ge=1)
    ansatz: Literal["real_amplitudes", "efficient_su2"] = "real_amplitudes"
    entanglement: Literal["linear", "reverse_linear", "circular", "full", "pairwise", "sca"] = "linear"
    mixer: Literal["x", "xy_ring", "xy_complete"] = "x"
    warm_start: bool = False
    warm_start_epsilon: float = Field(0.25, gt=0, lt=0.5)
    layerwise: bool = Field(False, description="grow the depth one layer at a time (INTERP)")
    multistart: int = Field(1, ge=1, description="starts sharing the final depth's evaluation budget")
    initial_parameters: Optional[list[float]] = None
    grid: int = Field(0, ge=0, description="QAOA: scan a grid×grid of depth-1 angles first (0: off)")
    postprocess: bool = True


class BackendConfig(_Strict):
    name: str = Field("aer_statevector", pattern=r"^(aer_statevector|aer_shots|exact|(aer_noisy|ibm_fake|ibm):[A-Za-z0-9_]+)$")
    min_qubits: Optional[int] = Field(None, ge=1, description="ibm:least_busy: smallest device")
    account: Optional[str] = Field(None, description="name of a saved Qiskit account")
    channel: Optional[str] = None
    instance: Optional[str] = None
    connect_timeout: Optional[float] = Field(None, gt=0, description="seconds to reach the service")
    calibration_shots: Optional[int] = Field(None, ge=1, description="mthree calibration shots per circuit")
    aer_method: Optional[Literal["auto", "density_matrix", "statevector"]] = None
    execution_mode: Literal["job", "batch", "session"] = "batch"
    dynamical_decoupling: bool = False
    dd_sequence: Literal["XX", "XpXm", "XY4"] = "XY4"
    twirling: bool = False
    max_execution_time: Optional[int] = Field(None, ge=1, description="seconds per job")
    optimization_level: int = Field(2, ge=0, le=3)
    seed_transpiler: Optional[int] = None
    initial_layout: Optional[list[int]] = None
    mitigation: Literal["none", "mthree"] = "none"
    max_qpu_seconds: Optional[float] = Field(None, gt=0, description="spending guard")
    precision: Literal["complex128", "complex64"] = Field("complex128", description="exact backend's state")


class ExperimentConfig(_Strict):
    name: str = Field("experiment", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 7
    data: DataConfig = DataConfig()
    problem: ProblemConfig = ProblemConfig()
    solver: SolverConfig = SolverConfig()
    backend: BackendConfig = BackendConfig()

    @field_validator("seed")
    @classmethod
    def _seed_non_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be ≥ 0")
        return value

    def backend_options(self) -> dict:
        """The backend options that differ from their defaults, as keywords for ``backends.make_backend``
        (so a simulator is never handed hardware options it would reject); hardware transpiles with the
        run's seed unless ``seed_transpiler`` is given."""
        defaults = BackendConfig().model_dump()
        options = {key: value for key, value in self.backend.model_dump(exclude={"name", "max_qpu_seconds"}).items()
                   if value != defaults[key]}
        if self.backend.name.split(":")[0] in ("ibm", "ibm_fake", "aer_noisy"):
            options.setdefault("seed_transpiler", self.seed)
        return options

    def resolved(self) -> dict:
        """The config with every default filled in, JSON/YAML-ready."""
        return json.loads(self.model_dump_json())

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode()).hexdigest()


def _describe(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if not str(part).startswith(("literal[", "function-")))
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{where}': remove it or check its spelling (see the README's config reference)"
    message = first["msg"].replace("Input should be", "should be").replace("Value error, ", "")
    return f"{source}: {where}: {message} (got {first.get('input')!r})"


def parse_config(raw: dict, source: str = "config") -> ExperimentConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys (name, data, problem, solver, backend)")
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


def load_config(path: str | Path, overrides: dict | None = None) -> ExperimentConfig:
    """Read and validate a YAML config; ``overrides`` (e.g. ``{"seed": 3}``) replace top-level keys."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist: pass the path of a YAML file such as configs/quickstart.yaml")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: fix the syntax") from None
    raw = raw or {}
    if overrides and isinstance(raw, dict):
        raw.update({k: v for k, v in overrides.items() if v is not None})
    return parse_config(raw, str(path))
