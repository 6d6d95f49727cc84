"""``jaxae explore``: the trained latent spaces in the browser."""

from __future__ import annotations

import argparse


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in [0, 65535], got {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serves a local page (127.0.0.1 only) with E3's 2-D latent plane beside its VAE's, decoded "
        "live under the pointer, and the interpolation between two test images for E2, E2-VAE and E4. "
        "Shows the weights and test images shipped with jaxae unless --workdir or --data-dir say otherwise."
    )
    parser.add_argument("--port", type=_port, default=8800, help="port to listen on (default: %(default)s; 0: any free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    parser.add_argument("--workdir", help="show the finished runs of this `jaxae reproduce` work dir instead (with "
                        "--data-dir, its planes scatter the whole test set, else the 300 shipped images)")
    parser.add_argument("--data-dir", help="a TFDS data dir: its whole test sets instead of the shipped samples")


def run(args: argparse.Namespace) -> None:
    from jaxae import explore

    explore.serve(args.port, not args.no_browser, args.workdir, args.data_dir)
