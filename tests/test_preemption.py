"""Stops within an epoch: SIGINT and SIGTERM save after the current step, SIGKILL loses only the
steps since the last step checkpoint, and every stopped run resumes at the next batch and ends
bitwise where a run that never stopped ends, with each epoch logged once."""

import itertools
import os
import signal

import jax
import numpy as np
import pytest
from _train_runs import assert_resumes_as_straight, train_worker, untimed

from jaxae.data import DeviceResidentPipeline
from jaxae.data.input_pipeline import StreamingPipeline
from jaxae.errors import InputError, TrainingInterrupted
from jaxae.train import TrainConfig, fit
from jaxae.train.engine import StepCheckpoints

CONFIG = TrainConfig(model="mnist_ae2", loss="mse", optimizer="adam", learning_rate=1e-3, epochs=2, batch_size=16,
                     seed=3)


@pytest.mark.parametrize("layout, stop", [
    ("one", "SIGINT"), ("one", "SIGTERM"), ("one", "SIGKILL"),
    ("mesh", "SIGTERM"), ("mesh", "SIGKILL"),
    ("seeds", "SIGINT"), ("seeds", "SIGKILL"),
])  # SIGINT and SIGTERM take one path: each layout gets one of them, and SIGKILL
def test_a_stop_mid_epoch_resumes_at_the_next_step_bitwise(tmp_path, straight_runs, layout, stop):
    """A plain script whose ``fit`` gets Ctrl-C or SIGTERM exits as Python does, with one line."""
    run, killed = tmp_path / "run", stop == "SIGKILL"
    every = 2 if killed else 0  # a signal saves where it stops without being asked to
    stopped = train_worker(run, 4, "kill_mid_epoch" if killed else "signal_mid_epoch", 2, stop, layout, every)
    seed_dirs = [run / f"seed{seed}" for seed in (5, 6, 7)] if layout == "seeds" else [run]
    if killed:  # after global step 10 (epoch 3, step 2) the newest step checkpoint; then the third step's batch
        assert stopped.returncode == -signal.SIGKILL, stopped.stderr[-2000:]
        saved = "10"
    else:  # the third step of epoch 3 (global step 11) finishes, and is saved
        each = " (and each seed's)" if layout == "seeds" else ""
        assert stopped.returncode == {"SIGINT": 130, "SIGTERM": 143}[stop], stopped.stderr[-2000:]
        assert stopped.stderr == (f"jaxae: interrupted by {stop} at epoch 3/4, step 3; saved there in "
                                  f"{seed_dirs[0] / 'step_checkpoints'}{each}: the same command resumes from it\n")
        saved = "11"
    for folder in seed_dirs:
        assert [p.name for p in (folder / "step_checkpoints").iterdir()] == [saved]
        assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["1", "2"]
    assert_resumes_as_straight(run, straight_runs(layout), layout, every)
    for folder in seed_dirs:  # the epoch checkpoint that followed made the step checkpoint obsolete
        assert list((folder / "step_checkpoints").iterdir()) == []


def _arrays(n=80):
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32)


class _Stopping:
    """A pipeline that, in epoch ``at[0]`` before batch ``at[1]``, calls ``act`` (sends a signal, fails)."""

    at, act = (-1, -1), None

    def epoch(self, epoch, start=0):
        for step, batch in enumerate(super().epoch(epoch, start), start):
            if (epoch, step) == self.at:
                self.act()
            yield batch


class _StoppingDeviceResident(_Stopping, DeviceResidentPipeline):
    pass


class _StoppingStreaming(_Stopping, StreamingPipeline):
    pass


def _pipeline(mode: str, at=(-1, -1), act=None):
    images, labels = _arrays()
    if mode == "device":
        pipeline = _StoppingDeviceResident(images, labels, CONFIG.batch_spec(), transform="normalize")
    else:
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
        pipeline = _StoppingStreaming(dataset, len(images), CONFIG.batch_spec(), transform="normalize")
    pipeline.at, pipeline.act = at, act
    return pipeline


def _assert_same_run(a, b):
    (state_a, history_a), (state_b, history_b) = a, b
    for x, y in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert untimed(history_a) == untimed(history_b)


@pytest.mark.parametrize("mode", ["device", "streaming"])
def test_a_stop_in_either_pipeline_mode_resumes_its_data_order_bitwise(tmp_path, mode):
    straight = fit(CONFIG, _pipeline(mode), tmp_path / "straight", fused=False, progress=False)
    stopping = _pipeline(mode, at=(1, 2), act=lambda: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(TrainingInterrupted, match="at epoch 2/2, step 3; saved there"):
        fit(CONFIG, stopping, tmp_path / "run", fused=False, progress=False)
    _assert_same_run(fit(CONFIG, _pipeline(mode), tmp_path / "run", fused=False, progress=False), straight)


def test_a_fused_epoch_saves_between_its_segments_and_resumes_bitwise(tmp_path):
    straight = fit(CONFIG, _pipeline("device"), tmp_path / "straight", fused=True, progress=False)
    stopping = _pipeline("device")
    plan = stopping.epoch_plan

    def plan_then_signal(epoch):  # the signal arrives as epoch 2's first segment runs
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return plan(epoch)

    stopping.epoch_plan = plan_then_signal
    with pytest.raises(TrainingInterrupted, match="at epoch 2/2, step 1; saved there"):  # its segment: up to step 6
        fit(CONFIG, stopping, tmp_path / "run", fused=True, checkpoint_every_steps=2, progress=False)
    assert [p.name for p in (tmp_path / "run" / "step_checkpoints").iterdir()] == ["6"]  # 5 steps an epoch
    resumed = fit(CONFIG, _pipeline("device"), tmp_path / "run", fused=True, checkpoint_every_steps=2, progress=False)
    _assert_same_run(resumed, straight)


def test_a_checkpoint_by_the_clock_is_where_a_crashed_run_resumes(tmp_path, monkeypatch):
    ticks = itertools.count(0, 25)  # 25 seconds pass at each look at the clock
    monkeypatch.setattr(StepCheckpoints, "clock", staticmethod(lambda: next(ticks)))
    straight = fit(CONFIG, _pipeline("device"), tmp_path / "straight", fused=False, progress=False)

    def power_cut():
        raise RuntimeError("power cut")

    crashing = _pipeline("device", at=(1, 4), act=power_cut)
    with pytest.raises(RuntimeError, match="power cut"):
        fit(CONFIG, crashing, tmp_path / "run", fused=False, checkpoint_every_minutes=1, progress=False)
    (saved,) = (tmp_path / "run" / "step_checkpoints").iterdir()
    assert 5 < int(saved.name) <= 8  # within epoch 2 (steps 6-10), before the crash in its fourth step
    resumed = fit(CONFIG, _pipeline("device"), tmp_path / "run", fused=False, progress=False)
    _assert_same_run(resumed, straight)


def test_checkpoint_segments_of_a_fused_epoch_end_where_a_step_checkpoint_is_due():
    every_3 = StepCheckpoints(save=None, every_steps=3)
    assert every_3.segments(epoch=1, start=0, num_batches=5) == [(0, 1), (1, 4), (4, 5)]  # global steps 6 and 9
    assert every_3.segments(epoch=0, start=2, num_batches=5) == [(2, 3), (3, 5)]
    assert StepCheckpoints(save=None).segments(epoch=4, start=0, num_batches=5) == [(0, 5)]


@pytest.mark.parametrize("setting, value", [("checkpoint_every_steps", 0), ("checkpoint_every_minutes", -1)])
def test_a_schedule_that_cannot_be_is_refused_before_the_work_dir_is_touched(tmp_path, setting, value):
    with pytest.raises(InputError, match=setting):
        fit(CONFIG, _pipeline("device"), tmp_path / "run", progress=False, **{setting: value})
    assert not (tmp_path / "run").exists()
