"""The errors jaxae raises for what a user can fix; anything else is a bug and keeps its traceback.

The ``jaxae`` command prints a :class:`JaxaeError` as one line and exits;
every other exception propagates with its traceback.

>>> from jaxae import models
>>> try:
...     models.create("mnist_ae4")
... except InputError as error:
...     print(str(error).split(";")[0])
unknown model 'mnist_ae4'
"""

from __future__ import annotations

import numbers


class JaxaeError(Exception):
    """An error whose message says what went wrong and what to do; no traceback needed."""


class InputError(JaxaeError, ValueError):
    """Bad input: an unknown name, a wrong shape or dtype, an invalid setting, a file of the wrong kind."""


class DatasetNotAvailableError(JaxaeError, RuntimeError):
    """A dataset that is neither prepared in the data dir nor downloadable."""


class WorkdirInUseError(JaxaeError, RuntimeError):
    """Another live process is writing to the same work dir."""


class TrainingDivergedError(JaxaeError, FloatingPointError):
    """The training loss became NaN or infinite; the last good checkpoint stays."""


class JaxaeWarning(UserWarning):
    """Something went wrong and jaxae recovered (e.g. a damaged checkpoint set aside); the ``jaxae`` command prints it as one line."""


class TrainingInterrupted(KeyboardInterrupt, SystemExit):
    """Training stopped on SIGINT or SIGTERM after a step, saved where it stopped.

    A ``KeyboardInterrupt``, so that code which stops on Ctrl-C stops here too,
    for SIGTERM as well. Also a ``SystemExit`` whose ``code`` is the shell's
    code for a process ended by that signal (130 for SIGINT, 143 for SIGTERM):
    uncaught in a plain script, Python exits with it and prints no traceback,
    after the one line ``fit`` printed. ``signal`` is the signal's name; the
    message says where the run stopped and how to resume it.
    """

    def __init__(self, message: str, signal_name: str):
        super().__init__(message)
        self.signal = signal_name
        self.code = 130 if signal_name == "SIGINT" else 143


def first_line(error: BaseException, limit: int = 300) -> str:
    """The root cause's type and the first line of its message, at most ``limit`` characters of it.

    For errors raised deep inside a library (TensorStore under Orbax, a user's
    module under ``jax.eval_shape``), whose wrappers add many lines.

    >>> first_line(ValueError("shapes differ" + chr(10) + "more detail"))
    'ValueError: shapes differ'
    """
    while error.__cause__ is not None:
        error = error.__cause__
    line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {line[:limit]}{'...' if len(line) > limit else ''}"


def check_integer(name: str, value, low: int = 1, high: int | None = None, note: str = "") -> None:
    """Raises :class:`InputError` naming ``name`` unless ``value`` is an integer in ``[low, high]``.

    ``note`` says in brackets what the bound is.

    >>> check_integer("k", 0, high=5, note="the train examples")
    Traceback (most recent call last):
    ...
    jaxae.errors.InputError: k must be an integer in [1, 5] (the train examples), got 0
    """
    if isinstance(value, numbers.Integral) and low <= value and (high is None or value <= high):
        return
    if high is not None:
        kind = f"an integer in [{low}, {high}]"
    else:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
    raise InputError(f"{name} must be {kind}{f' ({note})' if note else ''}, got {value!r}")
