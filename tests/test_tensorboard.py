"""TensorBoard logs, read back by the real ``tensorboard`` server through its HTTP API."""

import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

from jaxae import cli

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")

RUN = "E2-VAE/{framework}/seed0/autoencoder"


@contextlib.contextmanager
def tensorboard_server(logdir, log_file):
    """The ``tensorboard`` server on ``logdir``, on a free port of 127.0.0.1; yields its address; always stopped."""
    with open(log_file, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0",
             "--load_fast", "false"], stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180  # it imports TensorFlow where installed: slow on a busy machine
        while not (found := re.search(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+)/", log_file.read_text())):
            assert server.poll() is None, log_file.read_text()[-2000:]
            assert time.monotonic() < deadline, "tensorboard did not start: " + log_file.read_text()[-2000:]
            time.sleep(0.5)
        yield found.group(1)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _get(address, path, **query):
    url = f"{address}/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def _scalars(address, run, tag):
    """``{step: value}`` of a scalar series as the server gives it."""
    return {step: value for _, step, value in json.loads(_get(address, "data/plugin/scalars/scalars", run=run, tag=tag))}


def test_a_quick_vae_trains_alike_in_both_frameworks_and_tensorboard_serves_its_numbers(data_dir, tmp_path):
    """Same init, same batches, different noise draws: both frameworks end a quick E2-VAE about alike."""
    cli.main(["reproduce", "E2-VAE", "--quick", "--framework", "both", "--tensorboard", "--workdir", str(tmp_path),
              "--data-dir", str(data_dir)])
    records = {}
    for framework in ("jax", "torch"):
        run_dir = tmp_path / RUN.format(framework=framework)
        (record,) = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        for split in ("train", "test"):
            assert record[f"{split}_loss"] == pytest.approx(record[f"{split}_reconstruction"] + record[f"{split}_kl"],
                                                            rel=1e-5)
        assert record["test_active_dims"] >= 0
        assert record["train_step_loss"][-1] < record["train_step_loss"][0]
        assert (run_dir.parent / "elbo_terms.png").stat().st_size > 1000
        records[framework] = record
    assert records["jax"]["test_loss"] == pytest.approx(records["torch"]["test_loss"], rel=0.02)
    for figure in ("reconstructions", "interpolation", "prior_samples", "loss"):
        assert (tmp_path / RUN.format(framework="jax")).parent.joinpath(f"{figure}.png").stat().st_size > 1000, figure

    with tensorboard_server(tmp_path, tmp_path / "tensorboard.log") as address:
        runs = set(json.loads(_get(address, "data/runs")))
        assert {RUN.format(framework=f) for f in records} <= runs, runs
        for framework, record in records.items():
            run = RUN.format(framework=framework)
            for key, value in record.items():
                if key == "epoch" or not isinstance(value, (int, float)):
                    continue
                tag = key.replace("_", "/", 1)
                assert _scalars(address, run, tag) == {1: pytest.approx(value, rel=1e-6)}, tag
            steps = _scalars(address, run, "train/step_loss")
            np.testing.assert_allclose([steps[k] for k in sorted(steps)], record["train_step_loss"], rtol=1e-6)
            assert sorted(steps) == list(range(1, len(record["train_step_loss"]) + 1))

            (image,) = json.loads(_get(address, "data/plugin/images/images", run=run, tag="test/reconstructions"))
            assert image["step"] == 1
            png = _get(address, "data/plugin/images/individualImage?" + image["query"])
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
            assert (height, width) == (2 * 32, 8 * 32)  # 8 test images above their reconstructions

        request = urllib.request.Request(f"{address}/data/plugin/hparams/experiment", data=b'{"experimentName": ""}',
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            hparams = {info["name"] for info in json.loads(response.read())["hparamInfos"]}
        assert {"model", "learning_rate", "kl_weight", "kl_warmup_epochs", "framework"} <= hparams
