"""``jaxae report``: the comparison tables of the summaries in a work dir, as Markdown."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workdir", nargs="?", default="runs")
    parser.add_argument("--experiment", default="all")
    parser.add_argument("--timing", action="store_true", help="also where each seed's wall time went, per framework")


def run(args: argparse.Namespace) -> None:
    from jaxae import experiments

    names = experiments.names() if args.experiment.lower() == "all" else [experiments.get(args.experiment).recipe.name]
    print(experiments.comparison_tables(names, args.workdir, timing=args.timing))
