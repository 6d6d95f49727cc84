"""A whole recipe stage end to end, jaxae against PyTorch: E1's CNN, data loading included.

Both frameworks run the recipe as ``jaxae reproduce E1`` does (the same
batches, per-epoch test evaluation, per-epoch checkpoints), one after the
other. Reading the split is timed once and reported apart; each framework's
time then includes its own batching (device-resident gathers for jaxae, NumPy
indexing into tensors for PyTorch). The split comes from TFDS, or, where
TensorFlow is not installed, straight from the raw ``cifar-10-binary.tar.gz``
in ``raw_data``; with neither, the run is skipped and says why.
"""

from __future__ import annotations

import importlib.util
import re
import tempfile
import time
from pathlib import Path

from jaxae import experiments
from jaxae.data.raw_archives import CIFAR10_ARCHIVE, read_cifar10
from jaxae.experiments.runner import StageData, find_raw_archives, train_stage


def e1_cnn(epochs: int = 10, *, frameworks=experiments.FRAMEWORKS, quick: bool = False, data_dir=None,
           raw_data=None, progress: bool = True, retain_host_memory: bool = True) -> dict:
    """Trains E1's CNN for ``epochs`` in each framework; returns the seconds and final test accuracies.

    ``quick``: the recipe's quick variant (256 images), for smoke runs. Without TensorFlow
    and without a raw archive, ``{"skipped": why}``.
    """
    stage = experiments.get("E1").recipe.stage("cnn")
    stage = (stage.quick() if quick else stage).with_config(epochs=epochs)
    start = time.perf_counter()
    data = _load(stage, data_dir, raw_data)
    if isinstance(data, str):
        return {"stage": "E1/cnn", "skipped": data}
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


def _load(stage, data_dir, raw_data) -> StageData | str:
    """The stage's data from TFDS, else from the raw archive; else why neither is possible."""
    if importlib.util.find_spec("tensorflow_datasets") is not None:
        experiments.ensure_dataset(stage.dataset, data_dir, raw_data)
        return StageData.load(stage, data_dir)
    folder = find_raw_archives("cifar10", raw_data)
    if folder is None:
        return f"TensorFlow Datasets cannot be imported and no {CIFAR10_ARCHIVE} was given (--raw-data)"
    splits = read_cifar10(folder, full=False)
    return StageData(*(_sliced(splits, split) for split in (stage.train_split, stage.test_split)))


def _sliced(splits, split: str):
    """``"train"`` or ``"train[:256]"`` of the splits read from the raw archive."""
    name, count = re.fullmatch(r"(\w+)(?:\[:(\d+)\])?", split).groups()
    images, labels = splits[name]
    return (images, labels) if count is None else (images[: int(count)], labels[: int(count)])
