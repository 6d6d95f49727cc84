"""Comparing parameter trees: the first difference, named, wherever weights are loaded."""

import json
import re

import numpy as np
import pytest

from jaxae import models
from jaxae.train import CheckpointMismatchError, Checkpoints
from jaxae.trees import first_difference, leaf_shapes


def test_equal_trees_have_no_difference_even_with_shapes_read_back_from_json():
    params = models.abstract_params(models.create("mnist_ae2"))
    shapes = leaf_shapes(params)
    assert first_difference(shapes, shapes) is None
    assert first_difference(shapes, json.loads(json.dumps(shapes))) is None


def test_the_first_differing_path_is_named_with_both_shapes_and_the_rest_counted():
    narrow = leaf_shapes(models.abstract_params(models.create("mnist_ae2")))
    wide = leaf_shapes(models.abstract_params(models.create("mnist_ae2", hidden_sizes=(128, 16))))
    difference = first_difference(narrow, wide, names=("model", "given"))
    first = min(path for path in narrow if narrow[path] != wide[path])
    assert difference.startswith(f"{first}: model {narrow[first]}, given {wide[first]} (and ")
    assert difference.endswith(" more differences)")


def test_a_path_one_tree_lacks_is_absent_there():
    tree = {"encoder": {"kernel": np.zeros((2, 3)), "bias": np.zeros(3)}}
    pruned = {"encoder": {"kernel": np.zeros((2, 3))}}
    assert first_difference(leaf_shapes(tree), leaf_shapes(pruned)) == "['encoder']['bias']: expected (3,), given absent"
    assert first_difference(leaf_shapes(pruned), leaf_shapes(tree)) == "['encoder']['bias']: expected absent, given (3,)"


def test_a_checkpoint_of_another_shape_is_refused_with_the_first_difference(tmp_path):
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    try:
        checkpoints.save(1, {"w": np.zeros(2), "b": np.zeros(1)}, {"epoch": 1, "config": {}})
        with pytest.raises(CheckpointMismatchError, match=re.escape("checkpoint 1 does not fit this model's state: "
                                                                    "['w']: model (3,), checkpoint (2,)")):
            checkpoints.restore({"w": np.zeros(3), "b": np.zeros(1)})
    finally:
        checkpoints.close()
