"""The ``jaxae`` command line: ``jaxae models``, ``jaxae data import``."""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp


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
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "models":
            print(_models_table())
        elif args.command == "data":
            _import(args)
    except ValueError as error:  # bad input, bad archives: a message, not a traceback
        parser.exit(2, f"jaxae: error: {error}\n")


if __name__ == "__main__":
    main()
