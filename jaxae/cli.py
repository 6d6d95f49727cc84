"""The ``jaxae`` command line: ``models``, ``data import``, ``reproduce``, ``report``, ``bench``."""

from __future__ import annotations

import argparse
import sys
import time

from pathlib import Path

import jax
import jax.numpy as jnp

_REPOSITORY = Path(__file__).resolve().parent.parent
_COMMITTED_RESULTS = _REPOSITORY / "results" / "reproduction"
# In a checkout, results go beside the benchmarks' notes; from an installed package, into ./benchmarks.
_BENCHMARKS = _REPOSITORY / "benchmarks" if (_REPOSITORY / "benchmarks" / "NOTES.md").is_file() else Path("benchmarks")


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


def _batch_size(text: str):
    return text if text == "recipe" else int(text)


def _bench(args) -> None:
    from jaxae import bench, host_memory

    results_dir = Path(args.results_dir)
    if args.inline_dispatch and not host_memory.execute_on_calling_thread():
        raise ValueError(f"--inline-dispatch: JAX's CPU client already exists, or {host_memory.OPT_OUT}=0 is set")
    if not args.render:
        from jaxae.bench.suite import device_slug

        output = Path(args.output) if args.output else results_dir / f"{device_slug()}.json"
        bench.run(args.models, args.batch_sizes, args.runners, repeats=args.repeats, target_seconds=args.target_seconds,
                  e2e_epochs=args.e2e_epochs, data_dir=args.data_dir, raw_data=args.raw_data, output=output)
        print(f"wrote {output}")
        if output.resolve().parent != results_dir.resolve():
            return  # results kept elsewhere: BENCHMARKS.md renders the results folder only
    markdown = results_dir.parent / "BENCHMARKS.md"
    bench.render(results_dir, markdown, results_dir.parent / "speedup.png")
    print(f"wrote {markdown}")


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
    from jaxae.bench.suite import LARGE_BATCH, RUNNERS

    bench = commands.add_parser(
        "bench",
        help="train throughput of every seed model, jaxae vs PyTorch, on this device",
        description="Times jaxae's jitted step and fused epoch against PyTorch eager and torch.compile, "
        "interleaved, median of --repeats rounds after warm-up, compile times apart; FLOP/s against the "
        "measured matmul peak; E1's CNN end to end. Writes <results-dir>/<device>.json and renders "
        "BENCHMARKS.md beside the results folder.",
    )
    bench.add_argument("--models", nargs="+", help="seed models (default: all)")
    bench.add_argument("--batch-sizes", nargs="+", type=_batch_size, default=["recipe", LARGE_BATCH],
                       help=f"ints or 'recipe' (default: recipe {LARGE_BATCH})")
    bench.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    bench.add_argument("--repeats", type=int, default=5, help="timed rounds per case (default: 5)")
    bench.add_argument("--target-seconds", type=float, default=1.0, help="length of one timed call (default: 1)")
    bench.add_argument("--e2e-epochs", type=int, default=10, help="epochs of E1's CNN end to end; 0 skips it")
    bench.add_argument("--data-dir", help="TFDS data dir, for the end-to-end run")
    bench.add_argument("--raw-data", help=f"raw archives for offline import (default: ${RAW_DATA_ENV})")
    bench.add_argument("--results-dir", default=str(_BENCHMARKS / "results"),
                       help="where <device>.json goes and BENCHMARKS.md is rendered from (default: %(default)s)")
    bench.add_argument("--output", help="the results file (default: <results-dir>/<device>.json)")
    bench.add_argument("--inline-dispatch", action="store_true",
                       help="run XLA:CPU computations on the calling thread (see jaxae.host_memory): faster for "
                       "steps with temporaries over 64 MiB, slower for small ones")
    bench.add_argument("--render", action="store_true", help="only render BENCHMARKS.md from the results")
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
        elif args.command == "bench":
            _bench(args)
        else:
            _report(args)
    except (ValueError, DatasetNotAvailableError) as error:  # bad input, missing data: a message, not a traceback
        parser.exit(2, f"jaxae: error: {error}\n")
    except TrainingDivergedError as error:
        parser.exit(1, f"jaxae: training stopped: {error}\n")


if __name__ == "__main__":
    main()
