"""``jaxae probe``: how good each trained autoencoder's codes are, by linear probe and 10-NN test accuracy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Encodes the train and test images with every finished jaxae autoencoder run in the work dir "
        "(E2, E3, E4, E5 and the VAEs), and reads the labels off the frozen codes with a linear probe and 10 "
        "nearest neighbours, beside the same probes of PCA of the pixels and of the pixels (Markdown table). "
        "Scores are kept in the work dir's probe_cache.json: a rerun probes only new runs "
        "(delete the file after changing how the probes compute)."
    )
    parser.add_argument("workdir", nargs="?", default="runs", help="the work dir of `jaxae reproduce` (default: runs)")
    parser.add_argument("--data-dir", help="TFDS data dir (default: TFDS's own)")
    parser.add_argument("--quick", action="store_true", help="probe the runs of `jaxae reproduce --quick`")
    parser.add_argument("--output", help="also write the accuracies per seed to this JSON file")
    parser.add_argument("--figures", help="also draw each autoencoder beside its VAE into this folder")


def run(args: argparse.Namespace) -> None:
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
