"""SIGINT / SIGTERM for long jobs: raise ``Interrupted`` in the main thread so the job saves what is
finished and exits with the shell's status (130 for Ctrl-C, 143 for ``kill`` / ``timeout`` /
``docker stop``)."""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["Interrupted", "signals_raise_interrupted"]


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # 130 for SIGINT, 143 for SIGTERM (the shell convention)


@contextlib.contextmanager
def signals_raise_interrupted():
    """While inside: SIGINT and SIGTERM raise ``Interrupted`` in the main thread (only the first one;
    later signals are ignored so the clean-up that follows is not interrupted again)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if not fired:
            fired.append(signum)
            raise Interrupted(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
