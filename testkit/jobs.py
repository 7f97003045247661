"""Driving a long job in a subprocess in tests: wait until it has done some work, then signal it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def lines(path: Path) -> int:
    """Lines written to ``path`` so far (0 while it does not exist)."""
    return path.read_text().count("\n") if path.exists() else 0


def signal_when(proc: subprocess.Popen, ready: Callable, sig: int, timeout: float = 180.0):
    """Send ``sig`` once ``ready()`` returns something true; return ``(exit status, seconds from the signal
    to the exit, what ready() returned)``. Fails if the job exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not (state := ready()):
        assert proc.poll() is None, f"exited early with {proc.returncode}: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "the job never reached the point to interrupt"
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(sig)
    rc = proc.wait(timeout=120)
    return rc, time.monotonic() - sent, state
