"""Images per second that each pipeline mode delivers, and how long the offline import takes.

    python benchmarks/data_throughput.py --data-dir D [--raw-mnist DIR] [--raw-cifar10 DIR]

The pipelines read CIFAR-10's train split at batch 128 (the E1/E2 recipe)
into a jitted consumer that does nothing but touch the batch; the first epoch
(compilation, warm-up) is reported apart; the median of the other epochs is the
throughput. With ``--raw-*`` the import into a fresh data dir is timed first.
Results go to ``benchmarks/results/data-<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import jax

from jaxae.bench.environment import describe
from jaxae.data import import_dataset
from jaxae.data.pipeline import BatchSpec, make_pipeline


def _epoch_rate(pipeline, epoch: int, consume) -> float:
    start = time.perf_counter()
    seen = 0
    for batch in pipeline.epoch(epoch):
        consume(batch).block_until_ready()
        seen += int(batch["mask"].sum())
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="TFDS data dir with cifar10 prepared (unless --raw-cifar10)")
    parser.add_argument("--raw-mnist", help="folder of MNIST's IDX .gz files: time their import")
    parser.add_argument("--raw-cifar10", help="folder of cifar-10-binary.tar.gz: time its import")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per mode, after one warm-up epoch")
    parser.add_argument("--out", type=Path, help="result file (default benchmarks/results/data-<device>.json)")
    args = parser.parse_args()

    results = {"environment": describe(), "import_seconds": {}, "pipelines": {}}
    for name, source in (("mnist", args.raw_mnist), ("cifar10", args.raw_cifar10)):
        if source:
            target = args.data_dir if name == "cifar10" else tempfile.mkdtemp(prefix="jaxae-bench-")
            start = time.perf_counter()
            import_dataset(name, source, target)
            results["import_seconds"][name] = round(time.perf_counter() - start, 1)
            print(f"import {name}: {results['import_seconds'][name]} s")

    consume = jax.jit(lambda batch: batch["image"].sum())
    for mode in ("device", "streaming"):
        start = time.perf_counter()
        pipeline = make_pipeline("cifar10", "train", BatchSpec(128, seed=0), mode=mode, data_dir=args.data_dir)
        setup = time.perf_counter() - start
        warmup = _epoch_rate(pipeline, 0, consume)
        rates = [_epoch_rate(pipeline, epoch, consume) for epoch in range(1, args.epochs + 1)]
        results["pipelines"][mode] = {
            "setup_seconds": round(setup, 2),
            "warmup_epoch_images_per_s": round(warmup),
            "median_images_per_s": round(statistics.median(rates)),
            "epoch_images_per_s": [round(r) for r in rates],
        }
        print(f"{mode}: setup {setup:.1f} s, warm-up epoch {warmup:,.0f} img/s, median {statistics.median(rates):,.0f} img/s")

    out = args.out or Path(__file__).parent / "results" / f"data-{jax.default_backend()}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
