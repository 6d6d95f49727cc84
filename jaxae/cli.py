"""The ``jaxae`` command line: ``models``, ``data import``, ``reproduce``, ``report``."""

from __future__ import annotations

import argparse
import sys
import time

from pathlib import Path

import jax
import jax.numpy as jnp

_COMMITTED_RESULTS = Path(__file__).resolve().parent.parent / "results" / "reproduction"


def _models_table() -> str:
    from jaxae import models

    rows = ["| model | experiment | input (NHWC) | value range | latent | params |", "| --- | --- | --- | --- | --- | ---: |"]
    for name in models.names():
        spec = models.spec(name)
        model = models.create(name)
        dummy = jax.ShapeDtypeStruct((1, *spec.image_shape), jnp.float32)
        variables = jax.eval_shape(model.init, jax.random.key(0), dummy)
        count = sum(leaf.size for leaf in jax.tree.leaves(variables))
        latent = "×".join(map(str, model.latent_shape)) if spec.is_autoencoder else "—"
        low, high = spec.value_range
        rows.append(
            f"| `{name}` | {spec.experiment} | {'×'.join(map(str, spec.image_shape))} | "
            f"[{low:g}, {high:g}] | {latent} | {count:,} |"
        )
    return "\n".join(rows)


def _import(args) -> None:
    from jaxae.data import import_dataset

    start = time.perf_counter()
    path = import_dataset(args.name, args.source, args.data_dir, full=not args.subset)
    print(f"{args.name}: prepared in {path} in {time.perf_counter() - start:.1f} s")


def _reproduce(args) -> None:
    from jaxae import experiments

    names = experiments.names() if args.experiment.lower() == "all" else [experiments.get(args.experiment).RECIPE.name]
    frameworks = experiments.FRAMEWORKS if args.framework == "both" else (args.framework,)
    for name in names:
        for framework in frameworks:
            context = experiments.Context(args.workdir, args.data_dir, args.raw_data, framework)
            experiments.reproduce(name, context, seeds=args.seeds, quick=args.quick, epochs=args.epochs)
    print()
    print(_tables(names, args.workdir, args.compare))
    print(f"\nMetrics, checkpoints and figures: {args.workdir}/<experiment>/<framework>/seed<k>/")


def _tables(names: list[str], workdir: str, compare: str | None) -> str:
    """Comparison tables from ``workdir``'s summaries; a framework missing there is taken from ``compare``."""
    from jaxae import experiments

    tables = []
    for name in names:
        summaries = experiments.load_summaries(compare, name) if compare else {}
        summaries.update(experiments.load_summaries(workdir, name))
        tables.append(experiments.comparison_table(experiments.get(name).RECIPE, summaries))
    return "\n\n".join(tables)


def _report(args) -> None:
    from jaxae import experiments

    names = experiments.names() if args.experiment.lower() == "all" else [experiments.get(args.experiment).RECIPE.name]
    print(_tables(names, args.workdir, None))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jaxae", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="the seed models, their inputs and parameter counts (Markdown)")
    data = commands.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    importer = data.add_parser(
        "import",
        help="prepare a TFDS dataset from the publisher's raw archives, offline",
        description="Builds TFDS's prepared dataset from the publisher's raw files: MNIST's four "
        "IDX .gz files, or CIFAR-10's cifar-10-binary.tar.gz. Afterwards "
        "tfds.load(NAME, data_dir=D, download=False) works offline.",
    )
    importer.add_argument("name", choices=["mnist", "cifar10"])
    importer.add_argument("--from", dest="source", required=True, help="folder that holds the raw archive(s)")
    importer.add_argument("--data-dir", help="TFDS data dir (default: TFDS's own, ~/tensorflow_datasets)")
    importer.add_argument("--subset", action="store_true", help="accept fewer records than the full dataset")

    from jaxae.experiments.runner import RAW_DATA_ENV

    reproduce = commands.add_parser(
        "reproduce",
        help="run seed experiments (E1-E5): train, draw the figures, print the comparison table",
        description="Runs the recipes of docs/seed-experiments.md and compares published numbers, the "
        "PyTorch rerun and jaxae. Datasets that are not prepared are downloaded by TFDS or, offline, imported "
        f"from --raw-data / ${RAW_DATA_ENV}.",
    )
    reproduce.add_argument("experiment", help="E1, E2, E3, E4, E5 or all")
    reproduce.add_argument("--quick", action="store_true", help="a few steps on 256 images (a smoke run)")
    reproduce.add_argument("--workdir", default="runs", help="where metrics, checkpoints and figures go (default: runs)")
    reproduce.add_argument("--data-dir", help="TFDS data dir (default: TFDS's own)")
    reproduce.add_argument("--raw-data", help=f"folder of the raw archives, for offline import (default: ${RAW_DATA_ENV})")
    reproduce.add_argument("--framework", choices=["jax", "torch", "both"], default="jax",
                           help="jax (jaxae), torch (the same recipe in PyTorch; needs the torch extra) or both")
    reproduce.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the recipe's)")
    reproduce.add_argument("--epochs", type=int, help="cut each stage to at most this many epochs")
    reproduce.add_argument("--compare", default=_COMMITTED_RESULTS if _COMMITTED_RESULTS.is_dir() else None,
                           help="summaries to fill the table's columns this run did not produce "
                           "(default: the repository's results/reproduction)")
    report = commands.add_parser("report", help="the comparison tables of the summaries in a work dir (Markdown)")
    report.add_argument("workdir", nargs="?", default="runs")
    report.add_argument("--experiment", default="all")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from jaxae.data import DatasetNotAvailableError
    from jaxae.train import TrainingDivergedError

    try:
        if args.command == "models":
            print(_models_table())
        elif args.command == "data":
            _import(args)
        elif args.command == "reproduce":
            _reproduce(args)
        else:
            _report(args)
    except (ValueError, DatasetNotAvailableError) as error:  # bad input, missing data: a message, not a traceback
        parser.exit(2, f"jaxae: error: {error}\n")
    except TrainingDivergedError as error:
        parser.exit(1, f"jaxae: training stopped: {error}\n")


if __name__ == "__main__":
    main()
