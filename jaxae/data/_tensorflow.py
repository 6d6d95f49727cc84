"""TensorFlow and TensorFlow Datasets, imported as jaxae's input pipelines need them: quiet, and off the GPUs.

TensorFlow serves the input pipelines only: tf.data reads, shuffles and batches, and no matrix
product or convolution runs in it. So, where TensorFlow is not imported yet, its start-up lines
are turned off (``TF_CPP_MIN_LOG_LEVEL=2``; JAX's import sets 1, which hides them too), and so
are oneDNN's custom operations (``TF_ENABLE_ONEDNN_OPTS=0``), which TensorFlow announces on
stderr at import on CPUs with AVX-512 VNNI whatever the log level; settings made before stand.
And TensorFlow sees no GPU, so that it never claims one that JAX needs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys


@functools.cache
def import_tensorflow():
    """``(tf, tfds)``: TensorFlow, set up as the module says (once per process), and TensorFlow Datasets."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf
    import tensorflow_datasets as tfds

    # A RuntimeError: the caller initialised TensorFlow already, and their choice stands.
    with contextlib.suppress(RuntimeError):
        tf.config.set_visible_devices([], "GPU")
    return tf, tfds
