"""tf.data's shuffle order, computed with NumPy.

``tf.data.Dataset.range(n).shuffle(buffer, seed=s, reshuffle_each_iteration=False)``
yields a permutation of ``range(n)`` that depends only on ``(n, buffer, s)``.
:func:`tf_shuffle_order` computes the same permutation without TensorFlow, so
that the in-memory pipeline needs no TensorFlow to visit a split in the order
the streaming (tf.data) pipeline does, and a machine without TensorFlow (a
JAX-only accelerator image) trains on the same batches as one with it.

What it reproduces (TensorFlow's ``ShuffleDatasetOp``, with no global seed set):

* the seeds: ``(87654321, s mod (2**31 - 1))``, the default graph seed and the
  truncated op seed;
* the generator: Philox4x32-10 keyed by the first seed, with the second as the
  high 64 bits of the counter, its four 32-bit outputs per block taken in turn;
* the buffer: a ring of ``buffer`` slots filled in input order; each output is
  the element ``r mod k`` places past the oldest one, for the next 32-bit draw
  ``r`` and ``k`` elements held, swapped with the oldest before it leaves, and
  the next input element takes the freed slot.

``tests/test_data.py`` checks it against tf.data itself.
"""

from __future__ import annotations

import numpy as np

from jaxae.errors import InputError

DEFAULT_GRAPH_SEED = 87654321
_MAXINT32 = 2**31 - 1

_MULTIPLIERS = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_KEY_INCREMENTS = (np.uint32(0x9E3779B9), np.uint32(0xBB67AE85))
_LOW32 = np.uint64(0xFFFFFFFF)


def philox4x32(key: tuple[int, int], counter_high: tuple[int, int], num_blocks: int) -> np.ndarray:
    """The first ``num_blocks`` blocks of Philox4x32-10, as ``uint32 (num_blocks * 4,)`` in draw order.

    Block ``i`` encrypts the counter ``(i mod 2**32, i >> 32, *counter_high)`` under ``key``.
    """
    index = np.arange(num_blocks, dtype=np.uint64)
    c0, c1 = (index & _LOW32).astype(np.uint32), (index >> np.uint64(32)).astype(np.uint32)
    c2, c3 = (np.full(num_blocks, word, np.uint32) for word in counter_high)
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    with np.errstate(over="ignore"):
        for round_ in range(10):
            if round_:
                k0, k1 = k0 + _KEY_INCREMENTS[0], k1 + _KEY_INCREMENTS[1]
            product0 = _MULTIPLIERS[0] * c0.astype(np.uint64)
            product1 = _MULTIPLIERS[1] * c2.astype(np.uint64)
            c0, c1, c2, c3 = (
                (product1 >> np.uint64(32)).astype(np.uint32) ^ c1 ^ k0,
                (product1 & _LOW32).astype(np.uint32),
                (product0 >> np.uint64(32)).astype(np.uint32) ^ c3 ^ k1,
                (product0 & _LOW32).astype(np.uint32),
            )
    return np.stack([c0, c1, c2, c3], axis=1).reshape(-1)


def tf_shuffle_order(num_examples: int, seed: int, buffer_size: int | None = None) -> np.ndarray:
    """The order in which tf.data's ``shuffle(buffer_size, seed)`` visits ``range(num_examples)``.

    Args:
      num_examples: the length of the input.
      seed: the op seed given to ``shuffle`` (a non-negative int).
      buffer_size: the shuffle buffer; default the whole input (a uniform shuffle).

    Returns:
      int64 ``(num_examples,)``, a permutation of ``range(num_examples)``.

    >>> tf_shuffle_order(5, seed=0).tolist()
    [1, 2, 4, 0, 3]
    """
    if buffer_size is not None and buffer_size < 1:
        raise InputError(f"buffer_size must be positive, got {buffer_size}")
    buffer_size = min(buffer_size or num_examples, num_examples)
    op_seed = seed % _MAXINT32
    draws = philox4x32((DEFAULT_GRAPH_SEED, 0), (op_seed, 0), -(-num_examples // 4))
    draws = draws[:num_examples].tolist()
    ring = list(range(buffer_size))
    order = []
    for start, draw in enumerate(draws):
        oldest = start % buffer_size
        chosen = (start + draw % min(buffer_size, num_examples - start)) % buffer_size
        order.append(ring[chosen])
        ring[chosen] = ring[oldest]
        if start + buffer_size < num_examples:
            ring[oldest] = start + buffer_size
    return np.array(order, np.int64)
