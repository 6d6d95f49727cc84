"""Input checks that run in Python, before anything is traced into XLA."""

from __future__ import annotations

import jax.numpy as jnp

from jaxae.errors import InputError


def check_batch(model: str, x, expected: tuple[int, ...], what: str = "images") -> None:
    """Raises a ``ValueError`` unless ``x`` is a floating batch of shape ``(B, *expected)``.

    Args:
      model: the model's name, for the message.
      x: the array given to the model.
      expected: its shape without the batch dimension.
      what: what ``x`` is ("images", "latent codes"), for the message.
    """
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None or dtype is None:
        raise InputError(f"{model}: {what} must be an array, got {type(x).__name__}")
    shape = tuple(shape)
    want = "(batch, " + ", ".join(map(str, expected)) + ")"
    if len(shape) != len(expected) + 1 or shape[1:] != tuple(expected):
        raise InputError(f"{model}: expected {what} of shape {want}, got {shape}{_hint(shape, expected)}")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise InputError(
            f"{model}: expected floating {what} (float32) of shape {want}, got dtype {dtype}; "
            "convert uint8 pixels with x.astype(jnp.float32) / 255 (and to [-1, 1] where "
            "the recipe normalises)"
        )


def _hint(shape: tuple[int, ...], expected: tuple[int, ...]) -> str:
    if len(expected) == 3 and len(shape) == 4:
        height, width, channels = expected
        if shape[1:] == (channels, height, width):
            return " (this looks like PyTorch's NCHW layout: use x.transpose(0, 2, 3, 1))"
    if shape == tuple(expected):
        return " (the batch dimension is missing: use x[None])"
    if len(expected) == 3 and len(shape) == 2 and shape[1] == expected[0] * expected[1] * expected[2]:
        return f" (flattened images: use x.reshape(-1, {', '.join(map(str, expected))}))"
    return ""
