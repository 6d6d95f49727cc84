"""Where a jitted train step spends its time: the XLA ops of a trace, attributed to layers and passes.

:func:`profile` builds the suite's ``jaxae_step`` runner (synthetic data on the device, the
recipe's optimiser), times steps without the profiler, then traces as many with
``jax.profiler``. Each traced op that is an instruction of the step's optimized HLO is
attributed, through the HLO metadata, to the layer it comes from and to the forward pass, the
backward pass or the update, and charged two times: how long it ran (its trace events) and
its span, which for an op XLA:CPU completes asynchronously (convolutions handed to the thread
pool) runs on to its "end: " event. Neither adds up to the step's wall time: XLA:CPU runs
independent ops on two threads at once, "ran" misses the pool's share of asynchronous ops, and
a span can include ops that ran meanwhile, so it is an upper bound. Made for
XLA:CPU, whose trace names each op by its HLO instruction; on other backends the trace names
kernels, and ops that match no instruction are not counted. ``python -m benchmarks profile MODEL``
prints :func:`report`.
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import json
import re
import statistics
import tempfile
from pathlib import Path

import jax

from benchmarks.throughput import jaxae_step_runner
from benchmarks.timing import time_interleaved
from jaxae.experiments import recipe_stage

_INSTRUCTION = re.compile(r"^\s+(?:ROOT )?%(\S+) = (\S+) (.*)$", re.MULTILINE)
_OP_NAME = re.compile(r"op_name=\"([^\"]+)\"")
_STAGES = ("forward", "backward", "update", "?")  # "?": an instruction without metadata


@dataclasses.dataclass(frozen=True)
class Op:
    """One HLO instruction of the step: its name, result shape, pass and layer."""

    name: str
    shape: str
    stage: str
    layer: str


def hlo_ops(hlo_text: str) -> dict[str, Op]:
    """The entry computation's instructions by name, each with the pass and layer its metadata names.

    Instructions XLA added without metadata (layout copies, rewritten convolutions) get
    pass and layer "?".

    >>> text = 'ENTRY %main {\\n  %dot.3 = f32[8,4]{1,0} dot(%a, %b), metadata={op_name="jit(train_step)/transpose(jvp(m))/m.decode/decoder/fc/dot_general"}\\n}'
    >>> hlo_ops(text)["dot.3"]
    Op(name='dot.3', shape='f32[8,4]{1,0}', stage='backward', layer='decoder/fc')
    """
    entry = hlo_text[hlo_text.index("ENTRY") :]
    ops = {}
    for name, shape, rest in _INSTRUCTION.findall(entry):
        op_name = _OP_NAME.search(rest)
        ops[name] = Op(name, shape, *(_stage_and_layer(op_name.group(1)) if op_name else ("?", "?")))
    return ops


def _stage_and_layer(op_name: str) -> tuple[str, str]:
    scopes = op_name.split("/")[1:]  # drop jit(train_step)
    stage = "update"
    if scopes and scopes[0].startswith("transpose(jvp("):
        stage, scopes = "backward", scopes[1:]
    elif scopes and scopes[0].startswith("jvp("):
        stage, scopes = "forward", scopes[1:]
    if scopes and "(" not in scopes[-1]:
        scopes = scopes[:-1]  # the primitive itself
    # Module scopes and public jitted functions (activations) name a layer; method scopes
    # ("model.decode"), private helpers ("jit(_pad)") and einsum specs do not.
    names = [re.sub(r"^jit\((\w+)\)$", r"\1", s) for s in scopes]
    names = [n for n in names if re.fullmatch(r"[A-Za-z]\w*", n)]
    return stage, "/".join(names) or "(unscoped)"


def op_times(trace_events: list[dict], ops: dict[str, Op]) -> dict[str, tuple[float, float]]:
    """Per op of ``ops``, microseconds over the trace: (ran, span).

    ran: the durations of its trace events. span: from its start to its "end: " event where it
    has one (an op XLA:CPU completes asynchronously), else ran.
    """
    events = sorted((e for e in trace_events if e.get("ph") == "X"), key=lambda e: e["ts"])
    ran, span, started = collections.Counter(), collections.Counter(), {}
    for event in events:
        name = event["name"]
        if name in ops:
            ran[name] += event["dur"]
            span[name] += event["dur"]
            started[name] = event
        elif name.startswith("end: ") and name[5:] in started:
            begin = started.pop(name[5:])
            span[name[5:]] += max(0.0, event["ts"] - begin["ts"] - begin["dur"])
    return {name: (ran[name], span[name]) for name in ran}


def _traced_events(run, steps: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as directory:
        with jax.profiler.trace(directory, create_perfetto_trace=True):
            run(steps)
        (path,) = Path(directory).glob("**/perfetto_trace.json.gz")
        with gzip.open(path) as trace:
            events = json.load(trace)
    return events["traceEvents"] if isinstance(events, dict) else events


def profile(model: str, batch_size: int | None = None, steps: int = 20) -> dict:
    """Profiles ``steps`` train steps of ``model``.

    Returns the model, the batch size, the median step time (ms, untraced) and ``ops``: per op
    ``(Op, ran, span)`` in ms per step (see :func:`op_times`), longest span first.
    """
    stage = recipe_stage(model)
    batch_size = batch_size or stage.config.batch_size
    runner = jaxae_step_runner(stage.config, stage.transform, batch_size, steps)
    step_seconds = time_interleaved({runner.name: runner}, 1, steps)[runner.name]
    ops = hlo_ops(runner.compiled.as_text())
    times = op_times(_traced_events(runner.run, steps), ops)
    per_step = {name: (ran / steps / 1e3, span / steps / 1e3) for name, (ran, span) in times.items()}
    return {
        "model": model,
        "batch_size": batch_size,
        "step_ms": statistics.median(step_seconds) * 1e3,
        "ops": sorted(((ops[name], ran, span) for name, (ran, span) in per_step.items()), key=lambda o: -o[2]),
    }



def report(result: dict, top: int) -> str:
    """The profile as text: span per layer and pass, then the ``top`` ops by span."""
    by_layer = collections.defaultdict(collections.Counter)
    for op, _, span in result["ops"]:
        by_layer[op.layer][op.stage] += span
    ran = sum(ran for _, ran, _ in result["ops"])
    lines = [
        (
            f"{result['model']} at batch {result['batch_size']} on {jax.default_backend()}: "
            f"{result['step_ms']:.1f} ms per step (median, untraced); ops ran {ran:.1f} ms per step"
        ),
        "",
        f"{'layer':32s} " + " ".join(f"{s:>8s}" for s in _STAGES) + "  (span, ms per step; ?: no metadata)",
    ]
    for layer, stages in sorted(by_layer.items(), key=lambda item: -sum(item[1].values())):
        lines.append(f"{layer:32s} " + " ".join(f"{stages[s]:8.2f}" for s in _STAGES))
    lines += ["", f"{'span':>7s} {'ran':>7s}  {'pass':8s} {'layer':24s} {'op':28s} shape"]
    for op, ran, span in result["ops"][:top]:
        lines.append(f"{span:7.2f} {ran:7.2f}  {op.stage:8s} {op.layer:24s} {op.name:28s} {op.shape}")
    return "\n".join(lines)
