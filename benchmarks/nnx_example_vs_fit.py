"""E3's steady training step: ``examples/e3_nnx.py``'s NNX loop against ``jaxae.train.fit``.

    python benchmarks/nnx_example_vs_fit.py --data-dir D [--rounds 3] [--epochs 1]

Runs, one process at a time and alternating, the NNX example and ``jaxae reproduce E3
--framework jax`` on full MNIST for ``--epochs`` epochs, and prints each run's ms per
train step after the first (which compiles), then the medians and their ratio. The two
train the same model on the same batches; ``fit`` also evaluates and checkpoints, which
its timing leaves out (``train_seconds`` less ``train_first_step_seconds``).
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def nnx_example(data_dir: str, epochs: int, workdir: Path) -> float:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "e3_nnx.py"), "--epochs", str(epochs),
                           "--data-dir", data_dir, "--workdir", str(workdir)], capture_output=True, text=True, check=True)
    return float(re.findall(r"([\d.]+) ms/step", done.stdout)[-1])


def fit(data_dir: str, epochs: int, workdir: Path) -> float:
    subprocess.run([sys.executable, "-m", "jaxae", "reproduce", "E3", "--framework", "jax", "--seeds", "123",
                    "--epochs", str(epochs), "--data-dir", data_dir, "--workdir", str(workdir)],
                   capture_output=True, text=True, check=True)
    record = json.loads(next(workdir.rglob("metrics.jsonl")).read_text().splitlines()[-1])
    steps = len(record["train_step_loss"])
    return 1e3 * (record["train_seconds"] - record["train_first_step_seconds"]) / (steps - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    times = {"nnx example": [], "fit": []}
    for round_ in range(args.rounds):
        order = [("nnx example", nnx_example), ("fit", fit)]
        for name, run in order if round_ % 2 == 0 else order[::-1]:
            with tempfile.TemporaryDirectory() as workdir:
                times[name].append(run(args.data_dir, args.epochs, Path(workdir)))
            print(f"round {round_ + 1}: {name} {times[name][-1]:.2f} ms/step", flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"median ms/step: nnx example {medians['nnx example']:.2f}, fit {medians['fit']:.2f}; "
          f"nnx example / fit {medians['nnx example'] / medians['fit']:.3f}")


if __name__ == "__main__":
    main()
