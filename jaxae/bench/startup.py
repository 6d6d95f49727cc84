"""What a new process waits for before its first trained step: jaxae cold and warm, beside PyTorch.

For each model, fresh processes, one at a time:

* ``jax cold``: jaxae with an empty compilation cache;
* ``jax warm``: the same again, the cache now holding what the cold process compiled;
* ``torch``: the seed's PyTorch module in eager mode.

Each reports its imports (jaxae's training modules, or ``torch``) and its first step: from the
imports to the end of the first optimiser step at the recipe batch, building and
initialising the model included (the suite's ``jaxae_step`` and ``torch_eager`` runners,
:mod:`jaxae.bench.throughput`). ``process`` is the whole process as the caller waits for it,
the interpreter's start included. ``jaxae bench startup`` prints the table.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from jaxae.errors import InputError

KINDS = ("jax cold", "jax warm", "torch")


def measure(model: str, repeats: int = 1) -> dict[str, dict[str, float]]:
    """``{kind: {"import": s, "first_step": s, "process": s}}`` for ``model``, medians over ``repeats`` rounds."""
    from jaxae.bench.suite import recipe_stages

    if model not in recipe_stages():
        raise InputError(f"unknown model {model!r}; one of {sorted(recipe_stages())}")
    rounds = {kind: [] for kind in KINDS}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="jaxae-startup-") as cache:
            rounds["jax cold"].append(_process("jax", model, cache))
            rounds["jax warm"].append(_process("jax", model, cache))
        rounds["torch"].append(_process("torch", model, cache=None))
    return {kind: {key: statistics.median(r[key] for r in results) for key in results[0]}
            for kind, results in rounds.items()}


def report(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """A Markdown table: per model, jaxae's first step cold and warm, PyTorch's, and the imports."""
    rows = [("| model | jaxae first step, cold | warm | PyTorch first step | warm / PyTorch | imports: jaxae, torch "
            "| process, warm |"), "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for model, kinds in results.items():
        cold, warm, torch = kinds["jax cold"], kinds["jax warm"], kinds["torch"]
        rows.append(f"| {model} | {cold['first_step']:.1f} s | {warm['first_step']:.1f} s | {torch['first_step']:.1f} s | "
                    f"{warm['first_step'] / torch['first_step']:.2f} | {warm['import']:.1f}, {torch['import']:.1f} s | "
                    f"{warm['process']:.1f} s |")
    return "\n".join(rows)


def _process(framework: str, model: str, cache: str | None) -> dict[str, float]:
    env = {key: value for key, value in os.environ.items() if key != "JAX_COMPILATION_CACHE_DIR"}
    if cache is not None:
        env["JAXAE_COMPILATION_CACHE"] = cache
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", __name__, framework, model], env=env, check=False,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"the {framework} start-up process of {model} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.splitlines()[-1]), "process": seconds}


def _first_step(framework: str, model: str) -> dict[str, float]:
    """Run in a fresh process: the imports, then one step of ``model`` at its recipe batch."""
    start = time.perf_counter()
    if framework == "torch":
        import torch  # noqa: F401 -- its import is PyTorch's; jaxae's below are not

        imported = time.perf_counter()
    from jaxae import compilation_cache
    from jaxae.bench import suite, throughput

    if framework != "torch":
        imported = time.perf_counter()
    ready = time.perf_counter()
    compilation_cache.enable()
    stage = suite.recipe_stages()[model]
    batch_size = stage.config.batch_size
    if framework == "torch":
        throughput.torch_runner(stage.config, stage.transform, batch_size, steps=1)
    else:
        throughput.jaxae_step_runner(stage.config, stage.transform, batch_size, steps=1)
    return {"import": imported - start, "first_step": time.perf_counter() - ready}


if __name__ == "__main__":
    print(json.dumps(_first_step(*sys.argv[1:3])))
