"""The README is short and true: its Python snippet and every command whose output it quotes are run here, and
the figures it quotes are checked against what they print now.

Figures that come out of an optimizer (P(optimum), feasible fraction, approximation ratio, lift) are checked to
a tolerance: the optimizer's path depends on the last bits of the energies, so another build of a numerical
package moves them in the second or third decimal (the README says so). Everything discrete (allocations,
qubits, objectives of an allocation, counts) and every classical figure must match to the printed digits.
"""

import ast
import contextlib
import csv
import io
import json
import re
from pathlib import Path

import pytest
import yaml

from qportfolio.app.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PROSE = " ".join(README.split())  # wrapped lines joined, so a quoted sentence is one string
PROBABILITY_TOLERANCE = 0.03  # absolute, for sampled probabilities (see the module docstring)
LIFT_TOLERANCE = 0.05  # relative: lift is P(optimum) over a fixed uniform probability
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def quoted(pattern: str) -> re.Match:
    """The README's sentence matching ``pattern`` (whitespace-normalised), or a failure saying it is gone."""
    found = re.search(pattern, PROSE)
    assert found, f"the README no longer quotes {pattern!r}: update it and this test together"
    return found


def fenced_blocks(text: str, info: str = "") -> list[str]:
    """The contents of the ```-fenced blocks whose info string is ``info``."""
    return re.findall(rf"^```{re.escape(info)}\n(.*?)^```$", text, flags=re.M | re.S)


def shell_blocks(text: str) -> list[tuple[list[str], list[str]]]:
    """Every quoted command output: a fenced block whose first line is ``$ qportfolio …``; (argv, lines)."""
    blocks = []
    for block in fenced_blocks(text):
        first, *rest = block.rstrip("\n").split("\n")
        if first.startswith("$ qportfolio "):
            blocks.append((first[len("$ qportfolio "):].split(), rest))
    return blocks


def tolerance(label: str, index: int) -> tuple[float, float]:
    """(absolute, relative) tolerance for the ``index``-th number on a line starting with ``label``."""
    if label in ("p_optimal", "feasible_fraction", "approximation_ratio"):
        return PROBABILITY_TOLERANCE, 0.0
    if label == "lift" and index == 0:
        return 0.0, LIFT_TOLERANCE
    return 0.0, 0.0


def same_line(quoted_line: str, printed_line: str) -> bool:
    """The printed line has the quoted line's words, and its numbers to the printed digits (or the tolerance)."""
    label = quoted_line.split()[0] if quoted_line.split() else ""
    if label in ("time", "run"):  # wall time and run folder name change with every run
        return printed_line.split()[:1] == [label]
    if NUMBER.sub("#", quoted_line).split() != NUMBER.sub("#", printed_line).split():
        return False
    numbers = zip(NUMBER.findall(quoted_line), NUMBER.findall(printed_line))
    for index, (want, got) in enumerate(numbers):
        absolute, relative = tolerance(label, index)
        if absolute == relative == 0.0:
            if want != got:
                return False
        elif float(got.replace(",", "")) != pytest.approx(float(want.replace(",", "")), abs=absolute, rel=relative):
            return False
    return True


def check_quoted_output(quoted_lines: list[str], printed: str) -> None:
    """Each quoted line matches a printed line, in order (a quote may leave lines out)."""
    printed_lines = [line for line in printed.splitlines() if line.strip()]
    position = 0
    for line in (line for line in quoted_lines if line.strip()):
        while position < len(printed_lines) and not same_line(line, printed_lines[position]):
            position += 1
        assert position < len(printed_lines), f"quoted line not printed (in order): {line!r}\nprinted:\n{printed}"
        position += 1


def run_quoted(argv: list[str], tmp_path, capsys) -> str:
    """Run a quoted ``qportfolio`` command in-process (outputs into ``tmp_path``) and return its stdout."""
    if argv[0] in ("run", "baseline", "backtest") and "--dry-run" not in argv:
        argv = [*argv, "--out", str(tmp_path)]
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        assert main(argv) == 0
    return capsys.readouterr().out


def test_readme_is_at_most_400_lines():
    assert len(README.splitlines()) <= 400


def test_python_snippet_runs_and_prints_what_its_comments_say():
    (snippet,) = fenced_blocks(README, "python")
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # the snippet as a user pastes it
    checked = 0
    for line in snippet.splitlines():
        code, _, comment = line.partition("#")
        comment = comment.strip()
        if not comment or "=" in code.replace("==", "") or not re.match(r"[{\[\d]", comment):
            continue  # only bare expressions whose comment starts with a value
        value = eval(code.strip(), namespace)
        literal = ast.literal_eval(comment if comment[0] in "{[" else comment.split(":")[0])
        if isinstance(literal, dict):
            assert value == literal, line
        else:  # sampled probabilities: the tolerance of the module docstring
            literal = literal if isinstance(literal, tuple) else (literal,)
            value = value if isinstance(value, tuple) else (value,)
            assert value == pytest.approx(literal, abs=PROBABILITY_TOLERANCE), line
        checked += 1
    assert checked >= 2  # the allocation and the probabilities


def quoted_outputs():
    """Every quoted ``$ qportfolio …`` output of the README and of the pages it sends readers to for one."""
    pages = ["README.md", "results/benchmarks/backtest.md"]
    return [pytest.param(argv, lines, id=" ".join(argv),
                         marks=[pytest.mark.slow] if argv[0] == "backtest" else [])
            for page in pages for argv, lines in shell_blocks((ROOT / page).read_text())]


@pytest.fixture(scope="module")
def backtest(tmp_path_factory):
    """(run folder parent, stdout) of the backtest ``results/benchmarks/backtest.md`` quotes, run once here."""
    (argv, _), = shell_blocks((ROOT / "results/benchmarks/backtest.md").read_text())
    out, printed = tmp_path_factory.mktemp("backtest"), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.chdir(ROOT)
        assert main([*argv, "--out", str(out)]) == 0
    return out, printed.getvalue()


@pytest.mark.parametrize("argv, lines", quoted_outputs())
def test_quoted_command_prints_what_is_quoted(argv, lines, tmp_path, capsys, request):
    if argv[0] == "backtest":  # the one backtest of this module, shared with the test of its figures
        assert argv == ["backtest", "configs/backtest.yaml"]
        printed = request.getfixturevalue("backtest")[1]
    else:
        printed = run_quoted(argv, tmp_path, capsys)
    check_quoted_output(lines, printed)


def test_quoted_outputs_include_the_quickstart_and_the_api_paragraph_agrees():
    quickstart = [lines for argv, lines in shell_blocks(README) if argv == ["run", "configs/quickstart.yaml"]]
    assert len(quickstart) == 1  # the worked example is checked by the test above
    printed_p = re.search(r"^p_optimal\s+(\S+)", "\n".join(quickstart[0]), flags=re.M).group(1)
    assert quoted(r"gives the quickstart's (\d\.\d+)").group(1) == printed_p


def test_hardware_dry_run_gives_the_quoted_plan(capsys):
    found = quoted(r"`qportfolio run configs/hardware_fake_fez\.yaml --dry-run` plans (\d+) qubits on physical "
                   r"qubits (\[[\d, ]+\]), two-qubit depth (\d+), an estimated success probability of ([\d.]+) "
                   r"and ([\d.]+) estimated QPU seconds")
    printed = run_quoted(["run", "configs/hardware_fake_fez.yaml", "--dry-run"], None, capsys)

    def value(key: str, nested: bool = False) -> str:
        return re.search(rf"^{' +' if nested else ''}{key}: (.*)$", printed, flags=re.M).group(1)

    def rounded(text: str, like: str) -> str:
        return f"{float(text):.{len(like.split('.')[1])}f}"

    qubits, layout, depth, success, seconds = found.groups()
    assert value("qubits") == qubits
    assert value("layout", nested=True) == layout
    assert value("two_qubit_depth", nested=True) == depth
    assert rounded(value("estimated_success_probability", nested=True), success) == success
    assert rounded(value("estimated_qpu_seconds"), seconds) == seconds


def test_spending_guard_prints_the_quoted_line(tmp_path, capsys):
    message = quoted(r"`(qportfolio: error: estimated QPU time [^`]*)`").group(1)
    limit = re.search(r"backend\.max_qpu_seconds ([\d.]+) s", message).group(1)
    text = (ROOT / "configs/hardware_fake_fez.yaml").read_text()
    assert "max_qpu_seconds: 600" in text
    config = tmp_path / "hardware_fake_fez.yaml"
    config.write_text(text.replace("max_qpu_seconds: 600", f"max_qpu_seconds: {limit}"))
    out = tmp_path / "runs"
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == message
    assert not out.exists()  # nothing written


@pytest.mark.slow
def test_quickstart_without_warm_start_gives_the_quoted_p_optimal(tmp_path, capsys):
    want = float(quoted(r"Without warm start \(`solver\.warm_start: false`\) P\(optimum\) is (\d\.\d+)").group(1))
    text = (ROOT / "configs/quickstart.yaml").read_text()
    config = tmp_path / "quickstart.yaml"
    assert "\nsolver:\n" in text and "warm_start" not in text.split("\nsolver:\n")[1].split("\n\n")[0].split("#")[0]
    config.write_text(text.replace("\nsolver:\n", "\nsolver:\n  warm_start: false\n", 1))
    assert yaml.safe_load(config.read_text())["solver"]["warm_start"] is False
    printed = run_quoted(["run", str(config), "--quiet"], tmp_path, capsys)
    got = float(re.search(r"p_optimal\s+(\S+)", printed).group(1))
    assert got == pytest.approx(want, abs=PROBABILITY_TOLERANCE)


@pytest.mark.slow
def test_quickstart_with_slack_registers_gives_the_quoted_p_optimal(tmp_path, capsys):
    found = quoted(r"with `constraint_encoding: slack` \((\d+) qubits\) the defaults reach (\d\.\d+)")
    qubits, want = int(found.group(1)), float(found.group(2))
    text = (ROOT / "configs/quickstart.yaml").read_text()
    config = tmp_path / "quickstart.yaml"
    config.write_text(re.sub(r"constraint_encoding: auto.*", "constraint_encoding: slack", text, count=1))
    assert yaml.safe_load(config.read_text())["problem"]["constraint_encoding"] == "slack"
    printed = run_quoted(["run", str(config), "--quiet"], tmp_path, capsys)
    assert int(re.search(r"qubits\s+(\d+)", printed).group(1)) == qubits
    assert float(re.search(r"p_optimal\s+(\S+)", printed).group(1)) == pytest.approx(want, abs=PROBABILITY_TOLERANCE)


def test_eight_assets_baselines_give_the_quoted_objectives(tmp_path, capsys):
    found = quoted(r"objectives \(variance, \$²\) of ([\d.]+) for `classical_exact` \(SCIP's proven optimum\) and "
                   r"`scip`, ([\d.]+) for `relax_round` and `greedy`, ([\d.]+) for `simulated_annealing` and "
                   r"([\d.]+) for `tabu` \((\d+)% and (\d+)% above")
    exact, rounded, annealing, tabu, annealing_pct, tabu_pct = found.groups()
    run_quoted(["baseline", "configs/eight_assets.yaml", "--quiet"], tmp_path, capsys)
    printed = run_quoted(["compare", *map(str, tmp_path.iterdir()), "--format", "csv"], None, capsys)
    rows = [row for row in csv.DictReader(io.StringIO(printed)) if row.get("objective")]
    objective = {row["method"]: f"{float(row['objective']):.2f}" for row in rows}
    assert objective["classical_exact"] == objective["scip"] == exact
    assert objective["relax_round"] == objective["greedy"] == rounded
    assert objective["simulated_annealing"] == annealing and objective["tabu"] == tabu
    assert round(100 * (float(annealing) / float(exact) - 1)) == int(annealing_pct)
    assert round(100 * (float(tabu) / float(exact) - 1)) == int(tabu_pct)


def test_study_figures_are_the_committed_summary():
    summary = (ROOT / "results/examples/study_selection/summary.md").read_text()
    found = quoted(r"gives P\(optimum\) ([\d.]+) \(X\), ([\d.]+) \(XY ring\) and ([\d.]+) \(XY complete\) at p = 3")
    pivot = re.search(r"^\| 3 \| ([\d.]+) \[[^|]*\| ([\d.]+) \[[^|]*\| ([\d.]+) \[", summary.split("## P(optimum)")[1],
                      flags=re.M)
    x, complete, ring = pivot.groups()  # the pivot's columns: x, xy_complete, xy_ring
    assert found.groups() == (x, ring, complete)


@pytest.mark.slow
def test_backtest_gives_the_figures_the_readme_quotes(backtest):
    folder, printed = backtest  # its whole table: test_quoted_command_prints_what_is_quoted
    found = quoted(r"ends with the quantum answer at \$([\d.,]+), `classical_exact` at \$([\d.,]+), equal weight at "
                   r"\$([\d.,]+) and the continuous maximum-Sharpe portfolio at \$([\d.,]+), the quantum answer equal "
                   r"to the exact optimum at (\d+/\d+) rebalances")
    final = {line.split()[0]: line.split()[1] for line in printed.splitlines() if len(line.split()) == 9}
    *values, equal_count = found.groups()
    assert [final[m] for m in ("quantum", "classical_exact", "equal_weight", "markowitz_max_sharpe")] == values
    assert re.search(rf"^quantum = exact\s+{equal_count} rebalances$", printed, flags=re.M)
    low, high = quoted(r"warm-started QAOA at (\d+)–(\d+) qubits on `exact`").groups()
    result = json.loads(next(folder.glob("*/result.json")).read_text())
    assert result["quantum_equals_exact"]["qubits"] == {"min": int(low), "max": int(high)}
