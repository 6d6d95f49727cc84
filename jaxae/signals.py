"""SIGINT and SIGTERM handled for the length of a block, then the caller's handlers given back.

What ``fit`` (:mod:`jaxae.train.interrupts`) and ``jaxae explore`` share. Installing the
handlers explicitly also covers a process started with SIGINT ignored, as a non-interactive
shell starts background jobs, where Python's own ``KeyboardInterrupt`` never comes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def handled(handler: Callable) -> Iterator[Callable[[], None]]:
    """Within the block, SIGINT and SIGTERM call ``handler(number, frame)``; yields ``give_back()``.

    ``give_back()`` restores the caller's handlers at once (the block's end does it anyway).
    Outside the main thread, where Python delivers no signals, nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}

    def give_back() -> None:
        for number, old in previous.items():
            signal.signal(number, signal.SIG_DFL if old is None else old)  # None: set outside Python

    for number in STOP_SIGNALS:
        signal.signal(number, handler)
    try:
        yield give_back
    finally:
        give_back()
