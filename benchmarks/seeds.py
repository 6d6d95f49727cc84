"""Several seeds of a model's train step: one after the other, or as one vmapped program.

For each model at its recipe batch, ``seeds`` train states (seeds 0, 1, ...) and as many
batches of synthetic images on the device; "apart" dispatches the jitted step once per seed,
"together" dispatches the step ``vmap``-ed over the stacked states and batches
(:func:`jaxae.train.fit_seeds`' step). Timed in turns, median of ``repeats`` rounds after a
warm-up; images/s count every seed's images; ``python -m benchmarks seeds`` prints it. Step time only:
``jaxae reproduce --seeds-mode apart|together`` measures whole runs.
"""

from __future__ import annotations

import dataclasses

import jax

from benchmarks.throughput import device_batches
from benchmarks.timing import build_runner, median_rates, time_interleaved
from jaxae.errors import InputError
from jaxae.experiments import recipe_stage
from jaxae.train import Trainer, compile_train_step, stack_seeds


def measure(model: str, seeds: int = 3, repeats: int = 5) -> dict[str, float]:
    """``{"apart": images/s, "together": images/s}`` of ``seeds`` seeds of ``model`` at its recipe batch."""
    stage = recipe_stage(model)
    if seeds < 2 or repeats < 1:
        raise InputError("seeds must be at least 2 and repeats positive")
    batch_size = stage.config.batch_size
    trainers = [Trainer.create(dataclasses.replace(stage.config, seed=seed)) for seed in range(seeds)]
    batches = device_batches(stage.config, stage.transform, batch_size, seeds)
    steps = max(1, round(3000 / (batch_size * seeds)))

    def apart():
        step, states = compile_train_step(trainers[0]), [t.init_state() for t in trainers]

        def run(n: int) -> None:
            for _ in range(n):
                for k in range(seeds):
                    states[k], _ = step(states[k], batches[k])
            jax.block_until_ready(states)

        return run, None

    def together():
        step = compile_train_step(trainers[0], seeds=True)
        state, batch = [stack_seeds([t.init_state() for t in trainers])], stack_seeds(batches)

        def run(n: int) -> None:
            for _ in range(n):
                state[0], _ = step(state[0], batch)
            jax.block_until_ready(state[0])

        return run, None

    runners = {"apart": build_runner(apart, "apart", steps), "together": build_runner(together, "together", steps)}
    return median_rates(time_interleaved(runners, steps, repeats), steps * batch_size * seeds)
