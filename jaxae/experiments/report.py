"""The comparison table: published number | PyTorch rerun | jaxae, per headline number of an experiment."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jaxae.experiments.recipe import Recipe

ACCURACY_TOLERANCE = 0.015  # 1.5 points
LOSS_TOLERANCE = 0.05  # 5 %


def _values(summary: dict[str, Any] | None, key: str) -> list[float]:
    if summary is None:
        return []
    return [run[key] for run in summary["runs"].values() if key in run]


def _timed(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """``summary`` with only the seeds that recorded where their time went, whose wall times are the comparable ones.

    Runs record their parts (``data_seconds`` and the per-stage ones); seeds without them, and
    seeds resumed from a checkpoint (``restored_epochs``), keep their numbers but not their wall times.
    """
    if summary is None:
        return None
    timed = {seed: run for seed, run in summary["runs"].items() if "data_seconds" in run and not run.get("restored_epochs")}
    return {**summary, "runs": timed}


def format_values(values: list[float], kind: str) -> str:
    """``mean ± std (n=…)`` of ``values`` (accuracies in percent, seconds to 0.1 s, losses to 4 digits); "—" for none."""
    if not values:
        return "—"
    scale, digits = {"accuracy": (100, 2), "seconds": (1, 1)}.get(kind, (1, 4))
    mean = np.mean(values) * scale
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {np.std(values, ddof=1) * scale:.{digits}f} (n={len(values)})"


def tolerance(kind: str, reference_value: float) -> float:
    """The single-seed tolerance: 1.5 accuracy points, or 5 % of a loss."""
    return ACCURACY_TOLERANCE if kind == "accuracy" else LOSS_TOLERANCE * abs(reference_value)


def agreement(values: list[float], reference: list[float], kind: str) -> str:
    """Whether ``values`` agree with ``reference``: within twice their pooled seed spread, or the tolerance."""
    if not values or not reference:
        return "—"
    difference = abs(np.mean(values) - np.mean(reference))
    spread = 0.0
    if len(values) > 1 and len(reference) > 1:
        spread = 2 * math.sqrt(np.var(values, ddof=1) + np.var(reference, ddof=1))
    allowed = max(spread, tolerance(kind, float(np.mean(reference))))
    return "yes" if difference <= allowed else f"no (Δ {difference:.3g} > {allowed:.3g})"


def comparison_table(recipe: Recipe, summaries: dict[str, dict[str, Any]]) -> str:
    """Markdown: each reference number beside the PyTorch rerun and jaxae (mean ± std over seeds).

    ``summaries`` maps "jax" and/or "torch" to the summary
    :func:`jaxae.experiments.reproduce` writes. Accuracies are in percent.
    """
    jax_summary, torch_summary = summaries.get("jax"), summaries.get("torch")
    lines = [
        f"**{recipe.name}: {recipe.title}**" + _variant_note(summaries),
        "",
        "| number | published (meaning) | comparable | PyTorch rerun | jaxae | jaxae ≈ PyTorch | jaxae ≈ published |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for ref in recipe.references:
        jax_values, torch_values = _values(jax_summary, ref.key), _values(torch_summary, ref.key)
        published = "—" if ref.published is None else format_values([ref.published], ref.kind)
        comparable = "—" if ref.target is None else format_values([ref.target], ref.kind)
        lines.append(
            f"| {ref.label} | {published} ({ref.note}) | {comparable} | {format_values(torch_values, ref.kind)} | "
            f"{format_values(jax_values, ref.kind)} | {agreement(jax_values, torch_values, ref.kind)} | "
            f"{agreement(jax_values, [ref.target] if ref.target is not None else [], ref.kind)} |"
        )
    referenced = {ref.key for ref in recipe.references}
    measured = [s for s in (jax_summary, torch_summary) if s is not None]
    extra = sorted({k for s in measured for run in s["runs"].values() for k in run} - referenced, key=_natural)
    for key in (k for k in extra if "/" in k and "@" not in k and not k.endswith("seconds")):  # "@": one epoch of a curve
        kind = "accuracy" if "accuracy" in key else "loss"
        jax_values, torch_values = _values(jax_summary, key), _values(torch_summary, key)
        lines.append(
            f"| {key} | — | — | {format_values(torch_values, kind)} | {format_values(jax_values, kind)} | "
            f"{agreement(jax_values, torch_values, kind)} | — |"
        )
    for key, label in [*((f"{stage.name}/seconds", f"{stage.name}: wall time (s)") for stage in recipe.stages),
                       ("seconds", "whole seed: wall time (s)")]:
        jax_values, torch_values = _values(_timed(jax_summary), key), _values(_timed(torch_summary), key)
        if jax_values or torch_values:
            lines.append(
                f"| {label} | — | — | {format_values(torch_values, 'seconds')} | {format_values(jax_values, 'seconds')} | — | — |"
            )
    return "\n".join(lines)


def timing_table(recipe: Recipe, summaries: dict[str, dict[str, Any]]) -> str:
    """Markdown: where a seed's wall time goes, PyTorch rerun against jaxae (mean seconds per seed).

    Only seeds that recorded their parts count (see :func:`_timed`).

    Parts: reading the data; per stage, setting up (model, optimiser, restoring, placing data,
    the last save), the first step (jaxae: compilation), the other training steps, evaluation and
    checkpoints; and the rest (start-up, figures).
    """
    parts = [("data_seconds", "reading the data")]
    for stage in recipe.stages:
        parts += [
            (f"{stage.name}/setup_seconds", f"{stage.name}: set-up"),
            (f"{stage.name}/train_first_step_seconds", f"{stage.name}: first step (compilation)"),
            (f"{stage.name}/train_seconds", f"{stage.name}: training steps"),
            (f"{stage.name}/eval_seconds", f"{stage.name}: evaluation"),
            (f"{stage.name}/checkpoint_seconds", f"{stage.name}: checkpoints"),
        ]
    columns = {framework: _timed(summaries.get(framework)) for framework in ("torch", "jax")}

    def mean(summary, key):
        values = _values(summary, key)
        return float(np.mean(values)) if values else None

    def row(label, values):
        cells = " | ".join("—" if value is None else f"{value:.1f}" for value in values)
        return f"| {label} | {cells} |"

    lines = [f"**{recipe.name}: seconds per seed**", "", "| part | PyTorch rerun | jaxae |", "| --- | ---: | ---: |"]
    totals = {framework: mean(summary, "seconds") for framework, summary in columns.items()}
    accounted = dict.fromkeys(columns, 0.0)
    for key, label in parts:
        values = [mean(summary, key) for summary in columns.values()]
        if key.endswith("train_seconds"):  # the first step is reported apart
            first = [mean(summary, key.replace("train_seconds", "train_first_step_seconds")) for summary in columns.values()]
            values = [None if v is None else v - (f or 0.0) for v, f in zip(values, first)]
        for framework, value in zip(columns, values):
            accounted[framework] += value or 0.0
        if any(value for value in values):
            lines.append(row(label, values))
    rest = [None if totals[f] is None else totals[f] - accounted[f] for f in columns]
    lines.append(row("start-up, figures", rest))
    lines.append(row("**whole seed**", totals.values()))
    return "\n".join(lines)


def against_published(recipe: Recipe, numbers: dict[str, float]) -> str:
    """Markdown: one run's headline ``numbers`` beside the published ones they measure (examples print it).

    >>> from jaxae import experiments
    >>> print(against_published(experiments.get("E1").recipe, {"cnn/test_accuracy": 0.6123}).splitlines()[2])
    | CNN test accuracy, epoch 10 | 60.44 (exact, over 10,000 test images (0.6100 after epoch 9)) | 60.44 | 61.23 | yes |
    """
    lines = [
        "| number | published (meaning) | comparable | this run | agrees |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for ref in recipe.references:
        if ref.key in numbers:
            target = [] if ref.target is None else [ref.target]
            lines.append(
                f"| {ref.label} | {format_values([ref.published], ref.kind)} ({ref.note}) | {format_values(target, ref.kind)} | "
                f"{format_values([numbers[ref.key]], ref.kind)} | {agreement([numbers[ref.key]], target, ref.kind)} |"
            )
    return "\n".join(lines)


def _natural(key: str):
    """Sort key that puts "x@2" before "x@10"."""
    name, _, epoch = key.partition("@")
    return (name, int(epoch) if epoch.isdigit() else 0)


def _variant_note(summaries: dict[str, dict[str, Any]]) -> str:
    """What sets the summaries apart from the full recipe, per framework where they differ."""
    def variant(summary):
        notes = ["quick variant"] if summary.get("quick") else []
        if summary.get("epochs") and not summary.get("quick"):
            notes.append(f"cut to {summary['epochs']} epochs")
        if summary.get("microbatch_size"):
            notes.append(f"jaxae's gradient chunks of {summary['microbatch_size']}")
        if summary.get("kl_weight") is not None:
            notes.append(f"KL weight β = {summary['kl_weight']:g}")
        if summary.get("kl_warmup_epochs"):
            notes.append(f"KL warm-up over {summary['kl_warmup_epochs']} epochs")
        return notes

    per_framework = {framework: variant(summary) for framework, summary in summaries.items()}
    if len({tuple(notes) for notes in per_framework.values()}) > 1:
        labels = {"jax": "jaxae", "torch": "PyTorch rerun"}
        notes = [f"{labels[framework]} {note}" for framework, notes in per_framework.items() for note in notes]
    else:
        notes = next(iter(per_framework.values()), [])
    return f" ({'; '.join(notes)})" if notes else ""
