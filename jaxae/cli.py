"""The ``jaxae`` command line: ``models``, ``data import``, ``reproduce``, ``report``, ``probe``, ``explore``, ``bench``.

Errors a user can fix (:class:`jaxae.errors.JaxaeError`: a bad argument, a
missing dataset, a busy work dir, a diverged run) print as one line; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

_REPOSITORY = Path(__file__).resolve().parent.parent
_COMMITTED_RESULTS = _REPOSITORY / "results" / "reproduction"
# In a checkout, benchmark results go to its benchmarks/ folder; from an installed package, to ./benchmarks.
_BENCHMARKS = _REPOSITORY / "benchmarks" if (_REPOSITORY / "benchmarks" / "results").is_dir() else Path("benchmarks")


def _models_table() -> str:
    import jax

    from jaxae import models

    rows = ["| model | experiment | input (NHWC) | value range | latent | params |", "| --- | --- | --- | --- | --- | ---: |"]
    for name in models.names():
        spec = models.spec(name)
        model = models.create(name)
        count = sum(leaf.size for leaf in jax.tree.leaves(models.abstract_params(model)))
        latent = "×".join(map(str, model.latent_shape)) if spec.is_autoencoder else "—"
        low, high = spec.value_range
        rows.append(
            f"| `{name}` | {spec.experiment} | {'×'.join(map(str, spec.image_shape))} | "
            f"[{low:g}, {high:g}] | {latent} | {count:,} |"
        )
    return "\n".join(rows)


def _import(args) -> None:
    from jaxae.data import import_dataset

    print(f"{args.name}: importing from {args.source} (under a minute)")
    start = time.perf_counter()
    path = import_dataset(args.name, args.source, args.data_dir, full=not args.subset)
    print(f"{args.name}: prepared in {path} in {time.perf_counter() - start:.1f} s")


def _reproduce(args) -> None:
    from jaxae import experiments

    names = experiments.names() if args.experiment.lower() == "all" else [experiments.get(args.experiment).recipe.name]
    frameworks = experiments.FRAMEWORKS if args.framework == "both" else (args.framework,)
    for name in names:
        for framework in frameworks:
            context = experiments.Context(
                args.workdir, args.data_dir, args.raw_data, framework, retain_host_memory=not args.release_host_memory,
                seeds_together=args.seeds_mode == "together", tensorboard=args.tensorboard,
            )
            experiments.reproduce(
                name, context, seeds=args.seeds, quick=args.quick, epochs=args.epochs, microbatch_size=args.microbatch_size,
                kl_weight=args.kl_weight, kl_warmup_epochs=args.kl_warmup_epochs,
            )
    print()
    # Committed results are full runs of the recipes: a quick, shortened or changed run is compared with nothing else.
    changed = args.quick or args.epochs or args.microbatch_size or args.kl_weight is not None or args.kl_warmup_epochs
    print(_tables(names, args.workdir, None if changed else args.compare))
    print(f"\nMetrics, checkpoints and figures: {args.workdir}/<experiment>/<framework>/seed<k>/")


def _tables(names: list[str], workdir: str, compare: str | None, timing: bool = False) -> str:
    """Comparison tables from ``workdir``'s summaries; a framework missing there is taken from ``compare``."""
    from jaxae import experiments

    tables = []
    for name in names:
        summaries = experiments.load_summaries(compare, name) if compare else {}
        summaries.update(experiments.load_summaries(workdir, name))
        if summaries or not timing:
            recipe = experiments.get(name).recipe
            tables.append(experiments.comparison_table(recipe, summaries))
            if timing:
                tables.append(experiments.timing_table(recipe, summaries))
    return "\n\n".join(tables)


def _report(args) -> None:
    from jaxae import experiments

    names = experiments.names() if args.experiment.lower() == "all" else [experiments.get(args.experiment).recipe.name]
    print(_tables(names, args.workdir, None, args.timing))


def _probe(args) -> None:
    from jaxae.experiments import representations

    rows = representations.probe_all(args.workdir, args.data_dir, quick=args.quick)
    fine_tuned = representations.fine_tuned_accuracies(args.workdir)
    print(representations.table(rows, fine_tuned))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps({"rows": rows, "fine_tuned": fine_tuned}, indent=1) + "\n")
        print(f"wrote {args.output}")
    if args.figures:
        written = representations.comparison_figures(args.workdir, args.data_dir, Path(args.figures), quick=args.quick)
        for pair, path in written.items():
            print(f"wrote {path}" if path else f"{pair}: no figure, a finished run of each is needed")


def _write_json(args, results) -> None:
    """``results`` of the ``jaxae bench`` subcommand in ``args``, with the environment, to ``args.output`` if given."""
    if args.output:
        from jaxae.bench.environment import describe

        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"benchmark": args.bench_command, "environment": describe(), "results": results}
        path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {path}")


def _bench(args) -> None:
    from jaxae import bench, cpu
    from jaxae.errors import InputError

    if args.bench_command == "render":
        _render(Path(args.results_dir))
        return
    if args.inline_dispatch and not cpu.execute_on_calling_thread():
        raise InputError("--inline-dispatch: JAX's CPU client already exists; it must be the first thing the process does")
    if not args.release_host_memory:
        cpu.retain_freed_memory()
    if args.bench_command == "layers":
        from jaxae.bench import conv_layers

        rows = conv_layers.compare(args.model, args.batch_sizes, args.lowerings, args.repeats)
        print(conv_layers.report(rows))
        _write_json(args, rows)
    elif args.bench_command == "profile":
        from jaxae.bench import profile

        print(profile.report(profile.profile(args.model, args.batch_size, args.steps), args.top))
    elif args.bench_command in ("chunks", "cpu-path"):
        from jaxae.bench import chunks, cpu_path

        results = {}
        for model, batch in args.runs:
            if args.bench_command == "chunks":
                rates = chunks.measure(model, batch, args.sizes, args.repeats)
            else:
                rates = cpu_path.measure(model, batch, args.repeats)
            results[f"{model}:{batch}"] = rates
            print(f"{model}:{batch}", "  ".join(f"{name} {rate:,}" for name, rate in rates.items()), "images/s", flush=True)
        _write_json(args, results)
    elif args.bench_command == "startup":
        from jaxae.bench import startup

        results = {}
        for model in args.models_to_start or _trained_alone():
            results[model] = startup.measure(model, args.repeats)
            print(f"{model}: " + ", ".join(f"{kind} {r['first_step']:.1f} s" for kind, r in results[model].items()),
                  flush=True)
        print(startup.report(results))
        _write_json(args, results)
    elif args.bench_command == "explore":
        from jaxae.bench import explore

        results = explore.measure(args.requests)
        print(explore.report(results))
        _write_json(args, results)
    elif args.bench_command == "seeds":
        from jaxae.bench import seeds

        results = {}
        for model in args.models_to_seed:
            rates = seeds.measure(model, args.seeds, args.repeats)
            results[model] = rates
            print(f"{model}: {args.seeds} seeds apart {rates['apart']:,.0f}, together {rates['together']:,.0f} images/s "
                  f"({rates['together'] / rates['apart']:.2f}x)", flush=True)
        _write_json(args, results)
    elif args.bench_command == "data":
        from jaxae.bench import data

        results = data.pipeline_throughput(args.data_dir, args.epochs, args.raw_mnist, args.raw_cifar10)
        for name, seconds in results["import_seconds"].items():
            print(f"import {name}: {seconds:.1f} s")
        for mode, numbers in results["pipelines"].items():
            print(f"{mode}: set-up {numbers['setup_seconds']:.1f} s, median {numbers['median_images_per_s']:,.0f} images/s")
        _write_json(args, results)
    else:
        from jaxae.bench.suite import device_slug

        results_dir = Path(args.results_dir)
        output = Path(args.output) if args.output else results_dir / f"{device_slug()}.json"
        bench.run(args.models, args.batch_sizes, args.runners, repeats=args.repeats, target_seconds=args.target_seconds,
                  e2e_epochs=args.e2e_epochs, e2e_quick=args.e2e_quick, peak_size=args.peak_size,
                  data_dir=args.data_dir, raw_data=args.raw_data, output=output,
                  retain_host_memory=not args.release_host_memory)
        print(f"wrote {output}")
        if output.resolve().parent == results_dir.resolve():  # results kept elsewhere are not rendered
            _render(results_dir)


def _render(results_dir: Path) -> None:
    from jaxae import bench

    markdown = results_dir.parent / "BENCHMARKS.md"
    bench.render(results_dir, markdown, results_dir.parent / "speedup.png")
    print(f"wrote {markdown}")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in [0, 65535], got {text!r}")
    return int(text)


def _batch_size(text: str):
    return text if text == "recipe" else _positive(text)


def _chunk_size(text: str) -> int | None:
    if text == "default":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a chunk size >= 0 or 'default', got {text!r}")
    return int(text)


def _model_and_batch(text: str) -> tuple[str, int]:
    model, _, batch = text.partition(":")
    if not batch.isdigit() or int(batch) < 1:
        raise argparse.ArgumentTypeError(f"expected MODEL:BATCH with a positive batch, got {text!r}")
    return model, int(batch)


def _trained_alone() -> list[str]:
    """The models with a recipe of their own: all but the VAEs."""
    from jaxae import models

    return [name for name in models.names() if not models.spec(name).is_variational]


def _parser(with_bench_arguments: bool) -> argparse.ArgumentParser:
    """The whole command line; ``bench``'s options (whose defaults import the benchmark code) only if asked."""
    from jaxae.data.raw_archives import RAW_DATA_ENV

    parser = argparse.ArgumentParser(prog="jaxae", description=__doc__.split("\n")[0])
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--compilation-cache", metavar="DIR", help="keep compiled programs in DIR (default: "
                       "$JAXAE_COMPILATION_CACHE, else ~/.cache/jaxae/compilation; see docs/training.md)")
    cache.add_argument("--no-compilation-cache", action="store_true", help="compile everything anew, keep nothing")
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

    memory = argparse.ArgumentParser(add_help=False)
    memory.add_argument("--release-host-memory", action="store_true",
                        help="on CPU, leave glibc's malloc settings alone instead of keeping freed host memory "
                        "for reuse (slower steps, smaller footprint; see jaxae.cpu.retain_freed_memory)")

    reproduce = commands.add_parser(
        "reproduce", parents=[memory],
        help="run seed experiments (E1-E5): train, draw the figures, print the comparison table",
        description="Runs the recipes of docs/experiments.md and compares published numbers, the "
        "PyTorch rerun and jaxae. Datasets that are not prepared are downloaded by TFDS or, offline, imported "
        f"from --raw-data / ${RAW_DATA_ENV}.",
    )
    reproduce.add_argument("experiment", help="E1, E2, E3, E4, E5, E5-align-corners, E3-VAE, E2-VAE or all")
    reproduce.add_argument("--quick", action="store_true", help="a few steps on 256 images (a smoke run)")
    reproduce.add_argument("--workdir", default="runs", help="where metrics, checkpoints and figures go (default: runs)")
    reproduce.add_argument("--data-dir", help="TFDS data dir (default: TFDS's own)")
    reproduce.add_argument("--raw-data", help=f"folder of the raw archives, for offline import (default: ${RAW_DATA_ENV})")
    reproduce.add_argument("--framework", choices=["jax", "torch", "both"], default="jax",
                           help="jax (jaxae), torch (the same recipe in PyTorch; needs the torch extra) or both")
    reproduce.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the recipe's)")
    reproduce.add_argument("--epochs", type=_positive, help="cut each stage to at most this many epochs")
    reproduce.add_argument("--microbatch-size", type=_positive,
                           help="jaxae: sum each step's gradient over chunks of this many examples instead of the "
                           "backend's default (results differ by float rounding only); use its own --workdir")
    reproduce.add_argument("--kl-weight", type=_non_negative, metavar="BETA",
                           help="the VAEs' KL weight β (default: the recipe's 1); use its own --workdir")
    reproduce.add_argument("--kl-warmup-epochs", type=_positive, metavar="N",
                           help="the VAEs' KL weight rises linearly from 0 over the first N epochs")
    reproduce.add_argument("--tensorboard", action="store_true",
                           help="also write TensorBoard event files beside each run's metrics.jsonl "
                           "(tensorboard --logdir WORKDIR; needs tensorboardX)")
    reproduce.add_argument("--seeds-mode", choices=["auto", "together", "apart"], default="auto",
                           help="train a stage's seeds one after the other (apart) or as one vmapped program "
                           "(together); auto: the one that measured faster end to end (apart, on CPU); "
                           "PyTorch always apart")
    reproduce.add_argument("--compare", default=_COMMITTED_RESULTS if _COMMITTED_RESULTS.is_dir() else None,
                           help="summaries to fill the table's columns this run did not produce "
                           "(default: the repository's results/reproduction)")

    report = commands.add_parser("report", help="the comparison tables of the summaries in a work dir (Markdown)")
    report.add_argument("workdir", nargs="?", default="runs")
    report.add_argument("--experiment", default="all")
    report.add_argument("--timing", action="store_true", help="also where each seed's wall time went, per framework")

    probe = commands.add_parser(
        "probe", help="how good each trained autoencoder's codes are: linear probe and 10-NN test accuracy",
        description="Encodes the train and test images with every finished jaxae autoencoder run in the work dir "
        "(E2, E3, E4, E5 and the VAEs), and reads the labels off the frozen codes with a linear probe and 10 "
        "nearest neighbours, beside the same probes of PCA of the pixels and of the pixels (Markdown table). "
        "Scores are kept in the work dir's probe_cache.json: a rerun probes only new runs "
        "(delete the file after changing how the probes compute).",
    )
    probe.add_argument("workdir", nargs="?", default="runs", help="the work dir of `jaxae reproduce` (default: runs)")
    probe.add_argument("--data-dir", help="TFDS data dir (default: TFDS's own)")
    probe.add_argument("--quick", action="store_true", help="probe the runs of `jaxae reproduce --quick`")
    probe.add_argument("--output", help="also write the accuracies per seed to this JSON file")
    probe.add_argument("--figures", help="also draw each autoencoder beside its VAE into this folder")

    explore = commands.add_parser(
        "explore", help="the trained latent spaces in the browser: decode points of E3's plane, blend two images",
        description="Serves a local page (127.0.0.1 only) with E3's 2-D latent plane beside its VAE's, decoded "
        "live under the pointer, and the interpolation between two test images for E2, E2-VAE and E4. "
        "Shows the weights and test images shipped with jaxae unless --workdir or --data-dir say otherwise.",
    )
    explore.add_argument("--port", type=_port, default=8800, help="port to listen on (default: %(default)s; 0: any free one)")
    explore.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    explore.add_argument("--workdir", help="show the finished runs of this `jaxae reproduce` work dir instead (with "
                         "--data-dir, its planes scatter the whole test set, else the 300 shipped images)")
    explore.add_argument("--data-dir", help="a TFDS data dir: its whole test sets instead of the shipped samples")

    bench = commands.add_parser(
        "bench", parents=[memory],
        help="speed: the suite (every seed model, jaxae vs PyTorch), or one of its parts",
        description="Without a subcommand, the suite: jaxae's jitted step and fused epoch against PyTorch eager "
        "and torch.compile, interleaved, median of --repeats rounds after warm-up, compile times apart; FLOP/s "
        "against the measured matmul peak; E1's CNN end to end. Writes <results-dir>/<device>.json and renders "
        "BENCHMARKS.md beside the results folder.",
    )
    if with_bench_arguments:
        _add_bench_arguments(bench)
    return parser


def _add_bench_arguments(bench: argparse.ArgumentParser) -> None:
    from jaxae import models
    from jaxae.bench.chunks import DEFAULT_RUNS
    from jaxae.bench.cpu_path import DEFAULT_RUNS as CPU_PATH_RUNS
    from jaxae.bench.suite import DEFAULT_RUNNERS, LARGE_BATCH, RUNNERS
    from jaxae.data.raw_archives import RAW_DATA_ENV
    from jaxae.models.convolution import CONV2D_LOWERINGS

    bench.add_argument("--models", nargs="+", choices=models.names(), metavar="MODEL", help="seed models (default: all)")
    bench.add_argument("--batch-sizes", nargs="+", type=_batch_size, default=["recipe", LARGE_BATCH],
                       help=f"ints or 'recipe' (default: recipe {LARGE_BATCH})")
    bench.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(DEFAULT_RUNNERS),
                       help=f"default: {' '.join(DEFAULT_RUNNERS)}")
    bench.add_argument("--repeats", type=_positive, default=5, help="timed rounds per case (default: 5)")
    bench.add_argument("--target-seconds", type=float, default=1.0, help="length of one timed call (default: 1)")
    bench.add_argument("--e2e-epochs", type=int, default=10, help="epochs of E1's CNN end to end; 0 skips it")
    bench.add_argument("--e2e-quick", action="store_true", help="the end-to-end run on 256 images (a smoke run)")
    bench.add_argument("--peak-size", type=_positive, default=4096,
                       help="side of the float32 matmul that measures the peak (default: %(default)s)")
    bench.add_argument("--data-dir", help="TFDS data dir, for the end-to-end run")
    bench.add_argument("--raw-data", help=f"raw archives, for offline import or, without TensorFlow, for the "
                       f"end-to-end run (default: ${RAW_DATA_ENV})")
    bench.add_argument("--results-dir", default=str(_BENCHMARKS / "results"),
                       help="where <device>.json goes and BENCHMARKS.md is rendered from (default: %(default)s)")
    bench.add_argument("--output", help="the results file (default: <results-dir>/<device>.json)")
    bench.add_argument("--inline-dispatch", action="store_true",
                       help="run XLA:CPU computations on the calling thread (jaxae.cpu.execute_on_calling_thread): "
                       "faster for steps with temporaries over 64 MiB, slower for small ones")
    parts = bench.add_subparsers(dest="bench_command", metavar="{layers,profile,chunks,cpu-path,startup,explore,seeds,data,render}")
    layers = parts.add_parser("layers", help="each convolution of a model alone, per lowering, against PyTorch's layer")
    layers.add_argument("model", choices=[n for n in models.names() if models.spec(n).has_convolutions])
    layers.add_argument("--batch-sizes", type=_positive, nargs="+", default=[32, 128])
    layers.add_argument("--lowerings", nargs="+", choices=sorted(CONV2D_LOWERINGS),
                        help="time each layer with each of these (where it applies); default: the model's own")
    layers.add_argument("--repeats", type=_positive, default=15)
    layers.add_argument("--output", help="also write the rows and the environment as JSON")
    profile = parts.add_parser("profile", help="where a jitted train step spends its time, per layer, pass and op")
    profile.add_argument("model", choices=models.names())
    profile.add_argument("--batch-size", type=_positive, help="default: the recipe's")
    profile.add_argument("--steps", type=_positive, default=20)
    profile.add_argument("--top", type=_positive, default=25, help="ops listed one by one")
    chunks = parts.add_parser("chunks", help="the train step per gradient-chunk size (TrainConfig.microbatch_size)")
    chunks.add_argument("--runs", nargs="+", type=_model_and_batch, default=list(DEFAULT_RUNS), help="MODEL:BATCH pairs")
    chunks.add_argument("--sizes", nargs="+", type=_chunk_size, default=[0, 128, None],
                        help="chunk sizes; 0: the whole batch, default: the library's default")
    chunks.add_argument("--repeats", type=_positive, default=7)
    chunks.add_argument("--output", help="also write the results and the environment as JSON")
    cpu_path = parts.add_parser("cpu-path", help="the train step with each CPU-path choice undone, one at a time")
    cpu_path.add_argument("--runs", nargs="+", type=_model_and_batch, default=list(CPU_PATH_RUNS), help="MODEL:BATCH pairs")
    cpu_path.add_argument("--repeats", type=_positive, default=7)
    cpu_path.add_argument("--output", help="also write the results and the environment as JSON")
    startup = parts.add_parser("startup", help="a new process's imports and first train step, cold and warm, beside PyTorch")
    startup.add_argument("models_to_start", nargs="*", choices=_trained_alone(), metavar="MODEL",
                         help="seed models (default: all but the VAEs)")
    startup.add_argument("--repeats", type=_positive, default=1, help="rounds, medians reported (default: 1)")
    startup.add_argument("--output", help="also write the results and the environment as JSON")
    explore = parts.add_parser("explore", help="how long `jaxae explore` takes to answer each kind of request")
    explore.add_argument("--requests", type=_positive, default=200, help="timed requests per kind (default: 200)")
    explore.add_argument("--output", help="also write the results and the environment as JSON")
    seeds = parts.add_parser("seeds", help="several seeds' train steps one after the other, or vmapped as one")
    seeds.add_argument("models_to_seed", nargs="+", choices=models.names(), metavar="MODEL")
    seeds.add_argument("--seeds", type=_positive, default=3)
    seeds.add_argument("--repeats", type=_positive, default=5)
    seeds.add_argument("--output", help="also write the results and the environment as JSON")
    data_bench = parts.add_parser("data", help="images/s of the device-resident and streaming pipelines")
    data_bench.add_argument("--data-dir", required=True, help="TFDS data dir with cifar10 prepared (unless --raw-cifar10)")
    data_bench.add_argument("--raw-mnist", help="folder of MNIST's IDX .gz files: time their import")
    data_bench.add_argument("--raw-cifar10", help="folder of cifar-10-binary.tar.gz: time its import")
    data_bench.add_argument("--epochs", type=_positive, default=5, help="timed epochs per mode, after a warm-up epoch")
    data_bench.add_argument("--output", help="also write the results and the environment as JSON")
    parts.add_parser("render", help="only render BENCHMARKS.md and speedup.png from the results folder")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser(with_bench_arguments="bench" in argv)
    args = parser.parse_args(argv)
    from jaxae import compilation_cache
    from jaxae.errors import JaxaeError, JaxaeWarning, TrainingDivergedError, TrainingInterrupted

    default_format = warnings.formatwarning

    def one_line_for_jaxae(message, category, *args, **kwargs):
        if issubclass(category, JaxaeWarning):
            return f"jaxae: warning: {message}\n"
        return default_format(message, category, *args, **kwargs)

    warnings.formatwarning = one_line_for_jaxae

    if args.no_compilation_cache:
        os.environ[compilation_cache.ENVIRONMENT_VARIABLE] = "off"  # fit and the probes ask again
    compilation_cache.enable(args.compilation_cache)
    try:
        if args.command == "models":
            print(_models_table())
        elif args.command == "data":
            _import(args)
        elif args.command == "reproduce":
            _reproduce(args)
        elif args.command == "bench":
            _bench(args)
        elif args.command == "probe":
            _probe(args)
        elif args.command == "explore":
            from jaxae import explore

            explore.serve(args.port, not args.no_browser, args.workdir, args.data_dir)
        else:
            _report(args)
    except TrainingDivergedError as error:
        parser.exit(1, f"jaxae: training stopped: {error}\n")
    except TrainingInterrupted as error:  # the shell's codes for a process ended by SIGINT or SIGTERM
        parser.exit(130 if error.signal == "SIGINT" else 143, f"jaxae: {error}\n")
    except JaxaeError as error:  # bad input, missing data, a busy work dir: a message, not a traceback
        parser.exit(2, f"jaxae: error: {error}\n")


if __name__ == "__main__":
    main()
