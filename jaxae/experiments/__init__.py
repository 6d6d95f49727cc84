"""The experiments as recipes, and ``reproduce``: train, draw the figures, compare.

The five seed experiments E1-E5; "E5-align-corners", E5 with the upsampling of
the PyTorch version the lecture ran; "E3-VAE" and "E2-VAE", the variational
versions of E3's and E2's networks trained with their recipes.

>>> from jaxae import experiments
>>> experiments.names()
['E1', 'E2', 'E3', 'E4', 'E5', 'E5-align-corners', 'E3-VAE', 'E2-VAE']
>>> [stage.config.model for stage in experiments.get("E1").recipe.stages]
['cifar10_mlp', 'cifar10_cnn']
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaxae import losses, models
from jaxae.errors import InputError
from jaxae.experiments.recipe import Recipe, Reference, Stage
from jaxae.experiments.report import against_published, comparison_table, timing_table
from jaxae.experiments.runner import (
    FRAMEWORKS,
    Context,
    SeedRun,
    ensure_dataset,
    evaluate_stage,
    seeds_train_together,
    train_seeds_together,
)
from jaxae.train import exclusive_workdir

_RECIPES = {  # name: (module, recipe attribute)
    "E1": ("e1_classifiers", "RECIPE"),
    "E2": ("e2_conv_autoencoder", "RECIPE"),
    "E3": ("e3_latent_2d", "RECIPE"),
    "E4": ("e4_dense_autoencoders", "RECIPE"),
    "E5": ("e5_transfer", "RECIPE"),
    "E5-align-corners": ("e5_transfer", "ALIGN_CORNERS_RECIPE"),
    "E3-VAE": ("e3_latent_2d", "VAE_RECIPE"),
    "E2-VAE": ("e2_conv_autoencoder", "VAE_RECIPE"),
}

__all__ = [
    "FRAMEWORKS",
    "Context",
    "Experiment",
    "Recipe",
    "Reference",
    "SeedRun",
    "Stage",
    "against_published",
    "comparison_table",
    "comparison_tables",
    "ensure_dataset",
    "evaluate_stage",
    "get",
    "load_summaries",
    "names",
    "recipe_stage",
    "recipe_stages",
    "reproduce",
    "timing_table",
]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment: its recipe, and ``run(recipe, seed_run)``, which trains one seed (a :class:`SeedRun`),
    draws its figures and returns its headline numbers."""

    recipe: Recipe
    run: Callable[[Recipe, SeedRun], dict[str, float]]


def names() -> list[str]:
    return list(_RECIPES)


def get(name: str) -> Experiment:
    """Experiment ``name`` (one of :func:`names`; any case)."""
    key = {known.lower(): known for known in _RECIPES}.get(str(name).lower())
    if key is None:
        raise InputError(f"unknown experiment {name!r}; choose from {', '.join(_RECIPES)} or 'all'")
    module_name, attribute = _RECIPES[key]
    module = importlib.import_module(f"jaxae.experiments.{module_name}")
    return Experiment(getattr(module, attribute), module.run)


def recipe_stages() -> dict[str, Stage]:
    """Each seed model's first recipe stage (its loss, optimiser, transform and batch size), by model.

    The VAEs are left out: each is its seed autoencoder's network with one more head.
    """
    stages: dict[str, Stage] = {}
    for name in names():
        for stage in get(name).recipe.stages:
            if not models.spec(stage.config.model).is_variational:
                stages.setdefault(stage.config.model, stage)
    return stages


def recipe_stage(model: str) -> Stage:
    """``model``'s entry of :func:`recipe_stages`; an :class:`InputError` naming the choices for another name."""
    stages = recipe_stages()
    if model not in stages:
        raise InputError(f"unknown model {model!r}; one of {sorted(stages)}")
    return stages[model]


def reproduce(
    name: str, context: Context, *, seeds: tuple[int, ...] | None = None, quick: bool = False, epochs: int | None = None,
    microbatch_size: int | None = None, kl_weight: float | None = None, kl_warmup_epochs: int | None = None,
) -> dict[str, Any]:
    """Runs experiment ``name`` for each seed in ``context.framework``; writes and returns its summary.

    Args:
      name: one of :func:`names`.
      context: work dir, data dir, framework.
      seeds: default the recipe's (3 where runs are cheap, else 1).
      quick: the quick variant: one epoch of small batches on 256 images.
      epochs: cut every stage to at most this many epochs (a partial run, labelled so).
      microbatch_size: jaxae's gradient chunks (default: the backend's; see
        :class:`~jaxae.train.TrainConfig`); a variant of the recipe with a summary of its own.
      kl_weight, kl_warmup_epochs: the VAE's β and KL warm-up (see :class:`~jaxae.train.TrainConfig`;
        default the recipe's: 1 and none); a variant too. Only for the experiments that train a VAE.

    The summary (``workdir/<name>/<framework>/summary.json``) holds each
    seed's headline numbers and wall times; seeds of an earlier run of the
    same variant stay in it, so seeds can be run one command at a time.
    ``workdir/<name>/<framework>`` is this process's while it runs: a second
    process is refused (:class:`~jaxae.errors.WorkdirInUseError`). Each seed's
    entry also says where its time went: ``data_seconds``, and per stage
    ``setup``, ``train`` (of which ``train_first_step``: compilation), ``eval``
    and ``checkpoint`` seconds; the rest of ``seconds`` is start-up and figures. A seed resumed
    from checkpoints says how many epochs it restored (``restored_epochs``): its times cover the rest.
    Stages whose seeds train together (``context.seeds_together``) train first, for
    all seeds at once; each seed is then charged an equal share of that time,
    and the summary lists them under ``seeds_together``.
    """
    experiment = get(name)
    recipe = experiment.recipe.quick() if quick else experiment.recipe
    if epochs is not None:
        recipe = recipe.with_max_epochs(epochs)
    if microbatch_size is not None:
        recipe = recipe.with_config(microbatch_size=microbatch_size)
    variational = all("kl" in losses.get(stage.config.loss).terms for stage in recipe.stages)
    kl = {"kl_weight": kl_weight, "kl_warmup_epochs": kl_warmup_epochs}
    if not variational and any(value is not None for value in kl.values()):
        raise InputError(f"{recipe.name} trains no VAE: kl_weight and kl_warmup_epochs weight a VAE's KL term "
                         "(E3-VAE, E2-VAE)")
    recipe = recipe.with_config(**{k: v for k, v in kl.items() if v is not None})
    seeds = recipe.seeds if seeds is None else tuple(seeds)
    with exclusive_workdir(Path(context.workdir) / recipe.name / context.framework) as folder:
        for dataset in sorted({stage.dataset for stage in recipe.stages}):
            ensure_dataset(dataset, context.data_dir, context.raw_data)
        path = folder / "summary.json"
        variant = {"quick": quick, "epochs": epochs, "microbatch_size": microbatch_size, **(kl if variational else {})}
        summary = _previous_summary(path, variant) or {
            "experiment": recipe.name, "framework": context.framework, **variant, "runs": {}
        }
        together = [stage for stage in recipe.stages if seeds_train_together(stage, context, seeds)]
        if together:
            summary["seeds_together"] = [stage.name for stage in together]
            if context.progress:
                print(f"== {recipe.name} ({context.framework}), seeds {', '.join(map(str, seeds))} together")
        trained_together = {stage.name: train_seeds_together(stage, recipe.name, context, seeds) for stage in together}
        for seed in seeds:
            if context.progress:
                print(f"== {recipe.name} ({context.framework}), seed {seed}: {recipe.title}")
            start = time.perf_counter()
            ahead = {name: by_seed[seed] for name, by_seed in trained_together.items()}
            seed_run = SeedRun(context, recipe.name, seed, trained_ahead=ahead)
            headline = experiment.run(recipe, seed_run)
            seconds = time.perf_counter() - start + sum(trained.seconds for trained in ahead.values())
            summary["runs"][str(seed)] = {**headline, **seed_run.timings, "seconds": seconds}
            summary["seeds"] = sorted(int(s) for s in summary["runs"])
            path.write_text(json.dumps(summary, indent=1) + "\n")  # after each seed: a long run keeps what it finished
    return summary


def _previous_summary(path: Path, variant: dict[str, Any]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    return summary if all(summary.get(key) == value for key, value in variant.items()) else None


def load_summaries(workdir: str | Path, name: str) -> dict[str, dict[str, Any]]:
    """The summaries of experiment ``name`` found under ``workdir``, by framework."""
    found = {}
    for framework in FRAMEWORKS:
        path = Path(workdir) / get(name).recipe.name / framework / "summary.json"
        if path.is_file():
            found[framework] = json.loads(path.read_text())
    return found


def comparison_tables(experiment_names: list[str], workdir: str | Path, compare: str | Path | None = None, *,
                      timing: bool = False) -> str:
    """The Markdown comparison tables of ``experiment_names`` from ``workdir``'s summaries.

    A framework missing from ``workdir`` is taken from ``compare`` (another work dir, e.g. the
    committed results). ``timing``: also where each seed's wall time went, per framework, for the
    experiments that have summaries.
    """
    tables = []
    for name in experiment_names:
        summaries = load_summaries(compare, name) if compare else {}
        summaries.update(load_summaries(workdir, name))
        if summaries or not timing:
            recipe = get(name).recipe
            tables.append(comparison_table(recipe, summaries))
            if timing:
                tables.append(timing_table(recipe, summaries))
    return "\n\n".join(tables)
