"""A whole recipe stage end to end, jaxae against PyTorch: E1's CNN, data loading included.

Both frameworks run the recipe as ``jaxae reproduce E1`` does (the same
batches, per-epoch test evaluation, per-epoch checkpoints), one after the
other. Reading the split from TFDS is timed once and reported apart; each
framework's time then includes its own batching (device-resident gathers for
jaxae, NumPy indexing into tensors for PyTorch).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from jaxae import experiments
from jaxae.experiments.runner import StageData, train_stage


def e1_cnn(epochs: int = 10, *, frameworks=experiments.FRAMEWORKS, quick: bool = False, data_dir=None,
           raw_data=None, progress: bool = True, retain_host_memory: bool = True) -> dict:
    """Trains E1's CNN for ``epochs`` in each framework; returns the seconds and final test accuracies.

    ``quick``: the recipe's quick variant (256 images), for smoke runs.
    """
    stage = experiments.get("E1").recipe.stage("cnn")
    stage = (stage.quick() if quick else stage).with_epochs(epochs)
    experiments.ensure_dataset(stage.dataset, data_dir, raw_data)
    start = time.perf_counter()
    data = StageData.load(stage, data_dir)
    result = {"stage": "E1/cnn", "epochs": epochs, "train_images": len(data.train[0]),
              "load_seconds": time.perf_counter() - start, "frameworks": {}}
    with tempfile.TemporaryDirectory() as workdir:
        for framework in frameworks:
            context = experiments.Context(Path(workdir), data_dir, raw_data, framework, progress, retain_host_memory)
            trained = train_stage(stage, data, Path(workdir) / framework, context)
            result["frameworks"][framework] = {
                "seconds": trained.seconds,
                "test_accuracy": trained.history[-1]["test_accuracy"],
            }
    return result
