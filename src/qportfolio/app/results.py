"""The run folder: created once and never reused, every file written atomically."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
import uuid
from pathlib import Path

import numpy as np

from qportfolio.errors import RunFolderError
from qportfolio.evaluation import SampleTable
from qportfolio.optimize import OptimizerCall


def new_run_folder(parent: str | Path, name: str, now: dt.datetime | None = None) -> Path:
    """``parent/<name>-<UTC timestamp>``, with ``-2``, ``-3``… if that exists: never another run's folder."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    parent = check_output_folder(parent)
    for attempt in range(1, 1000):
        folder = parent / (f"{name}-{stamp}" if attempt == 1 else f"{name}-{stamp}-{attempt}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
        except OSError as error:
            raise RunFolderError(f"cannot create a run folder under {parent} ({error.strerror}): pass --out a "
                                 "folder you can write to") from None
    raise RunFolderError(f"could not create a new run folder under {parent}: pass another --out")


def check_output_folder(folder: str | Path, option: str = "--out") -> Path:
    """``folder``, created if needed, once it is known to be a folder this process can write to; else a
    one-line :class:`RunFolderError` (a file, a path under a file, ``/dev/null``, no permission)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunFolderError(f"{option} {folder} is a file, not a folder: pass a folder") from None
    except NotADirectoryError:
        raise RunFolderError(f"{option} {folder} is under a file, not a folder: pass a folder") from None
    except OSError as error:
        raise RunFolderError(f"cannot create {option} {folder} ({error.strerror}): pass a folder you can write "
                             "to") from None
    if not folder.is_dir():
        raise RunFolderError(f"{option} {folder} is not a folder: pass a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RunFolderError(f"{option} {folder} is not writable: pass a folder you can write to")
    return folder


def check_output_file(path: str | Path, option: str) -> Path:
    """``path``, once its folder is known to be writable (created if needed) and it is not a folder."""
    path = Path(path)
    blocking = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        raise RunFolderError(f"{option} {path} is under a file ({blocking}), not a folder: pass another path")
    check_output_folder(path.parent, f"the folder of {option}")
    if path.is_dir():
        raise RunFolderError(f"{option} {path} is a folder: pass a file name such as {path / 'figure.png'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise RunFolderError(f"{option} {path} is not writable: pass another file")
    return path


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
    """Append one record as a line (written as it happens, so an interrupted run keeps it). A line an
    interrupted process left cut short is closed first, so it never swallows this record."""
    line = json.dumps(record, default=str) + "\n"
    with open(path, "ab+") as handle:
        if handle.seek(0, os.SEEK_END) > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = "\n" + line
        handle.write(line.encode())
        handle.flush()


def load_history(path: Path):
    """The evaluations recorded in a history file."""
    history = []
    for record in read_jsonl(path):
        try:
            history.append(OptimizerCall(**record))
        except TypeError:
            continue
    return history


def write_circuit(circuit, stem: Path) -> None:
    """The circuit as QPY (exact, reloadable) and OpenQASM 3 (readable, portable)."""
    from qiskit import qasm3, qpy

    buffer = io.BytesIO()
    qpy.dump(circuit, buffer)
    write_atomic(Path(f"{stem}.qpy"), _stable_parameter_ids(circuit, buffer.getvalue()))
    write_atomic(Path(f"{stem}.qasm"), qasm3.dumps(circuit))


def _stable_parameter_ids(circuit, data: bytes) -> bytes:
    """QPY bytes with each parameter's random UUID replaced by one derived from its name (a vector's elements
    keep consecutive ids from their vector's), so the same circuit gives the same file on every call."""
    for parameter in circuit.parameters:
        vector = getattr(parameter, "vector", None)
        if vector is not None:
            root = uuid.uuid5(uuid.NAMESPACE_URL, f"qportfolio:vector:{vector.name}").int
            stable = uuid.UUID(int=(root + parameter.index) % 2**128)
        else:
            stable = uuid.uuid5(uuid.NAMESPACE_URL, f"qportfolio:parameter:{parameter.name}")
        data = data.replace(parameter.uuid.bytes, stable.bytes)
    return data


def samples_csv(problem, table: SampleTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["bitstring", "probability", "count", *problem.tickers, "objective", "variance",
                     "expected_return", "cost", "feasible", "qubo_energy"])
    e = table.evaluation
    probabilities = table.probabilities.tolist()
    counts = ([""] * len(probabilities) if table.shots is None
              else np.rint(table.probabilities * table.shots).astype(np.int64).tolist())

    def text(values, digits: int) -> list[str]:
        return [f"{v:.{digits}g}" for v in np.asarray(values, dtype=float).tolist()]

    writer.writerows(
        [label, probability, count, *allocation, objective, variance, expected, cost, feasible, energy]
        for label, probability, count, allocation, objective, variance, expected, cost, feasible, energy in zip(
            table.bitstrings(), text(probabilities, 8), counts, np.asarray(table.allocations).astype(np.int64).tolist(),
            text(e.objective, 10), text(e.variance, 10), text(e.expected_return, 10), text(e.cost, 10),
            np.asarray(e.feasible, dtype=bool).tolist(), text(table.qubo_energies, 10)))
    return buffer.getvalue()
