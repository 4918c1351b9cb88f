"""The run folder: created once and never reused, every file written atomically."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from qportfolio.errors import RunFolderError
from qportfolio.evaluation import SampleTable
from qportfolio.optimize import Evaluation


def new_run_folder(parent: str | Path, name: str, now: dt.datetime | None = None) -> Path:
    """``parent/<name>-<UTC timestamp>``, with ``-2``, ``-3``… if that exists: never another run's folder."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        folder = parent / (f"{name}-{stamp}" if attempt == 1 else f"{name}-{stamp}-{attempt}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new run folder under {parent}")


def _default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, mode) as stream:
            stream.write(data)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, payload: dict) -> None:
    write_atomic(path, json.dumps(payload, indent=2, default=_default, allow_nan=False) + "\n")


def json_safe(value):
    """Replace non-finite floats by None so the result stays valid JSON."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def result_path(run_dir: str | Path) -> Path:
    path = Path(run_dir)
    return path if path.name == "result.json" else path / "result.json"


def load_result(run_dir: str | Path) -> dict:
    """A run's result.json as a dict, or a one-line :class:`RunFolderError`."""
    path = result_path(run_dir)
    if not path.is_file():
        raise RunFolderError(f"{path} does not exist: pass a run folder written by `qportfolio run` or "
                             "`qportfolio baseline`")
    try:
        result = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(f"{path} is not readable JSON ({type(error).__name__}): the run may have been cut "
                             "short; run it again") from None
    if not isinstance(result, dict) or not isinstance(result.get("solutions", {}), dict):
        raise RunFolderError(f"{path} is not a qportfolio result (no solutions mapping): pass a run folder")
    return result


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file (``history.jsonl``, ``jobs.jsonl``); a line cut short by an
    interruption, or otherwise unreadable, is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def append_jsonl(path: Path, record: dict) -> None:
    """Append one record as a line (written as it happens, so an interrupted run keeps it)."""
    with open(path, "a") as handle:
        handle.write(json.dumps(record, default=str) + "\n")


def load_history(path: Path):
    """The evaluations recorded in a history file."""
    history = []
    for record in read_jsonl(path):
        try:
            history.append(Evaluation(**record))
        except TypeError:
            continue
    return history


def write_circuit(circuit, stem: Path) -> None:
    """The circuit as QPY (exact, reloadable) and OpenQASM 3 (readable, portable)."""
    from qiskit import qasm3, qpy

    buffer = io.BytesIO()
    qpy.dump(circuit, buffer)
    write_atomic(Path(f"{stem}.qpy"), buffer.getvalue())
    write_atomic(Path(f"{stem}.qasm"), qasm3.dumps(circuit))


def samples_csv(problem, table: SampleTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["bitstring", "probability", "count", *problem.tickers, "objective", "variance",
                     "expected_return", "cost", "feasible", "qubo_energy"])
    e = table.evaluation
    for k, label in enumerate(table.bitstrings()):
        count = "" if table.shots is None else int(round(table.probabilities[k] * table.shots))
        writer.writerow([label, f"{table.probabilities[k]:.8g}", count, *[int(v) for v in table.allocations[k]],
                         f"{e.objective[k]:.10g}", f"{e.variance[k]:.10g}", f"{e.expected_return[k]:.10g}",
                         f"{e.cost[k]:.10g}", bool(e.feasible[k]), f"{table.qubo_energies[k]:.10g}"])
    return buffer.getvalue()
