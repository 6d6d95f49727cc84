"""A train step's CPU path chosen by measuring it: the fastest of a few compilations, found once, remembered.

Which compilation of a step XLA:CPU runs fastest depends on the model, the batch, the
jaxlib and the CPU: jaxae's compiler options (:data:`~jaxae.cpu.COMPILER_OPTIONS`) or
XLA's defaults, gradient chunks (:func:`~jaxae.cpu.default_microbatch_size`) or the whole
batch at once. Rules tuned on one machine and one jaxlib drift on the next
(docs/performance.md), so the first time a step is compiled on a CPU, :func:`fastest`
compiles the candidates that fit a small budget, times a few steps of each in turns on
the run's own first batch and keeps the fastest. :class:`Record` remembers the choice
beside the persistent compilation cache, keyed by the program (its lowered text), the
jaxlib and the CPU, so that a later run of the same step starts with it at no cost.

The choice is a speed setting: the candidates compute the same step up to float rounding,
as different chunk sizes do, and it never enters a run's identity.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import jaxlib

BUDGET_SECONDS = 5.0
"""What the candidates beyond the default may cost a first run, compilation and timing together."""
ROUNDS = 5
ROUND_SECONDS = 0.08
"""Each round runs each candidate for about this long (at least two steps); a candidate's time is
its fastest round's, as what a busy machine adds to a round is never less than nothing."""
MARGIN = 0.97
"""Another candidate replaces the default only when its step measured at most this fraction of the
default's: closer, a few short rounds cannot tell them apart on a busy machine."""
MODES = ("search", "fixed", "xla")
"""``search``: measure (the default on CPU); ``fixed``: jaxae's rules; ``xla``: XLA's defaults, chunks by the rules."""
ENVIRONMENT_VARIABLE = "JAXAE_CPU_PATH"
clock = time.perf_counter
"""The time in seconds; a module attribute, so that a test can time fake steps."""


@dataclasses.dataclass(frozen=True)
class Choice:
    """One way to compile a step: compiler ``options`` (``"jaxae"``'s or ``"xla"``'s defaults) and its chunks."""

    options: str
    microbatch_size: int

    @property
    def compiler_options(self) -> dict[str, str] | None:
        """What :func:`jaxae.cpu.jit_with_cpu_options` takes: None for jaxae's, ``{}`` for XLA's defaults."""
        return None if self.options == "jaxae" else {}

    def __str__(self) -> str:
        return f"{self.options} options, chunks of {self.microbatch_size}"


def mode(asked: str | None) -> str:
    """The CPU path asked for, else ``$JAXAE_CPU_PATH``, else ``search``; refuses any other name in one line."""
    from jaxae.errors import InputError

    chosen = asked or os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() or "search"
    if chosen not in MODES:
        source = "cpu_path" if asked else f"${ENVIRONMENT_VARIABLE}"
        raise InputError(f"{source} must be one of {', '.join(MODES)}, got {chosen!r}")
    return chosen


def candidates(default: Choice, batch_size: int, vary_chunks: bool) -> list[Choice]:
    """The default first, then the others in the order their worth was seen: the chunks changed,
    XLA's options, both.

    >>> [str(c) for c in candidates(Choice("jaxae", 128), 256, vary_chunks=True)]
    ['jaxae options, chunks of 128', 'jaxae options, chunks of 256', 'xla options, chunks of 128', 'xla options, chunks of 256']
    >>> [str(c) for c in candidates(Choice("jaxae", 64), 64, vary_chunks=True)]
    ['jaxae options, chunks of 64', 'xla options, chunks of 64']
    """
    chunks = [default.microbatch_size]
    if vary_chunks and default.microbatch_size < batch_size:
        chunks.append(batch_size)
    return [Choice(options, size) for options in ("jaxae", "xla") for size in chunks]


def _copy(state):
    return jax.tree.map(jnp.copy, state)


def fastest(compile_step: Callable[[Choice], Callable], choices: list[Choice], state, batch,
            budget_seconds: float = BUDGET_SECONDS) -> tuple[Choice, Callable, dict]:
    """The fastest of ``choices`` (the first is the default), its compiled step and what was measured.

    ``compile_step(choice)`` gives a step ``(state, batch) -> (state, sums)`` that donates
    its state; each candidate runs on its own copy of ``state``, which stays as it is. The
    default is compiled and run first. Each other candidate is tried only while the
    estimated cost of the search (a compilation as long as the default's for each, and
    ``ROUNDS`` rounds of a few steps for all) stays within ``budget_seconds``: a step too
    slow for that keeps the default without timing anything. The candidates tried run
    their rounds in turns, and the one with the fastest step wins, if it beats the default
    by :data:`MARGIN`. The report's ``final`` says whether another search could choose
    otherwise only by chance: every candidate tried, or the step too slow for any other's
    rounds; a search cut short by compilations (slow while the compilation cache is cold)
    is not final.
    """
    started = clock()
    default = choices[0]
    steps = {default: compile_step(default)}
    states = {default: jax.block_until_ready(steps[default](_copy(state), batch)[0])}
    compile_seconds = clock() - started  # with the first step: all a later candidate's first call costs
    fastest_seconds, final = {}, len(choices) == 1
    if len(choices) > 1 and compile_seconds < budget_seconds:
        timed = clock()
        states[default] = jax.block_until_ready(steps[default](states[default], batch)[0])
        step_seconds = clock() - timed
        repeats = max(2, math.ceil(ROUND_SECONDS / max(step_seconds, 1e-6)))
        spent = ROUNDS * repeats * step_seconds  # the default's rounds
        rounds = ROUNDS * repeats * step_seconds
        final = 2 * rounds > budget_seconds  # no room for another candidate's rounds, however fast it compiles
        for choice in choices[1:]:
            cost = compile_seconds + rounds
            if spent + cost > budget_seconds:
                break
            steps[choice] = compile_step(choice)
            states[choice] = jax.block_until_ready(steps[choice](_copy(state), batch)[0])
            spent += cost
        if len(steps) > 1:
            fastest_seconds = _step_seconds(steps, states, batch, repeats)
    best = min(fastest_seconds, key=fastest_seconds.get) if fastest_seconds else default
    if fastest_seconds and fastest_seconds[best] > MARGIN * fastest_seconds[default]:
        best = default
    untried = [str(choice) for choice in choices if choice not in steps]
    report = {"step_ms": {str(choice): 1e3 * seconds for choice, seconds in fastest_seconds.items()},
              "untried": untried, "final": final or not untried, "seconds": clock() - started}
    return best, steps[best], report


def _step_seconds(steps: dict, states: dict, batch, repeats: int) -> dict[Choice, float]:
    """Each candidate's seconds per step in its fastest of ``ROUNDS`` rounds of ``repeats`` steps, taken in
    turns (each round starting one candidate later)."""
    times = {choice: [] for choice in steps}
    for round_ in range(ROUNDS):
        order = list(steps)[round_ % len(steps):] + list(steps)[: round_ % len(steps)]
        for choice in order:
            timed = clock()
            current = states[choice]
            for _ in range(repeats):
                current, _ = steps[choice](current, batch)
            states[choice] = jax.block_until_ready(current)
            times[choice].append((clock() - timed) / repeats)
    return {choice: min(values) for choice, values in times.items()}


def choose(compile_step: Callable[[Choice], Callable], default: Choice, batch_size: int, vary_chunks: bool, state,
           batch, default_step: Callable | None = None) -> tuple[Choice, Callable, dict | None]:
    """The compilation of a step to run: as :class:`Record` remembers it, else as :func:`fastest` finds it
    now (then remembered).

    ``default`` is jaxae's rules' choice, ``default_step`` its compiled step where already
    made; ``vary_chunks``: whether the chunks may change (not where they are pinned, nor for
    a model whose batch statistics are its whole batch's). Returns ``(choice, its step,
    what was measured)``, the last None when the choice was remembered. A choice is remembered
    only when its search was final (:func:`fastest`).
    """
    default_step = default_step or compile_step(default)
    step_key = key(default_step.lower(state, batch).as_text())
    record = Record.beside_compilation_cache()
    chosen = record.get(step_key) if record is not None else None
    if chosen is not None:
        return chosen, default_step if chosen == default else compile_step(chosen), None
    chosen, step, report = fastest(compile_step, candidates(default, batch_size, vary_chunks), state, batch)
    if record is not None and report["final"]:
        record.put(step_key, chosen, report)
    return chosen, step, report


def _cpu() -> str:
    """The CPU as its model name, family, model and instruction-set flags say (a hypervisor may hide the name)."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    flags = hashlib.sha256(" ".join(sorted(fields.get("flags", "").split())).encode()).hexdigest()[:12]
    return (f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}, "
            f"flags {flags}, {os.cpu_count()} cores)")


def key(lowered_text: str) -> str:
    """The record's key of a step: its lowered program, the jaxlib, the CPU and the device count."""
    text = "\n".join([lowered_text, jax.__version__, jaxlib.__version__, _cpu(), str(jax.device_count())])
    return hashlib.sha256(text.encode()).hexdigest()


class Record:
    """The choices made, as JSON in ``path`` (one entry per key); shared by processes, written atomically."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def beside_compilation_cache(cls) -> Record | None:
        """The record beside JAX's persistent compilation cache (``<cache>-cpu-path.json``); None without a cache."""
        directory = jax.config.values["jax_compilation_cache_dir"]
        return cls(Path(directory).with_name(Path(directory).name + "-cpu-path.json")) if directory else None

    def _read(self) -> dict:
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):  # none yet, or damaged: measured again
            return {}
        return entries if isinstance(entries, dict) else {}

    def get(self, step_key: str) -> Choice | None:
        entry = self._read().get(step_key)
        try:
            return Choice(entry["options"], int(entry["microbatch_size"]))
        except (TypeError, KeyError, ValueError):
            return None

    def put(self, step_key: str, choice: Choice, report: dict) -> None:
        """Adds ``choice`` under ``step_key``; a record that cannot be written is left as it is (measured again)."""
        entries = self._read()
        entries[step_key] = {"options": choice.options, "microbatch_size": choice.microbatch_size, "cpu": _cpu(),
                             "jaxlib": jaxlib.__version__, **report}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, suffix=".tmp", delete=False) as f:
                json.dump(entries, f, indent=1)
            os.replace(f.name, self.path)
        except OSError:
            pass
