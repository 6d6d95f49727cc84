"""``jaxae reproduce``: train seed experiments, draw their figures, print the comparison table."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxae.commands import add_release_host_memory, non_negative, positive
from jaxae.data.raw_archives import RAW_DATA_ENV

# In a checkout, the committed results fill the columns a run did not produce; an installed package has none.
_COMMITTED_RESULTS = Path(__file__).resolve().parents[2] / "results" / "reproduction"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Runs the recipes of docs/experiments.md and compares published numbers, the PyTorch rerun and jaxae. "
        f"Datasets that are not prepared are downloaded by TFDS or, offline, imported from --raw-data / ${RAW_DATA_ENV}."
    )
    parser.add_argument("experiment", help="E1, E2, E3, E4, E5, E5-align-corners, E3-VAE, E2-VAE or all")
    parser.add_argument("--quick", action="store_true", help="a few steps on 256 images (a smoke run)")
    parser.add_argument("--workdir", default="runs", help="where metrics, checkpoints and figures go (default: runs)")
    parser.add_argument("--data-dir", help="TFDS data dir (default: TFDS's own)")
    parser.add_argument("--raw-data", help=f"folder of the raw archives, for offline import (default: ${RAW_DATA_ENV})")
    parser.add_argument("--framework", choices=["jax", "torch", "both"], default="jax",
                        help="jax (jaxae), torch (the same recipe in PyTorch; needs the torch extra) or both")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the recipe's)")
    parser.add_argument("--epochs", type=positive, help="cut each stage to at most this many epochs")
    parser.add_argument("--microbatch-size", type=positive,
                        help="jaxae: sum each step's gradient over chunks of this many examples instead of the "
                        "backend's default (results differ by float rounding only); use its own --workdir")
    parser.add_argument("--kl-weight", type=non_negative, metavar="BETA",
                        help="the VAEs' KL weight β (default: the recipe's 1); use its own --workdir")
    parser.add_argument("--kl-warmup-epochs", type=positive, metavar="N",
                        help="the VAEs' KL weight rises linearly from 0 over the first N epochs")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write TensorBoard event files beside each run's metrics.jsonl "
                        "(tensorboard --logdir WORKDIR; needs tensorboardX)")
    parser.add_argument("--seeds-mode", choices=["apart", "together"], default="apart",
                        help="train a stage's seeds one after the other (apart, the default: faster end to end "
                        "on CPU) or as one vmapped program (together); PyTorch always apart")
    parser.add_argument("--compare", default=_COMMITTED_RESULTS if _COMMITTED_RESULTS.is_dir() else None,
                        help="summaries to fill the table's columns this run did not produce "
                        "(default: the repository's results/reproduction)")
    add_release_host_memory(parser)


def run(args: argparse.Namespace) -> None:
    from jaxae import experiments

    names = experiments.names() if args.experiment.lower() == "all" else [experiments.get(args.experiment).recipe.name]
    frameworks = experiments.FRAMEWORKS if args.framework == "both" else (args.framework,)
    for name in names:
        for framework in frameworks:
            context = experiments.Context(
                args.workdir, args.data_dir, args.raw_data, framework, retain_host_memory=not args.release_host_memory,
                compilation_cache=not args.no_compilation_cache, seeds_together=args.seeds_mode == "together",
                tensorboard=args.tensorboard,
            )
            experiments.reproduce(
                name, context, seeds=args.seeds, quick=args.quick, epochs=args.epochs, microbatch_size=args.microbatch_size,
                kl_weight=args.kl_weight, kl_warmup_epochs=args.kl_warmup_epochs,
            )
    print()
    # Committed results are full runs of the recipes: a quick, shortened or changed run is compared with nothing else.
    changed = args.quick or args.epochs or args.microbatch_size or args.kl_weight is not None or args.kl_warmup_epochs
    compare = None if changed else args.compare
    print(experiments.comparison_tables(names, args.workdir, compare))
    print(f"\nMetrics, checkpoints and figures: {args.workdir}/<experiment>/<framework>/seed<k>/")
