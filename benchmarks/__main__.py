"""``python -m benchmarks``: the benchmark suite, or one of its parts; ``--help`` lists them.

Run from the repository's root. Errors a user can fix print as one line, as ``jaxae``'s do.
The compilation cache is jaxae's default (``JAXAE_COMPILATION_CACHE=off`` declines it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks import (
    chunks,
    conv_layers,
    cpu_path,
    cpu_search,
    data,
    explore,
    keras_tutorial,
    profile,
    render,
    seeds,
    startup,
    suite,
)
from benchmarks.environment import describe, device_slug
from benchmarks.suite import DEFAULT_RUNNERS, LARGE_BATCH, RUNNERS
from jaxae import compilation_cache, cpu, models
from jaxae.commands import add_release_host_memory, positive
from jaxae.data.raw_archives import RAW_DATA_ENV
from jaxae.errors import InputError, JaxaeError
from jaxae.experiments import recipe_stages
from jaxae.models.convolution import CONV2D_LOWERINGS

_BENCHMARKS = Path(__file__).resolve().parent


def _batch_size(text: str):
    return text if text == "recipe" else positive(text)


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Without a subcommand, the suite: jaxae's jitted step and fused epoch against PyTorch eager "
        "and torch.compile, interleaved, median of --repeats rounds after warm-up, compile times apart; FLOP/s "
        "against the measured matmul peak; E1's CNN end to end. Writes <results-dir>/<device>.json and renders "
        "BENCHMARKS.md beside the results folder."
    )
    add_release_host_memory(parser)
    parser.add_argument("--models", nargs="+", choices=models.names(), metavar="MODEL", help="seed models (default: all)")
    parser.add_argument("--batch-sizes", nargs="+", type=_batch_size, default=["recipe", LARGE_BATCH],
                        help=f"ints or 'recipe' (default: recipe {LARGE_BATCH})")
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(DEFAULT_RUNNERS),
                        help=f"default: {' '.join(DEFAULT_RUNNERS)}")
    parser.add_argument("--repeats", type=positive, default=5, help="timed rounds per case (default: 5)")
    parser.add_argument("--target-seconds", type=float, default=1.0, help="length of one timed call (default: 1)")
    parser.add_argument("--e2e-epochs", type=int, default=10, help="epochs of E1's CNN end to end; 0 skips it")
    parser.add_argument("--e2e-quick", action="store_true", help="the end-to-end run on 256 images (a smoke run)")
    parser.add_argument("--peak-size", type=positive, default=4096,
                        help="side of the float32 matmul that measures the peak (default: %(default)s)")
    parser.add_argument("--data-dir", help="TFDS data dir, for the end-to-end run")
    parser.add_argument("--raw-data", help=f"raw archives, for offline import or, without TensorFlow, for the "
                        f"end-to-end run (default: ${RAW_DATA_ENV})")
    parser.add_argument("--results-dir", default=str(_BENCHMARKS / "results"),
                        help="where <device>.json goes and BENCHMARKS.md is rendered from (default: %(default)s)")
    parser.add_argument("--output", help="the results file (default: <results-dir>/<device>.json)")
    parser.add_argument("--inline-dispatch", action="store_true",
                        help="run XLA:CPU computations on the calling thread (jaxae.cpu.execute_on_calling_thread): "
                        "faster for steps with temporaries over 64 MiB, slower for small ones")

    # A part's --output: one meaning, declared once.
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", help="also write the results and the environment as JSON")
    parts = parser.add_subparsers(dest="bench_command", metavar="{" + ",".join([*_PARTS, "render"]) + "}")
    layers = parts.add_parser("layers", parents=[output],
                              help="each convolution of a model alone, per lowering, against PyTorch's layer")
    layers.add_argument("model", choices=[n for n in models.names() if models.spec(n).has_convolutions])
    layers.add_argument("--batch-sizes", type=positive, nargs="+", default=[32, 128])
    layers.add_argument("--lowerings", nargs="+", choices=sorted(CONV2D_LOWERINGS),
                        help="time each layer with each of these (where it applies); default: the model's own")
    layers.add_argument("--repeats", type=positive, default=15)
    profiler = parts.add_parser("profile", help="where a jitted train step spends its time, per layer, pass and op")
    profiler.add_argument("model", choices=models.names())
    profiler.add_argument("--batch-size", type=positive, help="default: the recipe's")
    profiler.add_argument("--steps", type=positive, default=20)
    profiler.add_argument("--top", type=positive, default=25, help="ops listed one by one")
    for name, module, sizes, help_text in (
        ("chunks", chunks, True, "the train step per gradient-chunk size (TrainConfig.microbatch_size)"),
        ("cpu-path", cpu_path, False, "the train step with each CPU-path choice undone, one at a time"),
    ):
        part = parts.add_parser(name, parents=[output], help=help_text)
        part.add_argument("--runs", nargs="+", type=_model_and_batch, default=list(module.DEFAULT_RUNS),
                          help="MODEL:BATCH pairs")
        if sizes:
            part.add_argument("--sizes", nargs="+", type=_chunk_size, default=[0, 128, None],
                              help="chunk sizes; 0: the whole batch, default: the library's default")
        part.add_argument("--repeats", type=positive, default=7)
    start = parts.add_parser("startup", parents=[output],
                             help="a new process's imports and first train step, cold and warm, beside PyTorch")
    start.add_argument("models_to_start", nargs="*", choices=list(recipe_stages()), metavar="MODEL",
                         help="seed models (default: all but the VAEs)")
    start.add_argument("--repeats", type=positive, default=1, help="rounds, medians reported (default: 1)")
    explorer = parts.add_parser("explore", parents=[output],
                                help="how long `jaxae explore` takes to answer each kind of request")
    explorer.add_argument("--requests", type=positive, default=200, help="timed requests per kind (default: 200)")
    several = parts.add_parser("seeds", parents=[output], help="several seeds' train steps one after the other, or vmapped as one")
    several.add_argument("models_to_seed", nargs="+", choices=models.names(), metavar="MODEL")
    several.add_argument("--seeds", type=positive, default=3)
    several.add_argument("--repeats", type=positive, default=5)
    pipelines = parts.add_parser("data", parents=[output], help="images/s of the device-resident and streaming pipelines")
    pipelines.add_argument("--data-dir", required=True, help="TFDS data dir with cifar10 prepared (unless --raw-cifar10)")
    pipelines.add_argument("--raw-mnist", help="folder of MNIST's IDX .gz files: time their import")
    pipelines.add_argument("--raw-cifar10", help="folder of cifar-10-binary.tar.gz: time its import")
    pipelines.add_argument("--epochs", type=positive, default=5, help="timed epochs per mode, after a warm-up epoch")
    searched = parts.add_parser("cpu-search", parents=[output],
                                help="what the CPU-path search of fit chooses per seed model and tutorial model, and its cost")
    searched.add_argument("--runs", nargs="+", type=_model_and_batch, help="MODEL:BATCH (default: every trained seed "
                          "model at its recipe batch and 1024, the tutorial's autoencoders at 256)")
    tutorial = parts.add_parser("keras-tutorial", parents=[output],
                                help="Keras's tutorial autoencoders: Keras's epoch beside fit's, fit's step beside the best fixed one")
    tutorial.add_argument("--epochs", type=positive, default=4, help="epochs per run; the first is not compared")
    tutorial.add_argument("--rounds", type=positive, default=3)
    parts.add_parser("render", help="only render BENCHMARKS.md and speedup.png from the results folder")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    add_arguments(parser)
    args = parser.parse_args(argv)
    compilation_cache.enable()
    try:
        run(args)
    except JaxaeError as error:
        parser.exit(2, f"benchmarks: error: {error}\n")


def run(args: argparse.Namespace) -> None:
    if args.bench_command == "render":
        _render(Path(args.results_dir))
        return
    if args.inline_dispatch and not cpu.execute_on_calling_thread():
        raise InputError("--inline-dispatch: JAX's CPU client already exists; it must be the first thing the process does")
    if not args.release_host_memory:
        cpu.retain_freed_memory()
    if args.bench_command is None:
        _suite(args)
        return
    results = _PARTS[args.bench_command](args)
    if results is not None and args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"benchmark": args.bench_command, "environment": describe(), "results": results}
        path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {path}")


def _suite(args: argparse.Namespace) -> None:
    results_dir = Path(args.results_dir)
    output = Path(args.output) if args.output else results_dir / f"{device_slug()}.json"
    suite.run(args.models, args.batch_sizes, args.runners, repeats=args.repeats, target_seconds=args.target_seconds,
              e2e_epochs=args.e2e_epochs, e2e_quick=args.e2e_quick, peak_size=args.peak_size,
              data_dir=args.data_dir, raw_data=args.raw_data, output=output,
              retain_host_memory=not args.release_host_memory)
    print(f"wrote {output}")
    if output.resolve().parent == results_dir.resolve():  # results kept elsewhere are not rendered
        _render(results_dir)


def _render(results_dir: Path) -> None:
    markdown = results_dir.parent / "BENCHMARKS.md"
    render.render(results_dir, markdown, results_dir.parent / "speedup.png")
    print(f"wrote {markdown}")


def _layers(args: argparse.Namespace) -> list[dict]:
    rows = conv_layers.compare(args.model, args.batch_sizes, args.lowerings, args.repeats)
    print(conv_layers.report(rows))
    return rows


def _profile(args: argparse.Namespace) -> None:
    print(profile.report(profile.profile(args.model, args.batch_size, args.steps), args.top))


def _step_variants(args: argparse.Namespace) -> dict[str, dict[str, int]]:
    """``chunks`` and ``cpu-path``: images/s per variant of the step, per MODEL:BATCH run."""
    results = {}
    for model, batch in args.runs:
        if args.bench_command == "chunks":
            rates = chunks.measure(model, batch, args.sizes, args.repeats)
        else:
            rates = cpu_path.measure(model, batch, args.repeats)
        results[f"{model}:{batch}"] = rates
        print(f"{model}:{batch}", "  ".join(f"{name} {rate:,}" for name, rate in rates.items()), "images/s", flush=True)
    return results


def _startup(args: argparse.Namespace) -> dict:
    results = {}
    for model in args.models_to_start or recipe_stages():
        results[model] = startup.measure(model, args.repeats)
        print(f"{model}: " + ", ".join(f"{kind} {r['first_step']:.1f} s" for kind, r in results[model].items()), flush=True)
    print(startup.report(results))
    return results


def _explore(args: argparse.Namespace) -> dict:
    results = explore.measure(args.requests)
    print(explore.report(results))
    return results


def _seeds(args: argparse.Namespace) -> dict:
    results = {}
    for model in args.models_to_seed:
        rates = seeds.measure(model, args.seeds, args.repeats)
        results[model] = rates
        print(f"{model}: {args.seeds} seeds apart {rates['apart']:,.0f}, together {rates['together']:,.0f} images/s "
              f"({rates['together'] / rates['apart']:.2f}x)", flush=True)
    return results


def _data(args: argparse.Namespace) -> dict:
    results = data.pipeline_throughput(args.data_dir, args.epochs, args.raw_mnist, args.raw_cifar10)
    for name, seconds in results["import_seconds"].items():
        print(f"import {name}: {seconds:.1f} s")
    for mode, numbers in results["pipelines"].items():
        print(f"{mode}: set-up {numbers['setup_seconds']:.1f} s, median {numbers['median_images_per_s']:,.0f} images/s")
    return results


def _cpu_search(args: argparse.Namespace) -> dict:
    results = {}
    for model, batch in args.runs or cpu_search.default_runs():
        results[f"{model} @ {batch}"] = cpu_search.measure(model, batch)
        print(f"{model} @ {batch}: {results[f'{model} @ {batch}']['choice']}", flush=True)
    print(cpu_search.report(results))
    return results


def _keras_tutorial(args: argparse.Namespace) -> dict:
    results = keras_tutorial.measure(args.epochs, args.rounds)
    print(keras_tutorial.report(results))
    return results


_PARTS = {  # subcommand: runs it, prints, and returns what --output writes (None: nothing to write)
    "layers": _layers,
    "profile": _profile,
    "chunks": _step_variants,
    "cpu-path": _step_variants,
    "startup": _startup,
    "explore": _explore,
    "seeds": _seeds,
    "data": _data,
    "keras-tutorial": _keras_tutorial,
    "cpu-search": _cpu_search,
}


if __name__ == "__main__":
    main()
