"""The jitted train step with its gradient summed over chunks of the batch, per chunk size.

    python -m benchmarks.microbatch [--runs cifar10_cnn:1024 cifar10_fc_conv_ae:2000] [--sizes 0 128 default]
                                    [--repeats 7] [--output PATH]

For each model at each batch size: jaxae's step (``jaxae_step``, synthetic data on the device)
with ``microbatch_size`` each of ``--sizes`` (0: the whole batch in one gradient; ``default``:
``jaxae.train.default_microbatch_size`` for the model and batch), and PyTorch
eager, timed in turns (calls of about 4,000 images), median of ``--repeats`` rounds after a warm-up. This is the measurement
behind ``jaxae.train.default_microbatch_size``. Results go to ``--output`` (default
``benchmarks/results/microbatch-<backend>.json``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax

from jaxae.bench.environment import describe
from jaxae.bench.suite import recipe_stages
from jaxae.bench.throughput import jaxae_step_runner, median_images_per_second, time_interleaved, torch_runner
from jaxae.train import default_microbatch_size

DEFAULT_RUNS = [("cifar10_cnn", 1024), ("cifar10_conv_ae", 1024), ("cifar10_mlp", 1024), ("cifar10_fc_conv_ae", 2000)]


def measure(model: str, batch_size: int, sizes: list[int | None], repeats: int) -> dict[str, float]:
    stage = recipe_stages()[model]
    steps = max(1, 4000 // batch_size)
    default = default_microbatch_size(stage.config.create_model(), batch_size)
    runners = {
        _label(size, default): jaxae_step_runner(
            stage.config, stage.transform, batch_size, steps, batch_size if size == 0 else size
        )
        for size in sizes
    }
    runners["torch_eager"] = torch_runner(stage.config, stage.transform, batch_size, steps)
    seconds = time_interleaved(runners, steps, repeats)
    return {name: round(median_images_per_second(times, steps * batch_size)) for name, times in seconds.items()}


def _label(size: int | None, default: int | None) -> str:
    if size is None:
        return f"microbatch default ({default or 'whole'})"
    return f"microbatch {size or 'whole'}"


def _chunk_size(text: str) -> int | None:
    if text == "default":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a chunk size >= 0 or 'default', got {text!r}")
    return int(text)


def _model_and_batch(text: str) -> tuple[str, int]:
    model, _, batch = text.partition(":")
    if model not in recipe_stages() or not batch.isdigit() or int(batch) < 1:
        raise argparse.ArgumentTypeError(f"expected MODEL:BATCH with a seed model and a positive batch, got {text!r}")
    return model, int(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", type=_model_and_batch, default=DEFAULT_RUNS, help="MODEL:BATCH pairs")
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=_chunk_size,
        default=[0, 128, None],
        help="chunk sizes; 0: the whole batch, default: the library's default",
    )
    parser.add_argument("--repeats", type=int, default=7)
    default_output = Path(__file__).parent / "results" / f"microbatch-{jax.default_backend()}.json"
    parser.add_argument("--output", type=Path, default=default_output)
    args = parser.parse_args()
    results = {"environment": describe(), "images_per_second": {}}
    for model, batch in args.runs:
        rates = measure(model, batch, args.sizes, args.repeats)
        results["images_per_second"][f"{model}:{batch}"] = rates
        print(f"{model}:{batch}", "  ".join(f"{name} {rate:,}" for name, rate in rates.items()), "images/s", flush=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
