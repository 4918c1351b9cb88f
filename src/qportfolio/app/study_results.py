"""A study's results on disk: one row per point, kept as each point finishes, and the summary page.

``DIR/<name>/points.jsonl`` gets one line per finished point (append-only: an interrupt loses at most the
points in flight); after each line, ``results.parquet`` and ``results.csv`` are rewritten atomically from it,
the latest line of each config hash winning (a retried point replaces its failure). ``summary.md`` holds
median [q1–q3] tables over seeds and the figures in ``figures/``, drawn with pandas and matplotlib.
"""

from __future__ import annotations

import io
import numbers
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from qportfolio.app.plots import save_figure
from qportfolio.app.results import append_jsonl, read_jsonl, write_atomic

METRICS = ["p_optimal", "feasible_fraction", "approximation_ratio", "lift", "reps", "quantum_objective", "exact_objective", "gap",
           "qubits", "assets", "evaluations", "seconds", "backend"]
SEED = "seed"
#: The summary's columns: metric → heading.
SUMMARISED = {"p_optimal": "P(optimum)", "feasible_fraction": "feasible fraction",
              "approximation_ratio": "approximation ratio", "lift": "lift", "evaluations": "evaluations",
              "seconds": "seconds"}


def cell(value) -> str | int | float:
    """A varied value as stored in the table: numbers as numbers, lists as ``[a, b]``, the rest as text."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(cell(v)) for v in value) + "]"
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return value
    return str(value)


class StudyTable:
    """The rows of one study's points (``study``: its ``points`` and ``varied`` keys)."""

    def __init__(self, folder: Path, study):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.study = study
        self.log_path = self.folder / "points.jsonl"
        self.parquet_path = self.folder / "results.parquet"
        self.csv_path = self.folder / "results.csv"
        self.latest = {record["config_hash"]: record for record in read_jsonl(self.log_path)
                       if "config_hash" in record}

    def status(self, config_hash: str) -> str | None:
        return self.latest.get(config_hash, {}).get("status")

    def record(self, point, row: dict) -> None:
        """Keep a finished point's row: one line appended, then the tables rewritten."""
        record = {"point": point.index, "config_hash": point.config_hash, **row}
        append_jsonl(self.log_path, record)
        self.latest[point.config_hash] = record
        self.write_tables()

    def rows(self) -> list[dict]:
        """The current study's rows in point order (point ids and varied values from the study as it is now)."""
        rows = []
        for point in self.study.points:
            record = self.latest.get(point.config_hash)
            if record is None:
                continue
            rows.append({"point": point.index, "config_hash": point.config_hash,
                         **{key: cell(value) for key, value in point.values.items()},
                         "status": record.get("status"), "error": record.get("error"),
                         **{metric: record.get(metric) for metric in METRICS}})
        return rows

    def frame(self) -> pd.DataFrame:
        columns = ["point", "config_hash", *self.study.varied, "status", "error", *METRICS]
        frame = pd.DataFrame(self.rows(), columns=columns)
        for key in self.study.varied:  # a column mixing numbers and text is stored as text
            if frame[key].map(lambda v: isinstance(v, str)).any():
                frame[key] = frame[key].astype(str)
        return frame

    def write_tables(self) -> None:
        frame = self.frame()
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        write_atomic(self.parquet_path, buffer.getvalue())
        write_atomic(self.csv_path, frame.to_csv(index=False))


def read_results(folder: str | Path) -> pd.DataFrame:
    """A study's ``results.parquet`` as a DataFrame."""
    return pd.read_parquet(Path(folder) / "results.parquet")


# ---------------------------------------------------------------------- summary


def spread(values) -> str:
    """``median [q1–q3]`` of the finite values, or — when there are none."""
    values = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    if values.empty:
        return "—"
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    return f"{q2:.3f} [{q1:.3f}–{q3:.3f}]"


def markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def summary_table(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per combination of ``keys`` (every varied key but the seed): runs and median [q1–q3] of each
    metric over the rest."""
    complete = frame[frame.status == "complete"]
    groups = frame.groupby(keys, sort=True, dropna=False) if keys else [((), frame)]
    rows = []
    for values, group in groups:
        values = values if isinstance(values, tuple) else (values,)
        done = complete.loc[complete.index.intersection(group.index)]
        rows.append({**dict(zip(keys, values)), "runs": f"{len(done)}/{len(group)}",
                     **{heading: spread(done[metric]) for metric, heading in SUMMARISED.items()}})
    return pd.DataFrame(rows)


def pivot(frame: pd.DataFrame, rows: str, columns: str, metric: str = "p_optimal") -> pd.DataFrame:
    """``metric`` as median [q1–q3] with ``rows`` down and ``columns`` across."""
    complete = frame[frame.status == "complete"]
    table = complete.pivot_table(index=rows, columns=columns, values=metric, aggfunc=spread)
    return table.reset_index().rename_axis(None, axis=1)


def write_summary(table: StudyTable) -> Path:
    """``summary.md`` and its figures for the table's current rows."""
    frame = table.frame()
    study = table.study
    keys = [k for k in study.varied if k != SEED and frame[k].nunique() > 1]  # what the rows differ in
    complete = frame[frame.status == "complete"]
    over = "over seeds" if SEED in study.varied else "per point"
    lines = [f"# Study {study.name}", "",
             f"{len(frame)}/{len(study.points)} points recorded: {len(complete)} complete, "
             f"{int((frame.status == 'failed').sum())} failed. Varied: {', '.join(f'`{k}`' for k in study.varied)}. "
             f"Cells: median [q1–q3] {over}; P(optimum) is the probability mass of the final samples on the exact "
             "optimum.", "", f"## Results ({over})", "", markdown(summary_table(frame, keys)), ""]
    if len(keys) >= 2 and not complete.empty:
        lines += [f"## P(optimum): `{keys[0]}` down, `{keys[1]}` across", "",
                  markdown(pivot(frame, keys[0], keys[1])), ""]
    figures = draw_figures(complete, table.folder / "figures")
    if figures:
        lines += ["## Figures", "", *[f"![{path.stem}](figures/{path.name})" for path in figures], ""]
    failed = frame[frame.status == "failed"]
    if not failed.empty:
        lines += ["## Failed points", "", markdown(failed[["point", *study.varied, "error"]]), ""]
    path = table.folder / "summary.md"
    write_atomic(path, "\n".join(lines))
    return path


def _median_with_quartiles(axis, frame: pd.DataFrame, x: str, y: str, label: str | None = None) -> None:
    grouped = frame.groupby(x)[y]
    median, q1, q3 = grouped.median(), grouped.quantile(0.25), grouped.quantile(0.75)
    axis.errorbar(median.index, median.values, yerr=[median - q1, q3 - median], marker="o", capsize=3, label=label)


def draw_figures(complete: pd.DataFrame, folder: Path) -> list[Path]:
    """The figures whose columns the study has: P(optimum) against depth per mixer (``solver.reps``),
    approximation ratio against assets (when the number of assets varies), seconds against qubits."""
    drawn = []
    if complete.empty:
        return drawn
    if "solver.reps" in complete:
        figure, axis = plt.subplots(figsize=(6, 3.8))
        mixers = complete.groupby("solver.mixer") if "solver.mixer" in complete else [(None, complete)]
        for mixer, group in mixers:
            _median_with_quartiles(axis, group, "solver.reps", "p_optimal", mixer)
        axis.set_xlabel("QAOA depth p")
        axis.set_ylabel("P(optimum), median and quartiles")
        axis.set_xticks(sorted(complete["solver.reps"].unique()))
        if "solver.mixer" in complete:
            axis.legend(title="mixer")
        drawn.append(save_figure(figure, folder / "p_optimal_by_depth.png"))
    if complete["assets"].nunique() > 1:
        figure, axis = plt.subplots(figsize=(6, 3.8))
        _median_with_quartiles(axis, complete.astype({"assets": int}), "assets", "approximation_ratio")
        axis.set_xlabel("assets N")
        axis.set_ylabel("approximation ratio")
        drawn.append(save_figure(figure, folder / "approximation_ratio_by_assets.png"))
    figure, axis = plt.subplots(figsize=(6, 3.8))
    axis.scatter(complete["qubits"], complete["seconds"], alpha=0.7)
    axis.set_xlabel("qubits")
    axis.set_ylabel("seconds per point")
    axis.set_yscale("log")
    drawn.append(save_figure(figure, folder / "seconds_by_qubits.png"))
    return drawn
