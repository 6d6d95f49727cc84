"""E4's unknown learning rate: which Adam rate reproduces Assignment 9's published curves?

The material cuts off the optimiser call. This trains the PCA and the 2-layer
models in PyTorch (the material's framework) for the first epochs with each
candidate rate and compares the per-epoch train loss with the printed one:
the distance is the RMS of log(measured / published) over those epochs.

    python examples/e4_learning_rate_search.py --data-dir D --epochs 10
"""

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

from jaxae.experiments import e4_dense_autoencoders as e4
from jaxae.experiments.runner import StageData
from jaxae.experiments.torch_training import fit_torch

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--data-dir", help="TFDS data dir with mnist prepared")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--rates", type=float, nargs="+", default=[1e-2, 3e-3, 1e-3, 3e-4, 1e-4])
parser.add_argument("--output", default="results/e4-learning-rate-search.json")
args = parser.parse_args()

results = []
for stage_name in ("pca", "ae2"):
    stage = e4.RECIPE.stage(stage_name).with_config(epochs=args.epochs)
    data = StageData.load(stage, args.data_dir)
    published = np.array(e4.PUBLISHED_TRAIN_LOSS[stage_name][: args.epochs])
    for rate in args.rates:
        candidate = dataclasses.replace(stage, config=dataclasses.replace(stage.config, learning_rate=rate))
        with tempfile.TemporaryDirectory() as workdir:
            _, history = fit_torch(candidate, data, Path(workdir), progress=False)
        measured = np.array([record["train_loss"] for record in history])
        distance = float(np.sqrt(np.mean(np.log(measured / published) ** 2)))
        results.append({"model": stage_name, "learning_rate": rate, "distance": distance, "train_loss": measured.tolist()})
        print(f"{stage_name:4s} lr {rate:g}: distance {distance:.4f}; epochs 1-3 {np.round(measured[:3], 4)}, "
              f"published {published[:3]}")

best = {}
for rate in args.rates:
    best[rate] = sum(r["distance"] for r in results if r["learning_rate"] == rate)
chosen = min(best, key=best.get)
print(f"closest to the published curves (sum of distances): lr {chosen:g}")
Path(args.output).parent.mkdir(parents=True, exist_ok=True)
Path(args.output).write_text(json.dumps({"command": "python examples/e4_learning_rate_search.py " + " ".join(
    f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("rates", "output") and v is not None),
    "rates": args.rates, "chosen": chosen, "runs": results}, indent=1))
