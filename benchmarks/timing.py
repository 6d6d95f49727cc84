"""The benchmarks' one way to time: variants of a step, built apart, then timed in turns.

A :class:`Runner` does ``n`` steps of one variant and waits for them. Building it
(:func:`build_runner`) compiles it and runs it once; that time is its ``compile_seconds``,
kept apart from the timed calls. :func:`time_interleaved` then times every variant in turns,
``repeats`` rounds, each round starting one runner later than the one before, and
:func:`median_rates` turns the rounds into a median rate per variant.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any


@dataclasses.dataclass
class Runner:
    """A way to run a step: ``run(n)`` does ``n`` steps and waits for them.

    Attributes:
      name: what it runs, e.g. "jaxae_step", "jaxae_fused", "torch_eager" or "torch_compile".
      run: the timed call.
      compile_seconds: building, compiling and the first (warm-up) call.
      memory_bytes: the step's memory: XLA's memory analysis of the compiled
        step (arguments + outputs + temporaries − donated aliases) for jaxae,
        ``torch.cuda.max_memory_allocated`` on CUDA; None where not measured.
      compiled: the XLA executable ``run`` calls (jaxae runners), e.g. for its
        optimized HLO (``compiled.as_text()``); None for PyTorch.
    """

    name: str
    run: Callable[[int], None]
    compile_seconds: float
    memory_bytes: int | None = None
    compiled: Any = None


def _xla_memory(compiled) -> int | None:
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes - stats.alias_size_in_bytes)


def build_runner(build: Callable[[], tuple[Callable[[int], None], Any]], name: str, steps: int) -> Runner:
    """Builds a runner from ``build() -> (run, compiled or None)``, runs it once for ``steps`` steps (warm-up),
    and times both together."""
    start = time.perf_counter()
    run, compiled = build()
    run(steps)
    seconds = time.perf_counter() - start
    return Runner(name, run, seconds, _xla_memory(compiled) if compiled is not None else None, compiled)


def time_interleaved(runners: Mapping[str, Runner], steps: int, repeats: int) -> dict[str, list[float]]:
    """Seconds of ``run(steps)`` per runner, ``repeats`` rounds; within a round the runners take turns.

    Each round starts one runner later than the one before, so that every runner takes every
    place in the order equally often: on two cores, with the order fixed, whichever runner was
    timed right after PyTorch's ran up to 20 % slower (likely PyTorch's OpenMP threads, which
    spin for a while after each call).
    """
    seconds = {name: [] for name in runners}
    names = list(runners)
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runners[name].run(steps)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def median_rates(seconds: Mapping[str, list[float]], per_call: float) -> dict[str, float]:
    """``per_call`` (images, passes, ...) divided by each runner's median seconds per call."""
    return {name: per_call / statistics.median(times) for name, times in seconds.items()}
