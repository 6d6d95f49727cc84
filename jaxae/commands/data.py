"""``jaxae data import``: a TFDS dataset prepared from the publisher's raw archives, offline."""

from __future__ import annotations

import argparse
import time

from jaxae.data.classes import IMPORTABLE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    importer = parser.add_subparsers(dest="data_command", required=True).add_parser(
        "import",
        help="prepare a TFDS dataset from the publisher's raw archives, offline",
        description="Builds TFDS's prepared dataset from the publisher's raw files: the four IDX .gz "
        "files of MNIST, Fashion-MNIST or Kuzushiji-MNIST (named as MNIST's), or CIFAR-10's "
        "cifar-10-binary.tar.gz. Afterwards "
        "tfds.load(NAME, data_dir=D, download=False) works offline.",
    )
    importer.add_argument("name", choices=IMPORTABLE)
    importer.add_argument("--from", dest="source", required=True, help="folder that holds the raw archive(s)")
    importer.add_argument("--data-dir", help="TFDS data dir (default: TFDS's own, ~/tensorflow_datasets)")
    importer.add_argument("--subset", action="store_true", help="accept fewer records than the full dataset")


def run(args: argparse.Namespace) -> None:
    from jaxae.data import import_dataset

    print(f"{args.name}: importing from {args.source} (under a minute)")
    start = time.perf_counter()
    path = import_dataset(args.name, args.source, args.data_dir, full=not args.subset)
    print(f"{args.name}: prepared in {path} in {time.perf_counter() - start:.1f} s")
