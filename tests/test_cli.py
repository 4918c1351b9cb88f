"""The command line end to end, on the shipped configs and on a user's typical mistakes."""

import json
from pathlib import Path

import pytest
import yaml

from qportfolio.app.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def run_folder(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


def test_quickstart_finds_the_exact_optimum_and_writes_the_contract(tmp_path, capsys):
    assert main(["run", str(CONFIGS / "quickstart.yaml"), "--out", str(tmp_path), "--quiet"]) == 0
    folder = run_folder(tmp_path)
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "complete"
    assert result["problem"]["kind"] == "integer_shares"
    assert result["problem"]["assets"] == ["AAPL", "JPM", "XOM"]
    assert result["qubits"] <= 12
    quantum, exact = result["solutions"]["quantum"], result["solutions"]["classical_exact"]
    for entry in (quantum, exact):
        assert set(entry) >= {"allocation", "objective", "variance", "expected_return", "cost", "feasible"}
    assert exact["proven_optimal"] is True
    assert quantum["allocation"] == exact["allocation"]
    assert quantum["objective"] == pytest.approx(exact["objective"])
    assert exact["objective"] == pytest.approx(exact["variance"])  # seed formulation: variance of dollar return
    assert set(result["metrics"]) == {"p_optimal", "feasible_fraction", "approximation_ratio", "lift",
                                      "uniform_p_optimal", "reachable_states"}
    assert 0 < result["metrics"]["p_optimal"] <= 1
    assert result["encoding"]["verification"]["ground_state_optimal"] is True
    assert set(result["provenance"]) >= {"seed", "packages", "config_sha256"}
    assert result["timing"]["total_s"] > 0
    for name in ("config.yaml", "history.jsonl", "samples.csv", "circuit.qpy", "circuit.qasm", "report.md",
                 "figures/convergence.png", "figures/distribution.png", "figures/allocation.png"):
        assert (folder / name).stat().st_size > 0, name
    resolved = yaml.safe_load((folder / "config.yaml").read_text())
    assert resolved["solver"]["shots"] == 4096 and resolved["backend"]["name"] == "exact"
    assert resolved["solver"]["warm_start"] == "auto"  # the resolved config keeps what the user left to the tool
    printed = capsys.readouterr().out
    assert "quantum = exact" in printed and "yes" in printed


def test_a_second_run_never_reuses_the_first_folder(tmp_path):
    for _ in range(2):
        assert main(["baseline", str(CONFIGS / "quickstart.yaml"), "--out", str(tmp_path), "--quiet"]) == 0
    folders = sorted(p for p in tmp_path.iterdir())
    assert len(folders) == 2
    result = json.loads((folders[0] / "result.json").read_text())
    assert result["solutions"]["quantum"] is None and result["solutions"]["classical_exact"]["proven_optimal"]


@pytest.mark.parametrize("name", ["selection", "vqe", "markowitz"])
def test_shipped_configs_run(name, tmp_path):
    assert main(["run", str(CONFIGS / f"{name}.yaml"), "--out", str(tmp_path), "--quiet", "--seed", "3"]) == 0
    result = json.loads((run_folder(tmp_path) / "result.json").read_text())
    assert result["status"] == "complete" and result["provenance"]["seed"] == 3
    if name == "markowitz":
        assert result["solutions"]["quantum"] is None
        assert sum(result["solutions"]["classical_exact"]["allocation"].values()) == pytest.approx(1.0)
    else:
        assert result["solutions"]["quantum"]["feasible"] is True


def write(tmp_path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


QUICK = (CONFIGS / "quickstart.yaml").read_text()


@pytest.mark.parametrize("text, message", [
    ("name: [unclosed", "not valid YAML"),
    (QUICK.replace("budget: 500", "budgte: 500"), "unknown key 'problem.budgte'"),
    (QUICK.replace("budget: 500", "budget: 20"), "below the cheapest share"),
    (QUICK.replace("min_return: 0.44", "min_return: 5.0"), "above the most any allocation"),
    (QUICK.replace("assets: [AAPL, JPM, XOM]", "assets: [AAPL, NOPE]"), "NOPE"),
    (QUICK.replace("name: exact", "name: ibm_quantum_computer"), "backend.name"),
    (QUICK.replace("algorithm: qaoa", "algorithm: qaoa\n  reps: 0"), "solver.reps"),
    (QUICK.replace("budget: 500", "budget: 60000").replace("min_return: 0.44", "min_return: 1.0")
     .replace("assets: [AAPL, JPM, XOM]", "assets: [AAPL, JPM, XOM, KO, PFE, MSFT, WMT, UNH]")
     .replace("penalty: calibrated", "penalty: calibrated\n  max_qubits: 6"), "limit|GiB|qubits"),
])
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, capsys, text, message):
    code = main(["run", write(tmp_path, text), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("qportfolio: error: ") and err.count("\n") == 1
    import re

    assert re.search(message, err), err
    assert "Traceback" not in err


def test_missing_config_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_failed_run_keeps_what_it_finished(tmp_path):
    text = QUICK.replace("min_return: 0.44", "min_return: 0.5509")  # LP-feasible, no whole-share allocation
    assert main(["run", write(tmp_path, text), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    result = json.loads((run_folder(tmp_path / "out") / "result.json").read_text())
    assert result["status"] == "failed" and "whole shares" in result["error"]
    assert result["data"]["tickers"] == ["AAPL", "JPM", "XOM"]


def test_baseline_on_an_instance_too_large_to_simulate(tmp_path):
    """62 qubits: no simulator limit applies to a classical run; SCIP proves the optimum, every baseline reports."""
    assert main(["baseline", str(CONFIGS / "eight_assets.yaml"), "--out", str(tmp_path), "--quiet"]) == 0
    result = json.loads((run_folder(tmp_path) / "result.json").read_text())
    assert result["qubits"] > 26 and result["encoding"]["window"] == {"applied": False}
    exact = result["solutions"]["classical_exact"]
    assert exact["proven_optimal"] and exact["method"] == "scip"
    for method in ("scip", "relax_round", "greedy", "simulated_annealing", "tabu"):
        entry = result["solutions"][method]
        assert entry["status"] == "ok" and entry["feasible"] and entry["gap_to_optimum"] >= -1e-9


def test_a_shipped_config_reads_its_data_from_any_folder(tmp_path, monkeypatch):
    """configs/selection_24.yaml names its CSV relative to itself: loading it from another folder finds the file,
    while a path that exists from the current folder is kept as given."""
    from qportfolio.app.config import load_config
    from qportfolio.app.instance import load_config_prices

    monkeypatch.chdir(tmp_path)
    config = load_config(CONFIGS / "selection_24.yaml")
    assert Path(config.data.path).resolve() == (CONFIGS.parent / "benchmarks/data/sp500_factors_weekly.csv").resolve()
    assert load_config_prices(config).shape[1] == 24
    (tmp_path / "prices.csv").write_text("date,A,B\n2021-01-04,1,2\n2021-01-05,1.1,2.1\n")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "config.yaml").write_text(QUICK.replace("source: sp500", "source: csv\n  path: prices.csv"))
    assert load_config(other / "config.yaml").data.path == "prices.csv"
