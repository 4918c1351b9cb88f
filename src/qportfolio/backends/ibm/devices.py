"""Devices: fake devices for local testing, and the IBM Quantum service connection."""

from __future__ import annotations

import threading
from typing import Any

from qportfolio.backends.ibm.credentials import _one_line
from qportfolio.backends.ibm.options import (
    HardwareOptions,
)
from qportfolio.errors import (
    BackendError,
    ConfigError,
)

# --------------------------------------------------------------------------- devices


def fake_device(name: str):
    """A fake device of qiskit-ibm-runtime by name: ``fake_fez``, ``FakeFez``, ``fez`` are the same."""
    from qiskit_ibm_runtime import fake_provider
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    def key(text: str) -> str:
        text = text.lower().replace("_", "").replace("-", "")
        text = text.removeprefix("fake").removeprefix("ibm")
        return text.removesuffix("v2")

    wanted = key(name)
    classes = {}
    for attribute in dir(fake_provider):
        cls = getattr(fake_provider, attribute)
        if isinstance(cls, type) and issubclass(cls, FakeBackendV2) and attribute.startswith("Fake"):
            classes[key(attribute)] = cls
    if wanted not in classes:
        examples = ", ".join(f"fake_{k}" for k in ("fez", "torino", "sherbrooke", "kyiv", "marrakesh"))
        raise ConfigError(f"unknown fake device {name!r}: use one of qiskit-ibm-runtime's fake devices, "
                          f"e.g. {examples}")
    return classes[wanted]()


def _connect(options: HardwareOptions, device: str):
    """``QiskitRuntimeService`` and the device, or a one-line :class:`BackendError` within the timeout."""
    outcome: dict[str, Any] = {}

    def attempt():
        try:
            from qiskit_ibm_runtime import QiskitRuntimeService

            kwargs = {k: v for k, v in (("name", options.account), ("channel", options.channel),
                                        ("instance", options.instance)) if v is not None}
            service = QiskitRuntimeService(**kwargs)
            if device == "least_busy":
                backend = service.least_busy(min_num_qubits=options.min_qubits, operational=True, simulator=False)
            else:
                backend = service.backend(device)
            outcome["value"] = (service, backend)
        except BaseException as exc:  # noqa: BLE001 - reported as one line below
            outcome["error"] = exc

    thread = threading.Thread(target=attempt, name="qportfolio-ibm-connect", daemon=True)
    thread.start()
    thread.join(options.connect_timeout)
    advice = ("save an account (QiskitRuntimeService.save_account) or set QISKIT_IBM_TOKEN and "
              "QISKIT_IBM_INSTANCE, or run offline with ibm_fake:<device> or aer_noisy:<device> "
              "(e.g. ibm_fake:fake_fez)")
    if thread.is_alive():
        raise BackendError(f"IBM Quantum did not answer within {options.connect_timeout:g} s for "
                           f"ibm:{device}: check the network, or {advice}")
    if "error" in outcome:
        unreachable = _network_cause(outcome["error"])
        if unreachable is not None:  # the runtime blames the token when the cause is no network
            raise BackendError(f"cannot reach IBM Quantum for ibm:{device} (no network: {_one_line(unreachable)}): "
                               "check the connection (the account, QISKIT_IBM_TOKEN or a saved one, could not be "
                               "checked without it), or run offline with ibm_fake:<device> or aer_noisy:<device> "
                               "(e.g. ibm_fake:fake_fez)")
        raise BackendError(f"cannot use IBM Quantum backend ibm:{device} ({_one_line(outcome['error'])}): {advice}")
    return outcome["value"]




def _network_cause(error: BaseException) -> BaseException | None:
    """The connection failure (no route, no name resolution, refused) behind ``error``, if there is one."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (ConnectionError, TimeoutError)) or type(error).__name__ in (
                "ConnectionError", "NameResolutionError", "NewConnectionError", "MaxRetryError", "gaierror",
                "ConnectTimeout", "ConnectTimeoutError"):
            return error
        error = error.__cause__ or error.__context__
    return None
