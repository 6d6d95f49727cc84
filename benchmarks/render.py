"""``BENCHMARKS.md`` and its speed-up plot, from the suite's result files (one per device)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from benchmarks import explore, startup
from benchmarks.suite import FLOAT32_JAXAE, RUNNERS, SUITE
from jaxae.errors import InputError
from jaxae.experiments.runner import save_figure

_HEADERS = {"jaxae_step": "jaxae step", "jaxae_search": "jaxae step, searched", "jaxae_fused": "jaxae fused",
            "jaxae_step_bf16": "jaxae step bf16", "jaxae_fused_bf16": "jaxae fused bf16", "torch_eager": "torch eager",
            "torch_compile": "torch.compile", "keras": "Keras"}
_FRAMEWORKS = {"jax": "jaxae", "torch": "PyTorch eager"}


def _result_files(folder: str | Path) -> list[dict]:
    """Every result file in ``folder``, by name, each with its ``file`` name added."""
    return [{**json.loads(path.read_text()), "file": path.name} for path in sorted(Path(folder).glob("*.json"))]


def _versions(environment: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in environment["versions"].items() if k in ("jax", "jaxlib", "flax", "torch"))


def _number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _portable(command: str) -> str:
    """The command with this machine's data dir shown as ``D``, as the docs write it."""
    return re.sub(r"(--data-dir[ =])\S+", r"\1D", command)


def device_section(result: dict) -> str:
    """One device's Markdown: machine, command, the throughput table and the end-to-end run."""
    env, peak = result["environment"], result["matmul_peak"]
    versions = _versions(env)
    runners = [r for r in RUNNERS if r in result["settings"]["runners"]]
    lines = [
        f"## {env['device']} ({result['file']})",
        "",
        f"{env['cpu']}, {env['cpu_count']} CPU threads, backend `{env['backend']}`"
        + (f", PyTorch on `{env['torch_device']}` with {env['torch_threads']} threads" if "torch_device" in env else "")
        + f"; {versions}, Python {env['python']}."
        + (" Freed host memory kept for reuse (`jaxae.cpu.retain_freed_memory`), for both frameworks." if env.get("host_memory_retained") else "")
        + (" XLA:CPU ran each computation on the calling thread (`--inline-dispatch`)." if env.get("cpu_dispatch") == "inline" else ""),
        "",
        f"Command: `{_portable(env['command'])}`. Measured matmul peak ({peak['size']}² float32): "
        f"JAX {peak['jax_flops_per_s'] / 1e9:,.0f} GFLOP/s"
        + (f", PyTorch {peak['torch_flops_per_s'] / 1e9:,.0f} GFLOP/s" if "torch_flops_per_s" in peak else "")
        + f". Images/s: median of {result['settings']['repeats']} rounds, runners interleaved, after warm-up.",
        *[f"Note: {note}." for note in result.get("notes", [])],
        "",
        "| model | batch | " + " | ".join(_HEADERS[r] for r in runners)
        + " | best jaxae / torch eager | MFLOP / image | % of peak: best jaxae, torch eager"
        + " | compile s: " + ", ".join(_HEADERS[r] for r in runners) + " | jaxae step memory, MB |",
        "| --- | ---: |" + " ---: |" * len(runners) + " ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in result["cases"]:
        got = case["runners"]
        best = max((v for k, v in got.items() if k in FLOAT32_JAXAE), key=lambda v: v["images_per_s"])
        batch = f"{case['batch_size']}" + (" (recipe)" if case["batch_size"] == case["recipe_batch_size"] else "")
        shares = [best["fraction_of_peak"], got.get("torch_eager", {}).get("fraction_of_peak")]
        memory = got["jaxae_step"]["memory_bytes"]
        lines.append(
            f"| {case['model']} | {batch} | "
            + " | ".join(_number(got[r]["images_per_s"]) if r in got else "failed" for r in runners)
            + f" | {_number(case.get('speedup_vs_torch_eager'), 2)} | {case['flops_per_image'] / 1e6:,.1f}"
            + " | " + ", ".join("—" if s is None else f"{100 * s:.0f}%" for s in shares)
            + " | " + ", ".join(_number(got[r]["compile_seconds"], 1) if r in got else "—" for r in runners)
            + f" | {_number(None if memory is None else memory / 2**20, 1)} |"
        )
    errors = {(c["model"], c["batch_size"], r): e for c in result["cases"] for r, e in c.get("errors", {}).items()}
    if errors:
        lines += ["", "Failed runners:", *[f"- {m} @ {b}, {r}: `{e}`" for (m, b, r), e in errors.items()]]
    e2e = result.get("end_to_end")
    if e2e and "skipped" in e2e:
        lines += ["", f"End to end, {e2e['stage']}: skipped ({e2e['skipped']})."]
    elif e2e:
        fw = e2e["frameworks"]
        lines += ["", f"End to end, {e2e['stage']} ({e2e['epochs']} epochs on {e2e['train_images']:,} images, "
                  f"test evaluation and checkpoints every epoch; reading the split, apart: {e2e['load_seconds']:.1f} s): "
                  + "; ".join(f"{_FRAMEWORKS[name]} {v['seconds']:.1f} s (test accuracy {v['test_accuracy']:.4f} on the data dir's CIFAR-10)" for name, v in fw.items())
                  + (f"; PyTorch / jaxae time: {fw['torch']['seconds'] / fw['jax']['seconds']:.2f}" if len(fw) == 2 else "")
                  + "."]
    return "\n".join(lines)


_MEASUREMENTS = {  # a result file's benchmark: its section's title, how it measured, its table
    "startup": ("Start-up", ("Fresh processes one at a time; a first step counts from the imports to the end of one "
                "optimiser step at the recipe batch, building the model included; cold: an empty compilation cache, "
                "warm: the cache the cold process filled."), startup.report),
    "explore": ("Explorer answers", ("`jaxae explore`'s server on the shipped weights, in the measuring process; each "
                "request timed from sending to the answer's last byte, over HTTP on 127.0.0.1, at random points and "
                "image pairs."), explore.report),
}


def measurement_section(result: dict) -> str:
    """Markdown for a ``python -m benchmarks startup`` or ``python -m benchmarks explore`` result file."""
    title, method, table = _MEASUREMENTS[result["benchmark"]]
    env = result["environment"]
    return "\n".join([
        f"## {title}, {env['device']} ({result['file']})",
        "",
        (f"{env['cpu']}, {env['cpu_count']} CPU threads; {_versions(env)}, Python {env['python']}. "
         f"Command: `{_portable(env['command'])}`. {method}"),
        "",
        table(result["results"]),
    ])


def speedup_figure(results: list[dict]) -> Figure:
    """Best jaxae over PyTorch eager, per model and batch size, one bar colour per results file (log scale)."""
    labels = list(dict.fromkeys(f"{c['model']} @ {c['batch_size']}" for r in results for c in r["cases"]))
    figure = Figure(figsize=(8, 0.35 * len(labels) * max(1, len(results)) + 1.2), layout="constrained")
    axis = figure.subplots()
    height = 0.8 / max(1, len(results))
    for i, result in enumerate(results):
        speedups = {f"{c['model']} @ {c['batch_size']}": c.get("speedup_vs_torch_eager") for c in result["cases"]}
        values = [speedups.get(label) or np.nan for label in labels]
        label = f"{result['environment']['device']} ({result['file']})"
        axis.barh(np.arange(len(labels)) + i * height, values, height, label=label)
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_xscale("log")
    axis.set_yticks(np.arange(len(labels)) + height * (len(results) - 1) / 2, labels)
    axis.invert_yaxis()
    axis.set_xlabel("train throughput, best jaxae / PyTorch eager")
    axis.legend(loc="lower right")
    return figure


def render(folder: str | Path, markdown: str | Path, plot: str | Path | None = None) -> str:
    """Writes ``markdown`` (and ``plot``, a PNG) from the results in ``folder``; returns the Markdown."""
    files = _result_files(folder)
    results = [data for data in files if data.get("suite") == SUITE]
    if not results:
        raise InputError(f"no {SUITE} results in {folder}; run `python -m benchmarks` first")
    parts = [
        "# Benchmarks",
        "",
        (f"Generated by `python -m benchmarks render` from `{Path(folder).name}/*.json`; each section is one run of "
        "`python -m benchmarks` on one device, then the measurements of `python -m benchmarks startup` and `python -m benchmarks explore`. "
        "What the CPU path does, with the measurements behind each choice: `docs/performance.md`."),
    ]
    if plot is not None:
        save_figure(speedup_figure(results), plot)
        parts += ["", f"![speed-up per model]({Path(plot).name})"]
    parts += ["", *[device_section(r) + "\n" for r in results]]
    parts += [measurement_section(r) + "\n" for r in files if r.get("benchmark") in _MEASUREMENTS]
    text = "\n".join(parts)
    Path(markdown).write_text(text)
    return text
