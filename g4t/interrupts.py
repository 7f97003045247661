"""SIGINT / SIGTERM for long jobs: raise ``Interrupted`` in the main thread so the job saves what is
finished and exits with the shell's status (130 for Ctrl-C, 143 for ``kill`` / ``timeout`` /
``docker stop``)."""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["Interrupted", "PendingSignal", "call_in_worker", "signals_deferred", "signals_raise_interrupted"]


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


class PendingSignal:
    """The first SIGINT / SIGTERM received inside ``signals_deferred`` (``signum`` is None until then)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def raise_if_set(self) -> None:
        """Raise ``Interrupted`` if a signal arrived."""
        if self.signum is not None:
            raise Interrupted(self.signum)


@contextlib.contextmanager
def signals_deferred():
    """While inside: SIGINT and SIGTERM are only recorded in the yielded ``PendingSignal``; the code
    polls it and stops at its next safe point (a training loop: the end of the current step, where a
    consistent checkpoint can be saved). Later signals are ignored, as in ``signals_raise_interrupted``."""
    pending = PendingSignal()
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return

    def handler(signum, frame):
        if pending.signum is None:
            pending.signum = signum

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield pending
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def call_in_worker(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` run in a daemon thread while this thread waits in short slices.

    A signal handler that raises (``signals_raise_interrupted``) then runs at once, even when ``fn``
    waits on a thread pool whose shutdown would wait for every queued job. ``fn``'s result is returned
    and its exception re-raised. On ``Interrupted`` the worker is abandoned: save what is finished,
    then end the process with ``os._exit`` (pool threads are not daemons and would delay a normal exit).
    """
    out: dict = {}

    def work() -> None:
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as e:  # re-raised in the calling thread
            out["error"] = e

    worker = threading.Thread(target=work, name=getattr(fn, "__name__", "worker"), daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in out:
        raise out["error"]
    return out.get("value")
