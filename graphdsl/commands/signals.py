"""Signals that stop a long run the way Ctrl-C does, so that its work is saved.

A job scheduler, `timeout`, `kill` and a closed terminal send SIGTERM or SIGHUP,
whose default is to end the process on the spot. While `StopOnSignals` is
active they, and SIGINT, raise `Stopped` (a KeyboardInterrupt) inside the guarded
work instead, so training stops after its current step and the caller saves. A
signal that comes outside the guarded work (while saving) only is remembered:
the file is finished, and the exit status still says which signal came.
"""
from __future__ import annotations

import signal
from contextlib import contextmanager

SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")  # SIGHUP does not exist on Windows


class Stopped(KeyboardInterrupt):
    """A stop asked for by a signal: the exit status is 128 + its number (130 for SIGINT)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class StopOnSignals:
    """`with StopOnSignals() as stop:` then `with stop.guarding():` around the interruptible work."""

    def __init__(self):
        self.received: int | None = None  # the first signal's number
        self._guarding = False
        self._previous: dict = {}

    def __enter__(self):
        for name in SIGNALS:
            number = getattr(signal, name, None)
            if number is None or signal.getsignal(number) is signal.SIG_IGN:
                continue  # nohup and background jobs ignore some signals on purpose: keep it so
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread: signals cannot be caught here
                break
        return self

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        return False

    @contextmanager
    def guarding(self):
        """Signals raise Stopped inside this block; outside it they only are remembered."""
        self._guarding = True
        try:
            if self.received is not None:  # came before the work began: stop at once
                raise Stopped(self.received)
            yield
        finally:
            self._guarding = False

    def _handle(self, signum, frame):
        if self.received is None:
            self.received = signum
        if self._guarding:
            raise Stopped(signum)

    @property
    def status(self) -> int | None:
        """The conventional exit status, 128 + the signal's number, or None without a signal."""
        return None if self.received is None else 128 + self.received

    @property
    def name(self) -> str | None:
        return None if self.received is None else signal.Signals(self.received).name
