"""Training runs in their own processes (``_train_worker.py``), and how a resumed one is checked
against the ``straight_run`` fixture (conftest.py)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def train_worker(workdir, *args, env=None):
    """Runs ``_train_worker.py WORKDIR ARGS...``; returns the finished process."""
    worker = Path(__file__).parent / "_train_worker.py"
    return subprocess.run([sys.executable, str(worker), str(workdir), *map(str, args)], env=env, check=False,
                          capture_output=True, text=True)


def untimed(history):
    """A history without its wall-clock seconds, which differ from run to run."""
    return [{k: v for k, v in record.items() if not k.endswith("seconds")} for record in history]


def assert_resumes_as_straight(workdir: Path, straight_run: Path, *layout) -> None:
    """Runs the worker again in ``workdir`` and checks it ends bitwise where ``straight_run`` ended.

    ``layout``: the worker's ``LAYOUT [EVERY_STEPS]``, as both runs were made."""
    resumed = train_worker(workdir, 4, *(("none", -1, "SIGINT", *layout) if layout else ()))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight, again = np.load(straight_run / "final.npz"), np.load(workdir / "final.npz")
    assert len(straight.files) == len(again.files) > 0
    for key in straight:
        np.testing.assert_array_equal(straight[key], again[key])
    histories = json.loads((workdir / "history.json").read_text())
    assert [untimed(h) for h in histories] == [untimed(h) for h in json.loads((straight_run / "history.json").read_text())]
    logs = sorted(workdir.glob("**/metrics.jsonl"))
    assert len(logs) == len(histories)
    for log in logs:  # each epoch logged once, however often the run stopped
        assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2, 3, 4]
