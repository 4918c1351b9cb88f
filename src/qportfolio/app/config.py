"""The experiment config: a YAML file validated against this schema; unknown keys are errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qportfolio.choices import (
    AerMethod,
    Algorithm,
    BacktestMethod,
    ConstraintEncoding,
    Covariance,
    DataSource,
    DDSequence,
    Entanglement,
    ExecutionMode,
    Frequency,
    IntegerEncoding,
    MarkowitzObjective,
    Mitigation,
    Mixer,
    Narrowing,
    Optimizer,
    Precision,
    Pretrain,
    ProblemKind,
    Search,
    TrainingObjective,
    VQEForm,
)
from qportfolio.backends import BACKENDS, HARDWARE_PREFIXES
from qportfolio.errors import ConfigError
from qportfolio.optimize import QuantumSolver

#: One source for every default a config and the Python API share.
DEFAULT = QuantumSolver()

DateLike = Union[dt.date, str, None]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True, allow_inf_nan=False)


class DataConfig(_Strict):
    source: DataSource = DataSource.SP500
    path: Optional[str] = None
    assets: Optional[list[str]] = None
    start: DateLike = None
    end: DateLike = None
    frequency: Frequency = Frequency.DAILY
    covariance: Covariance = Covariance.SAMPLE


PenaltyLike = Union[Literal["auto"], float, dict[str, Union[float, Literal["auto"]]]]
PenaltyChoice = Union[Literal["auto", "calibrated"], float, dict[str, Union[float, Literal["auto"]]]]


class ProblemConfig(_Strict):
    kind: ProblemKind = ProblemKind.INTEGER_SHARES
    budget: Optional[float] = Field(None, description="dollars (integer_shares)")
    min_return: Optional[float] = Field(None, description="expected dollar return per period (integer_shares)")
    constraint_encoding: ConstraintEncoding = DEFAULT.constraint_encoding
    penalty: PenaltyChoice = DEFAULT.penalty
    slack_resolution: PenaltyLike = DEFAULT.slack_resolution
    integer_encoding: IntegerEncoding = DEFAULT.integer_encoding
    max_shares: Union[int, list[int], None] = None
    num_assets: Optional[int] = Field(None, description="K, assets to select (selection)")
    risk_aversion: float = 1.0
    target_return: Optional[float] = Field(None, description="per-period return (markowitz)")
    allow_short: bool = False
    objective: MarkowitzObjective = Field(MarkowitzObjective.MIN_VARIANCE, description="markowitz objective")
    max_volatility: Optional[float] = Field(None, gt=0, description="σ₀ per period (markowitz max_return)")
    risk_free: float = Field(0.0, description="per-period risk-free return (markowitz max_sharpe)")
    baselines: bool = Field(True, description="run the classical baselines beside the exact answer")
    time_limit: float = Field(DEFAULT.time_limit, gt=0, description="seconds per classical solver (SCIP, tabu)")
    max_qubits: Optional[int] = Field(DEFAULT.max_qubits, ge=1, description="narrow share windows to fit (default: the simulator's limit)")
    narrowing: Narrowing = DEFAULT.narrowing

    @field_validator("narrowing", mode="before")
    @classmethod
    def _off_as_yaml_writes_it(cls, value):
        """``narrowing: off`` unquoted is YAML's false: the same choice."""
        return Narrowing.OFF.value if value is False else value

    @field_validator("penalty")
    @classmethod
    def _penalty_positive(cls, value):
        weights = value.items() if isinstance(value, dict) else [(None, value)]
        for name, weight in weights:
            if isinstance(weight, (int, float)) and not weight > 0:
                what = "must" if name is None else f"problem.penalty for {name} must"  # a mapping's error: whole
                raise ValueError(f"{what} be a positive number (or auto / calibrated)")
        return value


class SolverConfig(_Strict):
    algorithm: Algorithm = DEFAULT.algorithm
    reps: Optional[int] = Field(DEFAULT.reps, ge=1, description="QAOA layers p (None: the tool chooses)")
    optimizer: Union[Optimizer, Literal["auto"]] = DEFAULT.optimizer
    maxiter: Optional[int] = Field(DEFAULT.maxiter, ge=1, description="evaluation budget (None: the tool chooses)")
    objective: Union[TrainingObjective, Literal["auto"]] = DEFAULT.objective
    gibbs_eta: float = Field(DEFAULT.gibbs_eta, gt=0, description="Gibbs objective η, in units of the cost scale")
    search: Search = DEFAULT.search
    pretrain: Pretrain = DEFAULT.pretrain
    refine: int = Field(DEFAULT.refine, ge=0, description="evaluations on the target after pretraining")
    cvar_alpha: float = Field(DEFAULT.cvar_alpha, gt=0, le=1)
    shots: int = Field(DEFAULT.shots, ge=1)
    ansatz: VQEForm = DEFAULT.ansatz
    entanglement: Entanglement = DEFAULT.entanglement
    mixer: Union[Mixer, Literal["auto"]] = DEFAULT.mixer
    warm_start: Union[bool, Literal["auto"]] = DEFAULT.warm_start
    warm_start_epsilon: float = Field(DEFAULT.warm_start_epsilon, gt=0, lt=0.5)
    layerwise: bool = Field(DEFAULT.layerwise, description="grow the depth one layer at a time (INTERP)")
    multistart: int = Field(DEFAULT.multistart, ge=1, description="starts sharing the final depth's evaluation budget")
    initial_parameters: Optional[list[float]] = None
    grid: int = Field(DEFAULT.grid, ge=0, description="QAOA: scan a grid×grid of depth-1 angles first (0: off)")
    postprocess: bool = DEFAULT.postprocess


class BackendConfig(_Strict):
    name: str = DEFAULT.backend
    min_qubits: Optional[int] = Field(DEFAULT.min_qubits, ge=1, description="ibm:least_busy: smallest device")
    account: Optional[str] = Field(DEFAULT.account, description="name of a saved Qiskit account")
    channel: Optional[str] = DEFAULT.channel
    instance: Optional[str] = DEFAULT.instance
    connect_timeout: Optional[float] = Field(DEFAULT.connect_timeout, gt=0, description="seconds to reach the service")
    calibration_shots: Optional[int] = Field(DEFAULT.calibration_shots, ge=1,
                                             description="mthree calibration shots per circuit")
    aer_method: Optional[AerMethod] = DEFAULT.aer_method
    execution_mode: ExecutionMode = DEFAULT.execution_mode
    dynamical_decoupling: bool = DEFAULT.dynamical_decoupling
    dd_sequence: DDSequence = DEFAULT.dd_sequence
    twirling: bool = DEFAULT.twirling
    max_execution_time: Optional[int] = Field(DEFAULT.max_execution_time, ge=1, description="seconds per job")
    optimization_level: int = Field(DEFAULT.optimization_level, ge=0, le=3)
    seed_transpiler: Optional[int] = DEFAULT.seed_transpiler
    initial_layout: Optional[list[int]] = DEFAULT.initial_layout
    mitigation: Mitigation = DEFAULT.mitigation
    max_qpu_seconds: Optional[float] = Field(DEFAULT.max_qpu_seconds, gt=0, description="spending guard")
    precision: Precision = Field(DEFAULT.precision, description="exact backend's state")

    @field_validator("name")
    @classmethod
    def _known_backend(cls, name: str) -> str:
        family, _, device = name.partition(":")
        if name in ("exact", *BACKENDS) or (family in HARDWARE_PREFIXES and re.fullmatch(r"[A-Za-z0-9_]+", device)):
            return name
        raise ValueError(f"not a backend name: use exact, {', '.join(BACKENDS)}, aer_noisy:<fake device> "
                         "(e.g. aer_noisy:fake_fez), ibm_fake:<fake device>, ibm:<device> or ibm:least_busy")


class BacktestConfig(_Strict):
    """``qportfolio backtest``: walk forward through ``start … end``, re-solving every ``rebalance`` periods on
    the ``train`` periods before each rebalance date (see :mod:`qportfolio.app.backtest`)."""

    start: dt.date = Field(description="first rebalance: the first period on or after this date")
    end: Optional[dt.date] = Field(None, description="last date of the test period (default: the data's end)")
    train: int = Field(ge=2, description="returns (periods) in each rolling estimation window")
    rebalance: int = Field(1, ge=1, description="rebalance every k periods")
    methods: list[BacktestMethod] = Field(min_length=1)
    initial_capital: float = Field(10_000.0, gt=0, description="dollars")
    transaction_cost: float = Field(0.0, ge=0, description="basis points of the traded value")

    @field_validator("methods")
    @classmethod
    def _each_method_once(cls, methods: list) -> list:
        repeated = sorted({str(m) for m in methods if methods.count(m) > 1})
        if repeated:
            raise ValueError(f"{repeated[0]} is listed twice: list each method once")
        return methods

    @model_validator(mode="after")
    def _start_before_end(self):
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"backtest.end {self.end} is not after backtest.start {self.start}: swap or widen them")
        return self


class ExperimentConfig(_Strict):
    name: str = Field("experiment", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = DEFAULT.seed
    data: DataConfig = DataConfig()
    problem: ProblemConfig = ProblemConfig()
    solver: SolverConfig = SolverConfig()
    backend: BackendConfig = BackendConfig()
    backtest: Optional[BacktestConfig] = None

    @field_validator("seed")
    @classmethod
    def _seed_non_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be ≥ 0")
        return value

    def quantum_solver(self) -> QuantumSolver:
        """The solver this config describes: every ``solver.*`` and ``backend.*`` key, and the encoding keys
        of ``problem.*``."""
        p = self.problem
        encoding = {"constraint_encoding": p.constraint_encoding, "integer_encoding": p.integer_encoding,
                    "penalty": p.penalty, "slack_resolution": p.slack_resolution, "max_qubits": p.max_qubits,
                    "narrowing": p.narrowing, "time_limit": p.time_limit}
        backend = self.backend.model_dump()
        backend["backend"] = backend.pop("name")
        return QuantumSolver(**self.solver.model_dump(), **encoding, **backend, seed=self.seed)

    def backend_options(self) -> dict:
        """The backend options that differ from their defaults, as keywords for ``backends.make_backend``."""
        return self.quantum_solver().backend_options()

    def resolved(self) -> dict:
        """The config with every default filled in, JSON/YAML-ready (no ``backtest`` key when it has none, so a
        run's config and its digest stay as they were)."""
        resolved = json.loads(self.model_dump_json())
        if resolved.get("backtest") is None:
            resolved.pop("backtest", None)
        return resolved

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode()).hexdigest()


def _describe(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if not str(part).startswith(("literal[", "function-")))
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{where}': remove it or check its spelling (see the README's config reference)"
    message = first["msg"].replace("Input should be", "should be").replace("Value error, ", "")
    if first["type"] == "missing":
        return f"{source}: {where} is required (see the README's config reference)"
    if first["type"] == "value_error" and isinstance(first.get("input"), dict):  # a whole section's check
        return f"{source}: {message}"
    return f"{source}: {where}: {message} (got {first.get('input')!r})"


def parse_config(raw: dict, source: str = "config") -> ExperimentConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys (name, data, problem, solver, backend)")
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last silently)
    and reporting an impossible date (2022-02-30) as a mistake at its line, not a crash."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as error:
            raise yaml.constructor.ConstructorError(None, None, f"{node.value!r} is not a date ({error})",
                                                    node.start_mark) from None


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:map", _UniqueKeyLoader.construct_mapping)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _UniqueKeyLoader.construct_yaml_timestamp)


def read_yaml(path: str | Path, what: str = "config"):
    """A YAML file's content, or a one-line :class:`ConfigError` (missing, a folder, not UTF-8, bad syntax, a
    duplicate key, an impossible date)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder, not a file: pass the path of a YAML file such as "
                          "configs/quickstart.yaml")
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist: pass the path of a YAML file such as "
                          "configs/quickstart.yaml")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text (byte {error.start}): save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path} ({error.strerror})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None)
        if isinstance(error, yaml.constructor.ConstructorError) and problem:
            raise ConfigError(f"{path}{where}: {problem}: fix it") from None
        raise ConfigError(f"{path}: not valid YAML{where}: fix the syntax") from None


def load_config(path: str | Path, overrides: dict | None = None) -> ExperimentConfig:
    """Read and validate a YAML config; ``overrides`` (e.g. ``{"seed": 3}``) replace top-level keys."""
    raw = read_yaml(path)
    raw = raw or {}
    if overrides and isinstance(raw, dict):
        raw.update({k: v for k, v in overrides.items() if v is not None})
    _data_path_beside_config(raw, Path(path))
    return parse_config(raw, str(path))


def _data_path_beside_config(raw, path: Path) -> None:
    """A relative ``data.path`` is read from the current folder, and when it is not there, from the config
    file's folder (so that a shipped config runs from anywhere)."""
    data = raw.get("data") if isinstance(raw, dict) else None
    given = data.get("path") if isinstance(data, dict) else None
    if not isinstance(given, str) or Path(given).is_absolute() or Path(given).exists():
        return
    beside = path.parent / given
    if beside.is_file():
        data["path"] = str(beside)
