"""Writes jaxae/pretrained/ (the shipped weights, their manifest, the test samples) from finished runs.

    python scripts/pack_pretrained.py --workdir W --data-dir D

W holds one finished jaxae run of each shipped set, as ``jaxae reproduce EXPERIMENT --framework jax
--seeds SEED --data-dir D --workdir W`` leaves it (the seeds are in ``SETS``). Each set's params are
evaluated again on the full test set, which must give the run's own logged numbers, and on the test
split of ``tests/data`` (the first 100 images of each raw test file), imported as the tests import it:
the numbers the tests check. ~2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np
from flax import serialization

from jaxae import experiments, latent, pretrained
from jaxae.data import import_dataset
from jaxae.data.batches import PIXEL_TABLES
from jaxae.data.input_pipeline import load_split
from jaxae.experiments.representations import trained_params
from jaxae.experiments.runner import evaluate_stage

SETS = {  # shipped name: (experiment, stage, seed); the first seed each experiment's recipe runs
    "E1/mlp": ("E1", "mlp", 0),
    "E1/cnn": ("E1", "cnn", 0),
    "E2": ("E2", "autoencoder", 0),
    "E2-VAE": ("E2-VAE", "autoencoder", 0),
    "E3": ("E3", "autoencoder", 123),
    "E3-VAE": ("E3-VAE", "autoencoder", 123),
    "E4/pca": ("E4", "pca", 0),
    "E4/ae2": ("E4", "ae2", 0),
    "E4/ae2_wide": ("E4", "ae2_wide", 0),
    "E4/ae3": ("E4", "ae3", 0),
}
PLANES = ("E3", "E3-VAE")
TEST_DATA = Path(__file__).parent.parent / "tests" / "data"
read_split = functools.cache(load_split)  # each split is read once, though several sets evaluate on it
SHIPPED_TEST_IMAGES = {"mnist": 300, "cifar10": 200}


def _last_record(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def _versions() -> dict[str, str]:
    import flax
    import jaxlib

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__, "python": sys.version.split()[0]}


def table(manifest: dict) -> str:
    """The Markdown table of docs/explore.md."""
    rows = ["| set | model | seed, epochs | train loss | test loss | test accuracy | tests' 100 test images | file |",
            "| --- | --- | --- | ---: | ---: | ---: | --- | ---: |"]
    for name, entry in manifest.items():
        numbers, subset = entry["numbers"], entry["subset_numbers"]
        accuracy = f"{numbers['test_accuracy']:.2%}" if "test_accuracy" in numbers else "—"
        on_subset = f"loss {subset['test_loss']:.4g}" + (f", accuracy {subset['test_accuracy']:.0%}"
                                                         if "test_accuracy" in subset else "")
        rows.append(f"| {name} | `{entry['recipe']['model']}` | {entry['seed']}, {numbers['epochs']} | "
                    f"{numbers['train_loss']:.4g} | {numbers['test_loss']:.4g} | {accuracy} | {on_subset} | "
                    f"{entry['bytes'] / 2**10:,.0f} KiB |")
    return "\n".join(rows)


def pack(workdir: Path, data_dir: str | None, quick: bool, out: Path, subset_dir: str) -> None:
    for dataset in SHIPPED_TEST_IMAGES:
        import_dataset(dataset, TEST_DATA / dataset, subset_dir, full=False)
    manifest, samples = {}, {}
    for dataset, count in SHIPPED_TEST_IMAGES.items():
        images, labels = load_split(dataset, f"test[:{count}]", data_dir)
        samples[f"{dataset}/images"], samples[f"{dataset}/labels"] = images, labels.astype(np.uint8)
    for name, (experiment, stage_name, seed) in SETS.items():
        recipe = experiments.get(experiment).recipe
        stage = (recipe.quick() if quick else recipe).stage(stage_name).with_seed(seed)
        run_dir = workdir / experiment / "jax" / f"seed{seed}" / stage_name
        params = trained_params(stage, run_dir)
        if params is None:
            sys.exit(f"{name}: no finished run in {run_dir}")
        params = jax.device_get(params)
        test_images, test_labels = read_split(stage.dataset, stage.test_split or "test", data_dir)
        numbers = evaluate_stage(stage, params, test_images, test_labels)
        last = _last_record(run_dir)
        for key, value in numbers.items():
            if key in last and not np.isclose(last[key], value, rtol=1e-5):
                sys.exit(f"{name}: {key} {value} now, {last[key]} when it trained: not the run's params")
        subset = evaluate_stage(stage, params, *read_split(stage.dataset, "test", subset_dir))
        data = serialization.msgpack_serialize(params)
        (out / pretrained.file_name(name)).write_bytes(data)
        manifest[name] = {
            "experiment": experiment, "stage": stage_name, "seed": seed,
            "recipe": stage.config.to_json(),
            "command": f"jaxae reproduce {experiment} --framework jax --seeds {seed}" + (" --quick" if quick else ""),
            "numbers": {"epochs": last["epoch"], "train_loss": last["train_loss"], **numbers},
            "subset_numbers": subset,
            "versions": _versions(),
            "file": pretrained.file_name(name), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        }
        if name in PLANES:  # the codes of the whole test set, also after a --quick run
            images, labels = read_split(stage.dataset, "test", data_dir)
            model = stage.config.create_model()
            samples[f"{name}/test_codes"] = latent.encode(model, params, PIXEL_TABLES[stage.transform][images])
            samples[f"{stage.dataset}/test_labels"] = labels.astype(np.uint8)
        print(f"{name}: {manifest[name]['numbers']}, subset {subset}, {len(data):,} bytes")
    (out / pretrained.MANIFEST.name).write_text(json.dumps(manifest, indent=1) + "\n")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **samples)
    (out / pretrained.TEST_SAMPLES.name).write_bytes(buffer.getvalue())
    print(table(manifest))
    size = sum(path.stat().st_size for path in out.iterdir() if path.is_file() and path.suffix != ".py")
    print(f"wrote {out}: {size:,} bytes of package data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="the work dir of the finished runs")
    parser.add_argument("--data-dir", help="TFDS data dir with mnist and cifar10 prepared")
    parser.add_argument("--quick", action="store_true", help="pack the runs of `jaxae reproduce --quick` (a dry run)")
    parser.add_argument("--output", type=Path, default=pretrained.FOLDER, help="default: jaxae/pretrained/")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jaxae-subset-") as subset_dir:
        pack(args.workdir, args.data_dir, args.quick, args.output, subset_dir)


if __name__ == "__main__":
    main()
