"""benchmarks/hardware.py's whole-share runs on a suite file of fresh instances (not seen when the defaults were chosen).

    python benchmarks/hardware_fresh.py [--suite-file benchmarks/suites_fresh.yaml] [--name fresh]
                                        [--targets aer_noisy:fake_fez] [--seeds 1 2 3] [--integer-shots 1024]
                                        [--max-qubits 16] [--out results/benchmarks] [--tables-only]

The instances are the suite file's ``integer_shares`` list (drawn by ``benchmarks/integer_suite.py`` with a new
seed); each runs through :func:`hardware.run_one` exactly as ``hardware.py`` runs them (the tool's defaults, only
the problem, the target and the shots given). Records go to ``<out>/hardware_<name>.jsonl`` as they finish (a rerun
skips what is there), the tables (:func:`hardware.tables`) to ``<out>/hardware_<name>.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hardware  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite-file", default=str(ROOT / "benchmarks" / "suites_fresh.yaml"))
    parser.add_argument("--name", default="fresh")
    parser.add_argument("--targets", nargs="+", default=["aer_noisy:fake_fez"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--max-qubits", type=int, default=16, help="instances up to this many slack qubits (name's qN)")
    parser.add_argument("--integer-shots", type=int, default=1024)
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks"))
    parser.add_argument("--tables-only", action="store_true")
    args = parser.parse_args(argv)
    suite = yaml.safe_load(Path(args.suite_file).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"hardware_{args.name}.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    done = {(r["instance"], r["target"], r["seed"]) for r in records}
    if not args.tables_only:
        for instance in suite["integer_shares"]:
            if int(instance["name"].rsplit("_q", 1)[1]) > args.max_qubits:
                continue
            for target in args.targets:
                for seed in args.seeds:
                    if (instance["name"], target, seed) in done:
                        continue
                    record = hardware.run_one("integer_shares", instance, target, seed, args.integer_shots,
                                              suite.get("covariance", "sample"))
                    records.append(record)
                    with path.open("a") as handle:
                        handle.write(json.dumps(record) + "\n")
                    print(f"{record['instance']} {target} seed {seed}: {record['mixer']} p={record['reps']} "
                          f"P(opt) {record['p_optimal']:.4f} post-selected {hardware.fmt(record['p_optimal_postselected'])} "
                          f"predicted {hardware.fmt(record.get('predicted_p_optimal'))} ({record['seconds']:.0f} s)",
                          file=sys.stderr, flush=True)
    text = hardware.tables(records, args.name, args.seeds).replace(
        f"; the runs made before it, with slack qubits (13–16), are kept in `hardware_{args.name}_slack.jsonl`", "")
    (out / f"hardware_{args.name}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
