"""``jaxae models``: the seed models, their inputs and parameter counts, as a Markdown table."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Prints every seed model: its experiment, input, value range, latent shape and parameters."


def run(args: argparse.Namespace) -> None:
    print(table())


def table() -> str:
    """The Markdown table; parameters are counted on abstract shapes (``jax.eval_shape``), nothing is initialised."""
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
