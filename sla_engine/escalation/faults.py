"""Fault injection points for crash tests: `SLA_ENGINE_FAULT=after_claim|after_send|
after_commit` makes the worker SIGKILL itself at that point. Inert unless the variable is set."""

from __future__ import annotations

import os
import signal

FAULT_ENV = "SLA_ENGINE_FAULT"
FAULT_POINTS = ("after_claim", "after_send", "after_commit")


def fault_point(name: str) -> None:
    """Die here, without cleanup, when the environment asks for a crash at `name`."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
