"""report.md reads right: the optimizer's stop in plain words, round-off weights as 0, parameters short."""

from qportfolio.app.report import write_report


def page(**parts) -> str:
    return write_report({"name": "r", "status": "complete", "problem": {"kind": "markowitz", "assets": ["A", "B"]},
                         **parts})


def test_the_optimizer_stopping_at_its_budget_is_said_in_plain_words():
    text = page(quantum={"optimizer": "l_bfgs_b", "optimizer_message": "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
                         "optimal_parameters": [0.123456789, 1.0]})
    assert "- optimizer: l_bfgs_b" in text
    assert "- optimizer stop: stopped at its evaluation budget (scipy: `STOP: TOTAL NO. OF F,G EVALUATIONS" in text
    assert "- optimal_parameters: [0.1235, 1]" in text


def test_solver_round_off_weights_show_as_zero():
    text = page(solutions={"classical_exact": {"allocation": {"A": 4.433e-09, "B": 0.9999999956}, "objective": 1.0,
                                               "feasible": True}})
    assert "| classical_exact | A 0, B 1 |" in text
