"""The benchmark suite: every seed model at its recipe batch size and at a large one, jaxae against PyTorch.

For each (model, batch size) the runners of :mod:`benchmarks.throughput`
are built (compile times recorded apart, :mod:`benchmarks.timing`), the number of steps per timed call
is set so that a jaxae step call lasts about ``target_seconds``, and the
runners are timed in turns, ``repeats`` rounds; each column is the median.
Throughput is turned into FLOP/s with :func:`~benchmarks.hardware.step_flops`
and divided by the matmul peak measured in the same run. The results,
with the hardware, versions and command, are written after every case, so
an interrupted run keeps what it measured.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import jax
from tqdm.auto import tqdm

from benchmarks import end_to_end, hardware, throughput
from benchmarks.environment import describe
from benchmarks.timing import Runner, median_rates, time_interleaved
from jaxae import cpu, models
from jaxae.errors import InputError
from jaxae.experiments import Stage, recipe_stages

RUNNERS = ("jaxae_step", "jaxae_search", "jaxae_fused", "jaxae_step_bf16", "jaxae_fused_bf16", "torch_eager",
           "torch_compile", "keras")
DEFAULT_RUNNERS = ("jaxae_step", "jaxae_fused", "torch_eager", "torch_compile")
FLOAT32_JAXAE = ("jaxae_step", "jaxae_fused")  # the speed-up over PyTorch compares like with like: float32
LARGE_BATCH = 1024
MAX_STEPS_PER_CALL = 50
CALIBRATION_CALLS = 3
SUITE = "train_throughput"


def _build(name: str, stage: Stage, batch_size: int, steps: int) -> Runner:
    config, transform = stage.config, stage.transform
    if name.endswith("_bf16"):
        config = dataclasses.replace(config, compute_dtype="bfloat16")
    if name == "jaxae_step_bf16":
        return throughput.jaxae_step_runner(config, transform, batch_size, steps, name)
    if name.startswith("jaxae_fused"):
        return throughput.jaxae_fused_runner(config, transform, batch_size, steps, name)
    if name == "jaxae_search":
        return throughput.jaxae_search_runner(config, transform, batch_size, steps)
    if name == "keras":
        return throughput.keras_runner(config, transform, batch_size, steps)
    return throughput.torch_runner(config, transform, batch_size, steps, compiled=name == "torch_compile")


def measure_case(stage: Stage, batch_size: int, runners: Sequence[str], *, repeats: int, target_seconds: float,
                 peak_flops: float) -> dict:
    """One model at one batch size: every runner's median images/s, compile time, memory and share of the peak."""
    step = throughput.jaxae_step_runner(stage.config, stage.transform, batch_size, 1)
    calls_per_second = median_rates(time_interleaved({"jaxae_step": step}, 1, CALIBRATION_CALLS), 1)["jaxae_step"]
    steps = max(1, min(MAX_STEPS_PER_CALL, round(target_seconds * calls_per_second)))
    built, errors = {"jaxae_step": step}, {}
    for name in [name for name in runners if name != "jaxae_step"]:
        try:
            built[name] = _build(name, stage, batch_size, steps)
        except Exception as error:  # torch.compile needs a working toolchain: record why a column is empty
            if not name.startswith("torch"):
                raise
            errors[name] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    seconds = time_interleaved(built, steps, repeats)
    rates = median_rates(seconds, steps * batch_size)
    flops_per_image = hardware.step_flops(stage.config, batch_size) / batch_size
    case = {
        "model": stage.config.model,
        "batch_size": batch_size,
        "recipe_batch_size": stage.config.batch_size,
        "steps_per_call": steps,
        "flops_per_image": flops_per_image,
        "runners": {},
        "errors": errors,
    }
    for name, runner in built.items():
        case["runners"][name] = {
            "images_per_s": rates[name],
            "seconds": seconds[name],
            "compile_seconds": runner.compile_seconds,
            "memory_bytes": runner.memory_bytes,
            "fraction_of_peak": rates[name] * flops_per_image / peak_flops,
        }
    jaxae_best = max(v["images_per_s"] for k, v in case["runners"].items() if k in FLOAT32_JAXAE)
    rate = {name: runner["images_per_s"] for name, runner in case["runners"].items()}
    if "torch_eager" in rate:
        case["speedup_vs_torch_eager"] = jaxae_best / rate["torch_eager"]
        if "jaxae_search" in rate:  # fit's default on a CPU
            case["search_speedup_vs_torch_eager"] = rate["jaxae_search"] / rate["torch_eager"]
    if "keras" in rate:
        case["speedup_vs_keras"] = max(jaxae_best, rate.get("jaxae_search", 0)) / rate["keras"]
    return case


def run(
    model_names: Sequence[str] | None = None,
    batch_sizes: Sequence[int | str] = ("recipe", LARGE_BATCH),
    runners: Sequence[str] = DEFAULT_RUNNERS,
    *,
    repeats: int = 5,
    target_seconds: float = 1.0,
    e2e_epochs: int = 10,
    e2e_quick: bool = False,
    peak_size: int = 4096,
    data_dir: str | None = None,
    raw_data: str | None = None,
    output: str | Path | None = None,
    progress: bool = True,
    retain_host_memory: bool = True,
) -> dict:
    """Runs the suite; returns the results and, with ``output``, writes them there as JSON after every case.

    Args:
      model_names: seed models (default: all nine; the VAEs on request).
      batch_sizes: ints, or "recipe" for each model's recipe batch size.
      runners: a subset of :data:`RUNNERS`; PyTorch ones are dropped, with a
        note, when PyTorch is not installed.
      repeats: timed rounds per case (the median is reported).
      target_seconds: about how long one timed jaxae step call lasts.
      e2e_epochs: epochs of E1's CNN end to end in both frameworks; 0 skips it.
      e2e_quick: the end-to-end run on the recipe's quick variant (smoke runs).
      peak_size: side of the square float32 matmul that measures the peak
        (smaller for smoke runs; too small to reach the peak).
      retain_host_memory: on CPU, keep freed host memory for reuse
        (:func:`jaxae.cpu.retain_freed_memory`), for both frameworks' runners.
    """
    stages = recipe_stages()
    model_names = list(model_names or stages)
    for name in model_names:
        models.spec(name)  # a clear error for an unknown model
    unknown = set(runners) - set(RUNNERS)
    if unknown or "jaxae_step" not in runners:
        raise InputError(f"runners must include jaxae_step and come from {RUNNERS}; got {list(runners)}")
    for size in batch_sizes:
        if size != "recipe" and not (isinstance(size, int) and size > 0):
            raise InputError(f"a batch size is a positive int or 'recipe', not {size!r}")
    has_torch = throughput.torch_installed()
    notes = []
    if not has_torch and any(r.startswith("torch") for r in runners):
        notes.append("PyTorch is not installed (pip install 'jaxae[torch]'): no PyTorch columns")
        runners = [r for r in runners if not r.startswith("torch")]

    # Before any runner, so that PyTorch's columns run with the same malloc settings as jaxae's steps.
    on_cpu = jax.default_backend() == "cpu"
    environment = describe() | {"host_memory_retained": on_cpu and retain_host_memory and cpu.retain_freed_memory()}
    if on_cpu:
        environment["cpu_dispatch"] = "inline" if cpu.dispatch_is_inline() else "async"
    peak = {"size": peak_size, "jax_flops_per_s": hardware.jax_matmul_peak(peak_size)}
    if has_torch:
        import torch

        device = throughput.torch_device()
        environment.update(torch_device=str(device), torch_threads=torch.get_num_threads())
        peak["torch_flops_per_s"] = hardware.torch_matmul_peak(device, peak_size)
    results = {
        "suite": SUITE,
        "environment": environment,
        "settings": {"repeats": repeats, "target_seconds": target_seconds, "runners": list(runners),
                     "batch_sizes": list(batch_sizes), "e2e_epochs": e2e_epochs},
        "notes": notes,
        "matmul_peak": peak,
        "cases": [],
    }
    cases = []
    for name in model_names:
        recipe_batch = stages[name].config.batch_size
        sizes = dict.fromkeys(recipe_batch if size == "recipe" else size for size in batch_sizes)
        cases += [(name, size) for size in sizes]

    def save():
        if output is not None:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            Path(output).write_text(json.dumps(results, indent=1) + "\n")

    for name, batch_size in tqdm(cases, desc="benchmark", unit="case", disable=not progress):
        case = measure_case(stages[name], batch_size, runners, repeats=repeats, target_seconds=target_seconds,
                            peak_flops=peak["jax_flops_per_s"])
        results["cases"].append(case)
        save()
        if progress:
            tqdm.write(case_summary(case))
    if e2e_epochs:
        frameworks = ("jax", "torch") if has_torch and any(r.startswith("torch") for r in runners) else ("jax",)
        results["end_to_end"] = end_to_end.e1_cnn(e2e_epochs, frameworks=frameworks, quick=e2e_quick,
                                                  data_dir=data_dir, raw_data=raw_data, progress=progress,
                                                  retain_host_memory=retain_host_memory)
        save()
    return results


def case_summary(case: dict) -> str:
    columns = ", ".join(f"{name} {r['images_per_s']:,.0f}" for name, r in case["runners"].items())
    speedup = case.get("speedup_vs_torch_eager")
    return f"{case['model']} @ {case['batch_size']}: {columns} images/s" + (f"; {speedup:.2f}x torch eager" if speedup else "")
