"""Never a credential in a message: redaction of error text."""

from __future__ import annotations

import os

# --------------------------------------------------------------------------- credentials


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with the IBM token (from the environment, and any ``secrets`` given) replaced by ***."""
    candidates = [os.environ.get("QISKIT_IBM_TOKEN"), *secrets]
    for secret in candidates:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _one_line(exc: BaseException, *secrets: str | None) -> str:
    message = redact(str(exc), *secrets).strip().splitlines()
    first = message[0] if message else ""
    return f"{type(exc).__name__}: {first}"[:300]


