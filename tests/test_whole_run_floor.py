"""benchmarks/whole_run.py's memory floor: the same run on its first assets, K in proportion."""

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_whole_run():
    spec = importlib.util.spec_from_file_location("whole_run", ROOT / "benchmarks" / "whole_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_floor_config_keeps_the_run_on_fewer_assets(tmp_path):
    whole_run = load_whole_run()
    config = ROOT / "configs" / "selection_24.yaml"
    tickers = [f"T{i}" for i in range(24)]
    derived = yaml.safe_load(whole_run.floor_config(config, tickers, 16, tmp_path).read_text())
    original = yaml.safe_load(config.read_text())
    assert derived["data"]["assets"] == tickers[:16]
    assert derived["problem"]["num_assets"] == 8  # K = 12 of 24 → 8 of 16
    assert Path(derived["data"]["path"]).is_absolute() and Path(derived["data"]["path"]).exists()
    assert derived["solver"] == original["solver"] and derived["backend"] == original["backend"]


def test_no_floor_config_for_other_problems(tmp_path):
    whole_run = load_whole_run()
    config = tmp_path / "integer.yaml"
    config.write_text(yaml.safe_dump({"problem": {"kind": "integer_shares"}, "data": {}}))
    assert whole_run.floor_config(config, ["A", "B", "C"], 2, tmp_path) is None
