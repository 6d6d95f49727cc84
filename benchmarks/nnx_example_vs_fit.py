"""E3's steady training step: ``examples/e3_nnx.py``'s NNX loop against ``jaxae.train.fit``.

    python -m benchmarks.nnx_example_vs_fit --data-dir D [--rounds 3] [--epochs 1]
    python -m benchmarks.nnx_example_vs_fit --steps [--rounds 3]

The first runs, one process at a time and alternating, the NNX example and ``jaxae
reproduce E3 --framework jax`` on full MNIST for ``--epochs`` epochs, and prints each run's
ms per train step after the first (which compiles), then the medians and their ratio. The
two train the same model on the same batches; ``fit`` also evaluates and checkpoints, which
its timing leaves out (``train_seconds`` less ``train_first_step_seconds``).

``--steps`` times the two compiled steps alone in one process, in turns, on one batch: the
``Trainer``'s and the example's (the NNX model and optimiser split once, merged inside the
jitted step), first with glibc's malloc settings, then after
``jaxae.cpu.retain_freed_memory()``, with the minor page faults per step.
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


def steps(rounds: int, calls: int = 100) -> None:
    import resource
    import time

    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from jaxae import cpu, losses
    from jaxae import nnx as jaxae_nnx
    from jaxae.train import TrainConfig, Trainer, compile_train_step

    trainer = Trainer.create(TrainConfig("mnist_conv_ae_2d", "mse", "adam", 5e-4, epochs=1, batch_size=32, seed=123))
    model = jaxae_nnx.create("mnist_conv_ae_2d", rngs=nnx.Rngs(123))
    graphdef, nnx_state = nnx.split((model, nnx.Optimizer(model, optax.adam(5e-4), wrt=nnx.Param)))

    def nnx_step(state, batch):  # the example's step
        model, optimizer = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(lambda m: losses.mse(m(batch["image"]), batch["image"]).mean())(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    states = {"fit": trainer.init_state(), "nnx example": nnx_state}
    compiled = {"fit": compile_train_step(trainer), "nnx example": cpu.jit_with_cpu_options(nnx_step, donate_argnums=0)}
    images = jax.random.uniform(jax.random.key(0), (32, 28, 28, 1))
    batch = {"image": images, "label": jnp.zeros(32, jnp.int32), "mask": jnp.ones(32, bool)}
    for name in states:  # compile
        states[name], _ = compiled[name](states[name], batch)
    for malloc in ("glibc's defaults", "retain_freed_memory"):
        if malloc == "retain_freed_memory":
            cpu.retain_freed_memory()
        times = {name: [] for name in states}
        for round_ in range(rounds):
            for name in list(states)[:: 1 if round_ % 2 == 0 else -1]:
                faults, started = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
                for _ in range(calls):
                    states[name], loss = compiled[name](states[name], batch)
                jax.block_until_ready(loss)
                times[name].append(1e3 * (time.perf_counter() - started) / calls)
                faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / calls
                print(f"{malloc}, round {round_ + 1}: {name} {times[name][-1]:.2f} ms/step, {faults:,.1f} faults/step")
        print(f"{malloc}: median ms/step " + ", ".join(f"{n} {statistics.median(t):.2f}" for n, t in times.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps", action="store_true", help="the two compiled steps alone, in one process")
    args = parser.parse_args()
    if args.steps:
        return steps(args.rounds)
    if not args.data_dir:
        parser.error("--data-dir is needed to train on MNIST")
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
