"""What a new process waits for before its first trained step: jaxae cold and warm, beside PyTorch.

For each model, fresh processes, one at a time:

* ``jax cold``: jaxae with an empty compilation cache;
* ``jax warm``: the same again, the cache now holding what the cold process compiled;
* ``torch``: the seed's PyTorch module in eager mode.

Each reports its imports (jaxae's training modules, or ``torch``) and its first step: from the
imports to the end of the first optimiser step at the recipe batch, building and
initialising the model included (the suite's ``jaxae_step`` and ``torch_eager`` runners,
:mod:`benchmarks.throughput`). ``process`` is the whole process as the caller waits for it,
the interpreter's start included. ``python -m benchmarks startup`` prints the table.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KINDS = ("jax cold", "jax warm", "torch")
_REPOSITORY = str(Path(__file__).resolve().parents[1])


def measure(model: str, repeats: int = 1) -> dict[str, dict[str, float]]:
    """``{kind: {"import": s, "first_step": s, "process": s}}`` for ``model``, medians over ``repeats`` rounds."""
    from jaxae.experiments import recipe_stage

    recipe_stage(model)  # an unknown model's error before any process starts
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
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_REPOSITORY, env.get("PYTHONPATH")]))  # finds `benchmarks`
    if cache is not None:
        env["JAXAE_COMPILATION_CACHE"] = cache
    start = time.perf_counter()
    imports = "torch" if framework == "torch" else "jaxae.models, jaxae.train"
    code = _WORKER.format(imports=imports, framework=framework, model=model)
    done = subprocess.run([sys.executable, "-c", code], env=env, check=False, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"the {framework} start-up process of {model} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.splitlines()[-1]), "process": seconds}


# A fresh interpreter times its imports first (torch's, or what a jaxae trainer needs), then the step.
_WORKER = """import json, time
start = time.perf_counter()
import {imports}
imported = time.perf_counter()
from benchmarks.startup import first_step
print(json.dumps({{"import": imported - start, "first_step": first_step("{framework}", "{model}")}}))
"""


def first_step(framework: str, model: str) -> float:
    """Seconds from here to the end of one optimiser step of ``model`` at its recipe batch, building included."""
    from benchmarks import throughput
    from jaxae import compilation_cache
    from jaxae.experiments import recipe_stage

    start = time.perf_counter()
    compilation_cache.enable()
    stage = recipe_stage(model)
    runner = throughput.torch_runner if framework == "torch" else throughput.jaxae_step_runner
    runner(stage.config, stage.transform, stage.config.batch_size, steps=1)
    return time.perf_counter() - start
