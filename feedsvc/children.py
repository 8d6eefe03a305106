"""Child processes that go when the process that started them goes, even when it was killed (Linux only).

Neutral: the serving master starts the builder with it (building/builder.py), the tests start servers with it.
"""
from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1  # prctl's option (linux/prctl.h); man 2 PR_SET_PDEATHSIG


def die_with_parent() -> None:
    """Popen's preexec_fn: the child gets SIGTERM when its parent ends, so a parent that never cleaned up leaks nothing.
    Elsewhere than Linux (no prctl) it does nothing."""
    prctl = getattr(ctypes.CDLL(None), "prctl", None)
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
