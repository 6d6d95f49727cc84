#!/usr/bin/env bash
# The benchmark for a GPU or TPU machine, in one command: about 8 minutes on one modern GPU.
#
#   bash benchmarks/accelerator.sh [--tiny] [python -m benchmarks options, e.g. --raw-data DIR]
#
# Needs JAX, Flax, Optax, Orbax, NumPy, SciPy, Matplotlib and tqdm (what accelerator images ship), no
# network and no pip: jaxae runs from this checkout. Every seed model at its recipe batch and at 1024: the jitted step
# and the fused epoch, in float32 and bfloat16; PyTorch eager and torch.compile when PyTorch is
# installed; E1's CNN end to end (from TFDS, or from the raw cifar-10-binary.tar.gz given with
# --raw-data when TensorFlow is missing; skipped, with a note, without either). Writes
# benchmarks/results/<device>.json and renders BENCHMARKS.md. --tiny: a smoke run on one small
# model at batch 4, for any machine (the tests run it on CPU); pass --results-dir elsewhere.
# PYTHON picks the interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
runners=(jaxae_step jaxae_fused jaxae_step_bf16 jaxae_fused_bf16 torch_eager)
if [ "${1:-}" = "--tiny" ]; then
  shift
  set -- --models mnist_pca_ae --batch-sizes 4 --repeats 1 --target-seconds 0.001 \
         --e2e-epochs 1 --e2e-quick --peak-size 256 "$@"
else
  runners+=(torch_compile)
  set -- --batch-sizes recipe 1024 --repeats 3 --target-seconds 0.5 --e2e-epochs 10 "$@"
fi
exec "${PYTHON:-python3}" -m benchmarks --runners "${runners[@]}" "$@"
