"""The options every example takes, parsed the same way from a shell or a notebook."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxae import compilation_cache
from jaxae.experiments.recipe import quick_config
from jaxae.train import TrainConfig


def parse(name: str, description: str, *, epochs: int | None = None, **switches: str) -> argparse.Namespace:
    """``--quick``, ``--data-dir``, ``--workdir`` (default ``runs/examples/<name>``, created), an
    on/off ``--switch-name`` per keyword ``switch_name="its help"``, and with ``epochs`` an
    ``--epochs N`` of that default (1 with ``--quick``)."""
    parser = argparse.ArgumentParser(description=description)
    if epochs is not None:
        parser.add_argument("--epochs", type=int, help=f"how many epochs (default: {epochs}; 1 with --quick)")
    for switch, help_text in switches.items():
        parser.add_argument(f"--{switch.replace('_', '-')}", action="store_true", help=help_text)
    parser.add_argument("--quick", action="store_true", help="one epoch on a few hundred images (a smoke run)")
    parser.add_argument("--data-dir", help="TFDS data dir (default: TFDS's own); offline, fill it with `jaxae data import`")
    parser.add_argument("--workdir", type=Path, default=Path("runs/examples") / name,
                        help="where checkpoints, metrics and figures go (default: %(default)s)")
    args, _ = parser.parse_known_args()  # a notebook kernel passes arguments of its own
    if epochs is not None and args.epochs is None:
        args.epochs = 1 if args.quick else epochs
    args.workdir.mkdir(parents=True, exist_ok=True)
    compilation_cache.enable()  # a rerun reads its compiled steps back instead of compiling them again
    return args


def split(name: str, quick: bool, examples: int = 256) -> str:
    """A TFDS split, or its first ``examples`` images for ``--quick``."""
    return f"{name}[:{examples}]" if quick else name


def as_run(config: TrainConfig, quick: bool) -> TrainConfig:
    """``config`` as this run trains it: whole, or for ``--quick`` one epoch of batches of at most 64
    (what ``jaxae reproduce --quick`` makes of a recipe)."""
    return quick_config(config) if quick else config
