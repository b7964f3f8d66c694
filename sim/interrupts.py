"""Ctrl-C taken at a safe point: a long loop notes the interrupt and stops between two steps, so nothing
is left half-recorded (a row counted but not written).

Python delivers signals to the main thread only, so elsewhere, or when a program has its own SIGINT handler,
this does nothing and Ctrl-C behaves as usual. A second Ctrl-C raises at once, for a step that never ends.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType


class DeferredInterrupt:
    def __init__(self) -> None:
        self.requested = False
        self._installed = False

    def __enter__(self) -> DeferredInterrupt:
        in_main = threading.current_thread() is threading.main_thread()
        if in_main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._note)
            self._installed = True
        return self

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt here if Ctrl-C was pressed since entering."""
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
