"""A run's TensorBoard log: its epoch records, per-step losses, config and reconstructions.

:func:`~jaxae.train.fit` (``tensorboard=True`` or a folder) and the PyTorch
rerun write through :class:`EventLog`, beside ``metrics.jsonl``, so that
``tensorboard --logdir runs`` shows every run of a work dir, and overlays
both frameworks' runs of an experiment. Each number of an epoch's record is
a scalar at step = the epoch, its tag the record's key with the split as a
folder (``train_loss`` → ``train/loss``, ``test_active_dims`` →
``test/active_dims``); the per-step losses (and accuracies) are
``train/step_loss`` at the optimiser step (1 after the first update).

The events are written with tensorboardX: numpy and protobuf, no TensorFlow
(it imports PyTorch where installed). This module is imported only when a
run asks for TensorBoard.

Like ``metrics.jsonl``, the scalars follow the run's checkpoints: a run
resumed from a checkpoint rewrites them from the checkpoint's history (an
epoch lost to a crash is not logged twice); the reconstructions of the
epochs before stay.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from jaxae.errors import InputError

_SCALARS = ".jaxae-scalars"  # the suffix of the event files rewritten at each start
_IMAGES = ".jaxae-images"
RECONSTRUCTIONS = 8
"""How many test images (the first ones of the evaluation) the reconstruction grid shows."""


def log_dir(tensorboard: bool | str | Path | None, workdir: Path) -> Path | None:
    """Where ``fit``'s ``tensorboard`` argument writes: nowhere (False, None), ``workdir`` (True) or that folder."""
    if tensorboard is None or tensorboard is False:
        return None
    return Path(workdir) if tensorboard is True else Path(tensorboard)


def tag(key: str) -> str:
    """A record key's TensorBoard tag: the split (or part) as its folder.

    >>> tag("train_loss"), tag("test_active_dims"), tag("eval_seconds")
    ('train/loss', 'test/active_dims', 'eval/seconds')
    """
    return key.replace("_", "/", 1)


class EventLog:
    """TensorBoard event files in ``folder``, for one run.

    Args:
      folder: where the event files go (created).
      hparams: the run's settings, shown in TensorBoard's HParams tab
        (numbers, strings and booleans as they are; anything else as text).
      history: the records a resumed run starts from; their scalars are
        written again (the scalar files of an earlier start are replaced).
    """

    def __init__(self, folder: str | Path, hparams: dict[str, Any], history: Iterable[dict[str, Any]] = ()):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise InputError("TensorBoard logs need tensorboardX: pip install 'jaxae[tensorboard]'") from None
        from tensorboardX.summary import hparams as hparams_summaries

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        history = list(history)
        earlier = [_SCALARS] if history else [_SCALARS, _IMAGES]  # a fresh start replaces the images too
        for suffix in earlier:
            for path in self.folder.glob(f"events.out.tfevents.*{suffix}"):
                path.unlink()
        self._summary_writer = SummaryWriter
        self._writer = SummaryWriter(str(self.folder), filename_suffix=_SCALARS)
        self._image_writer = None  # opened by the first image: a classifier's run has none
        for summary in hparams_summaries({k: _hparam(v) for k, v in hparams.items()}, {}):
            self._writer.file_writer.add_summary(summary)
        self._steps = 0
        for record in history:
            self.epoch(record)

    def epoch(self, record: dict[str, Any]) -> None:
        """Writes an epoch's record: its numbers at step ``record["epoch"]``, its per-step lists at their steps."""
        epoch = record["epoch"]
        steps = 0
        for key, value in record.items():
            if key == "epoch" or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                self._writer.add_scalar(tag(key), value, epoch)
            elif key.startswith("train_step_"):
                for step, number in enumerate(value, self._steps + 1):
                    self._writer.add_scalar(tag(key), number, step)
                steps = len(value)
        self._steps += steps
        self._writer.flush()

    def reconstructions(self, epoch: int, images, reconstruct, value_range=(0.0, 1.0)) -> None:
        """The first :data:`RECONSTRUCTIONS` of ``images`` (N, H, W, C) in the first row, their
        ``reconstruct(images)`` in the second, as ``test/reconstructions`` at step ``epoch``."""
        images = np.asarray(images)[:RECONSTRUCTIONS]
        low, high = value_range
        rows = [np.concatenate(list(np.asarray(row, np.float32)), axis=1) for row in (images, reconstruct(images))]
        grid = np.clip((np.concatenate(rows, axis=0) - low) / (high - low), 0.0, 1.0)
        if self._image_writer is None:
            self._image_writer = self._summary_writer(str(self.folder), filename_suffix=_IMAGES)
        self._image_writer.add_image("test/reconstructions", grid, epoch, dataformats="HWC")
        self._image_writer.flush()

    def close(self) -> None:
        self._writer.close()
        if self._image_writer is not None:
            self._image_writer.close()


def _hparam(value):
    """A setting as the HParams tab takes it: a number, string or boolean; else its text."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)
