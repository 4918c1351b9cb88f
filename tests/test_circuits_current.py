"""The circuits kept in circuits/ are those the shipped configs build today.

Each is regenerated into a temporary folder with `qportfolio export-circuits` and compared with the committed
QPY structurally: qubits, classical bits, parameter names, gate counts, and instruction by instruction
(gate, qubits, clbits, parameters bound to a fixed random vector, within 1e-9). Not a byte comparison of
the QASM text, whose float formatting may change between Qiskit versions; the QASM files are only checked
to exist and to declare the same inputs.
"""

from pathlib import Path

import numpy as np
import pytest
from qiskit import qpy

from qportfolio.app.cli import main

ROOT = Path(__file__).resolve().parents[1]
CIRCUITS = ROOT / "circuits"
# (config, --target or None, file stem under circuits/)
EXPORTS = [
    ("quickstart", None, "quickstart"),
    ("selection", None, "selection"),
    ("vqe", None, "vqe"),
    ("hardware_fake_fez", None, "hardware_fake_fez"),
    ("hardware_fake_fez", "aer_noisy:fake_fez", "hardware_fake_fez.aer_noisy_fake_fez"),
    ("hardware_ibm", None, "hardware_ibm"),  # the logical circuit only: no account, no network
]
TOLERANCE = 1e-9


def regenerate_command(config: str, target: str | None) -> str:
    return f"qportfolio export-circuits configs/{config}.yaml" + (f" --target {target}" if target else "") + \
        " --out circuits"


def load(path: Path):
    with open(path, "rb") as handle:
        (circuit,) = qpy.load(handle)
    return circuit


def bound(circuit, values: dict[str, float]):
    return circuit.assign_parameters({p: values[p.name] for p in circuit.parameters}) if circuit.parameters \
        else circuit


def differences(committed, fresh) -> list[str]:
    """What differs between two circuits, structurally and numerically (empty when they are the same)."""
    found = []
    for attribute in ("num_qubits", "num_clbits"):
        if getattr(committed, attribute) != getattr(fresh, attribute):
            found.append(f"{attribute} {getattr(committed, attribute)} != {getattr(fresh, attribute)}")
    names = [p.name for p in committed.parameters]
    if names != [p.name for p in fresh.parameters]:
        found.append(f"parameters {names} != {[p.name for p in fresh.parameters]}")
    if dict(committed.count_ops()) != dict(fresh.count_ops()):
        found.append(f"gate counts {dict(committed.count_ops())} != {dict(fresh.count_ops())}")
    if found:
        return found
    values = dict(zip(names, np.random.default_rng(20261121).uniform(-np.pi, np.pi, len(names))))
    a, b = bound(committed, values), bound(fresh, values)
    if abs(float(a.global_phase) - float(b.global_phase)) > TOLERANCE:
        found.append(f"global phase {float(a.global_phase)} != {float(b.global_phase)}")
    if len(a.data) != len(b.data):
        return found + [f"{len(a.data)} instructions != {len(b.data)}"]
    for k, (x, y) in enumerate(zip(a.data, b.data)):
        where = f"instruction {k} ({x.operation.name})"
        if x.operation.name != y.operation.name:
            found.append(f"{where}: gate {x.operation.name} != {y.operation.name}")
        elif [a.find_bit(q).index for q in x.qubits] != [b.find_bit(q).index for q in y.qubits]:
            found.append(f"{where}: qubits differ")
        elif [a.find_bit(c).index for c in x.clbits] != [b.find_bit(c).index for c in y.clbits]:
            found.append(f"{where}: clbits differ")
        elif len(x.operation.params) != len(y.operation.params):
            found.append(f"{where}: parameter count differs")
        else:
            for u, v in zip(x.operation.params, y.operation.params):
                if isinstance(u, (int, float, complex)) or hasattr(u, "__float__"):
                    if abs(complex(u) - complex(v)) > TOLERANCE:
                        found.append(f"{where}: parameter {complex(u)} != {complex(v)}")
                elif u != v:
                    found.append(f"{where}: parameter {u!r} != {v!r}")
        if len(found) > 5:
            break
    return found


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("circuits")
    for config, target, _ in EXPORTS:
        argv = ["export-circuits", str(ROOT / "configs" / f"{config}.yaml"), "--out", str(out)]
        assert main(argv + (["--target", target] if target else [])) == 0, " ".join(argv)
    return out


@pytest.mark.parametrize("config, target, stem", EXPORTS, ids=[e[2] for e in EXPORTS])
def test_committed_circuits_are_current(regenerated, config, target, stem):
    command = regenerate_command(config, target)
    for suffix in (".qpy", ".qasm"):
        assert (CIRCUITS / f"{stem}{suffix}").exists(), f"circuits/{stem}{suffix} is missing: run `{command}`"
        assert (regenerated / f"{stem}{suffix}").exists()
    committed, fresh = load(CIRCUITS / f"{stem}.qpy"), load(regenerated / f"{stem}.qpy")
    found = differences(committed, fresh)
    assert not found, (f"circuits/{stem}.qpy is stale (configs/{config}.yaml now builds a different circuit: "
                       f"{'; '.join(found[:5])}); regenerate it with `{command}`")
    # The QASM file declares the same inputs (the parameters, as OpenQASM 3 identifiers).
    qasm = (CIRCUITS / f"{stem}.qasm").read_text()
    assert qasm.startswith("OPENQASM 3"), f"circuits/{stem}.qasm is not OpenQASM 3: run `{command}`"
    inputs = sorted(line for line in qasm.splitlines() if line.startswith("input "))
    fresh_inputs = sorted(line for line in (regenerated / f"{stem}.qasm").read_text().splitlines()
                          if line.startswith("input "))
    assert inputs == fresh_inputs, f"circuits/{stem}.qasm is stale: run `{command}`"
    if target is not None:  # the ISA circuit only uses the device's gates, and measures every logical qubit
        from qportfolio.backends.ibm import fake_device

        device = fake_device(target.split(":")[1])
        assert set(committed.count_ops()) <= set(device.target.operation_names) | {"barrier"}
        assert committed.count_ops()["measure"] == load(CIRCUITS / "hardware_fake_fez.qpy").num_qubits


def test_no_unexpected_files_in_circuits():
    expected = {f"{stem}{suffix}" for _, _, stem in EXPORTS for suffix in (".qpy", ".qasm")}
    present = {p.name for p in CIRCUITS.iterdir() if p.is_file()}
    assert present == expected, f"circuits/ holds {sorted(present - expected)} and lacks {sorted(expected - present)}"


def test_markowitz_has_no_circuit(tmp_path, capsys):
    assert main(["export-circuits", str(ROOT / "configs" / "markowitz.yaml"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qportfolio: error:") and "markowitz" in err
    assert list(tmp_path.iterdir()) == []


def test_comparison_detects_a_changed_circuit():
    """The check is not vacuous: a changed coefficient and a changed gate are both reported."""
    committed = load(CIRCUITS / "hardware_fake_fez.qpy")
    changed = committed.copy()
    operation = changed.data[4].operation
    assert operation.name == "rzz"
    changed.data[4] = changed.data[4].replace(operation=type(operation)(operation.params[0] * (1 + 1e-6)))
    assert any("parameter" in d for d in differences(committed, changed))
    fewer = committed.copy_empty_like()
    for instruction in committed.data[1:]:
        fewer.append(instruction)
    assert differences(committed, fewer)
