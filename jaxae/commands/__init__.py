"""The ``jaxae`` commands, one module each, with ``add_arguments(parser)`` and ``run(args)``.

:mod:`jaxae.cli` imports a command's module only once the command is chosen, and each module
imports what its command needs inside ``run``, so that ``jaxae --help`` and ``jaxae CMD --help``
answer without the training or plotting code. What several commands share is here.
"""

from __future__ import annotations

import argparse


def positive(text: str) -> int:
    """An argument type: a positive integer."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def non_negative(text: str) -> float:
    """An argument type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_release_host_memory(parser: argparse.ArgumentParser) -> None:
    """``--release-host-memory``, of the commands that train (``jaxae reproduce``, ``python -m benchmarks``)."""
    parser.add_argument("--release-host-memory", action="store_true",
                        help="on CPU, leave glibc's malloc settings alone instead of keeping freed host memory "
                        "for reuse (slower steps, smaller footprint; see jaxae.cpu.retain_freed_memory)")
