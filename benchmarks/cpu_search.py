"""What the CPU-path search chooses for each seed model and the Keras tutorial's autoencoders, and what it costs.

    python -m benchmarks cpu-search [--runs MODEL:BATCH ...] [--output F]

For each run, the search that ``fit`` makes at its first step on a CPU
(:func:`jaxae.cpu.search.fastest`, nothing remembered), on synthetic batches: the
candidates it compiled and their step times (each its fastest round's), the ones its budget left untried,
its choice, and the seconds it took, the default's compilation and first step included.
"""

from __future__ import annotations

import dataclasses
import functools

from benchmarks import throughput
from benchmarks.keras_models import TUTORIAL, register_tutorial_models
from jaxae.cpu import search
from jaxae.experiments import recipe_stages
from jaxae.train import TrainConfig, Trainer
from jaxae.train.engine import chunks_may_vary, compile_choice

LARGE_BATCH = 1024
TUTORIAL_BATCH = 256


def default_runs() -> list[tuple[str, int]]:
    """Every trained seed model at its recipe batch and at 1024, then the tutorial's models at 256."""
    runs = []
    for name, stage in recipe_stages().items():
        if stage.config.loss != "sse_plus_kl":  # the nine trained seed models; the VAEs share their networks
            runs += [(name, stage.config.batch_size), (name, LARGE_BATCH)]
    return runs + [(name, TUTORIAL_BATCH) for name in TUTORIAL]


def _stage_config(model: str) -> tuple[TrainConfig, str]:
    stages = recipe_stages()
    if model in stages:
        return stages[model].config, stages[model].transform
    return TrainConfig(model, "binary_cross_entropy", "adam", 1e-3, epochs=1, batch_size=TUTORIAL_BATCH), "to_tensor"


def measure(model: str, batch_size: int) -> dict:
    """The search's choice for ``model`` at ``batch_size``, what it measured and what it cost."""
    register_tutorial_models()
    config, transform = _stage_config(model)
    trainer = Trainer.create(dataclasses.replace(config, batch_size=batch_size))
    batch = throughput.device_batches(config, transform, batch_size, 1)[0]
    state = trainer.init_state()

    default = search.Choice("jaxae", trainer.microbatch_size)
    choices = search.candidates(default, batch_size, chunks_may_vary(trainer, state))
    choice, _, report = search.fastest(functools.partial(compile_choice, trainer), choices, state, batch)
    return {"choice": str(choice), "default": str(default), **report}


def report(results: dict) -> str:
    lines = ["| model @ batch | choice | step (ms) per candidate | untried | search |", "| --- | --- | --- | --- | ---: |"]
    for run, r in results.items():
        steps = "; ".join(f"{name}: {ms:.3g}" for name, ms in r["step_ms"].items()) or "—"
        lines.append(f"| {run} | {r['choice']} | {steps} | {', '.join(r['untried']) or '—'} | {r['seconds']:.1f} s |")
    return "\n".join(lines)
