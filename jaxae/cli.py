"""The ``jaxae`` command line: ``jaxae models``."""

from __future__ import annotations

import argparse
import sys

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jaxae", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="the seed models, their inputs and parameter counts (Markdown)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "models":
        print(_models_table())


if __name__ == "__main__":
    main()
