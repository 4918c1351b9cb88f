"""The run folder: created once and never reused, every file written atomically."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from qportfolio.errors import RunFolderError


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
