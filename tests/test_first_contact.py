"""First contact: a first run after install says once that it compiles the kernels; later runs say nothing."""

import numpy as np

from qportfolio.app import experiment
from qportfolio.backends.exact import kernels


def test_the_compile_notice_is_said_only_while_numba_has_no_cached_kernels(monkeypatch, capsys):
    kernels._probabilities(np.zeros(4, dtype=np.complex128))  # compiled and cached, as after any first run
    assert kernels.kernels_compiled()
    experiment.announce_compilation()
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(experiment, "kernels_compiled", lambda: False)  # as on a fresh install
    experiment.announce_compilation()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("qportfolio: compiling the simulator's kernels for this machine (once after install, about "
                           f"{experiment.COMPILE_SECONDS} s")
