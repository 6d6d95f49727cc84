"""Ctrl-C and SIGTERM while training: stop after the current step, with the checkpoints intact.

Python's own SIGINT handler raises ``KeyboardInterrupt`` wherever the main
thread happens to be, inside JAX's callbacks too, where it can be swallowed
and the run goes on. While :func:`stop_requests` is active, SIGINT and
SIGTERM (what schedulers and ``docker stop`` send) only set a flag that the
training loop reads after each step; the loop then raises
:class:`TrainingInterrupted`, and the previous handlers are back. A second
signal while the first is pending stops at once (``KeyboardInterrupt``).
"""

from __future__ import annotations

import contextlib
import signal

from jaxae import signals
from jaxae.errors import TrainingInterrupted

__all__ = ["StopRequest", "TrainingInterrupted", "stop_requests"]


class StopRequest:
    """The signal received, if any: ``signal`` is ``"SIGINT"``, ``"SIGTERM"`` or None."""

    def __init__(self):
        self.signal: str | None = None

    def __bool__(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def stop_requests():
    """Within the block, SIGINT and SIGTERM set the yielded :class:`StopRequest` instead of interrupting.

    Outside the main thread (where Python delivers no signals) the request stays empty.
    """
    request = StopRequest()

    def handler(number, frame):
        if request:  # a second signal: the user does not want to wait for the step
            give_back()
            raise KeyboardInterrupt
        request.signal = signal.Signals(number).name

    with signals.handled(handler) as give_back:
        yield request
