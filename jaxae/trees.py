"""Comparing two parameter trees by their leaves' paths and shapes.

Loading weights into a model asks the same question wherever the weights come
from (a checkpoint, an NNX model, shipped weights, a PyTorch export): do they
have the model's structure, and if not, where do they first differ? A tree is
compared through its :func:`leaf_shapes`, which is also what a checkpoint can
keep as JSON and compare later without the arrays.

>>> import numpy as np
>>> model = {"dense": {"kernel": np.zeros((784, 32)), "bias": np.zeros(32)}}
>>> given = {"dense": {"kernel": np.zeros((784, 128)), "bias": np.zeros(128)}}
>>> first_difference(leaf_shapes(model), leaf_shapes(given), names=("model", "given"))
"['dense']['bias']: model (32,), given (128,) (and 1 more difference)"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np


def leaf_shapes(tree) -> dict[str, tuple[int, ...]]:
    """The shape of each leaf of pytree ``tree``, keyed by its path as :func:`jax.tree_util.keystr` writes it.

    A leaf is anything with a shape (a NumPy or JAX array, a ``jax.ShapeDtypeStruct``) or a scalar.

    >>> leaf_shapes({"a": np.zeros((2, 3)), "b": [np.zeros(4), 1.0]})
    {"['a']": (2, 3), "['b'][0]": (4,), "['b'][1]": ()}
    """
    return {jax.tree_util.keystr(path): tuple(np.shape(leaf)) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def first_difference(
    expected: Mapping[str, Sequence[int]], given: Mapping[str, Sequence[int]], names: tuple[str, str] = ("expected", "given")
) -> str | None:
    """Where two trees' :func:`leaf_shapes` first differ (in path order), said in one line; None where they agree.

    A path only one of them has is "absent" in the other. Shapes compare as tuples, so a shape
    read back from JSON (a list) equals the tuple it was written from.

    Args:
      expected, given: ``{path: shape}`` maps, as :func:`leaf_shapes` returns them.
      names: what to call ``expected`` and ``given`` in the line.

    >>> first_difference({"['w']": (2, 3)}, {"['w']": [2, 3]}) is None
    True
    >>> first_difference({"['w']": (2, 3), "['b']": (3,)}, {"['w']": (2, 3)}, names=("model", "file"))
    "['b']: model (3,), file absent"
    """
    expected_shapes = {path: tuple(shape) for path, shape in expected.items()}
    given_shapes = {path: tuple(shape) for path, shape in given.items()}
    differing = sorted(path for path in {*expected_shapes, *given_shapes}
                       if expected_shapes.get(path) != given_shapes.get(path))
    if not differing:
        return None
    path, (expected_name, given_name) = differing[0], names
    line = f"{path}: {expected_name} {expected_shapes.get(path, 'absent')}, {given_name} {given_shapes.get(path, 'absent')}"
    if len(differing) > 1:
        more = len(differing) - 1
        line += f" (and {more} more difference{'s' if more > 1 else ''})"
    return line
