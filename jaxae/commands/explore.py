"""``jaxae explore``: the trained latent spaces in the browser."""

from __future__ import annotations

import argparse
import importlib
import os
import sys


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in [0, 65535], got {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serves a local page (127.0.0.1 only) with E3's 2-D latent plane beside its VAE's, decoded "
        "live under the pointer, and the interpolation between two test images for E2, E2-VAE and E4. "
        "Shows the weights and test images shipped with jaxae unless --workdir or --data-dir say otherwise; "
        "--workdir may be the work dir of a fit run of your own autoencoder (--import registers it)."
    )
    parser.add_argument("--port", type=_port, default=8800, help="port to listen on (default: %(default)s; 0: any free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    parser.add_argument("--workdir", help="show the finished runs of this `jaxae reproduce` work dir instead (with "
                        "--data-dir, its planes scatter the whole test set, else the 300 shipped images), or the "
                        "latest checkpoint of this `fit` run's work dir")
    parser.add_argument("--data-dir", help="a TFDS data dir: its whole test sets instead of the shipped samples")
    parser.add_argument("--dataset", metavar="NAME", help="the TFDS dataset whose test images go with a fit run of your own model "
                        "(from --data-dir, else the shipped samples of mnist and cifar10)")
    parser.add_argument("--import", dest="imports", metavar="MODULE", action="append", default=[],
                        help="import MODULE first (from the current folder or PYTHONPATH), e.g. the one that "
                        "registers the run's model; may be given more than once")


def _import(name: str) -> None:
    """Imports module ``name``, from the current folder too (as ``python -m`` finds it); one line if it fails."""
    from jaxae.errors import InputError, first_line

    if not {"", os.getcwd()} & set(sys.path):
        sys.path.insert(0, os.getcwd())
    try:
        importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 -- the user's module: whatever it raises is told in one line
        raise InputError(f"--import {name}: {first_line(error)}") from None


def run(args: argparse.Namespace) -> None:
    from jaxae import explore

    for name in args.imports:
        _import(name)
    explore.serve(args.port, not args.no_browser, args.workdir, args.data_dir, args.dataset)
