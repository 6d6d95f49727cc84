#!/usr/bin/env bash
# The main job: installs jaxae into ./.venv and runs `python -m jaxae` with the arguments given.
# Default: `reproduce all`, the five seed experiments in jaxae, ending with the comparison table
# (the PyTorch columns come from the committed results/reproduction).
# Offline, datasets are imported from $JAXAE_RAW_DATA; when it is unset and ../shared/data exists,
# a raw-data folder is assembled from it in .raw-data/ (MNIST as is, CIFAR-10 via make_binary.py).
source "$(dirname "$0")/bootstrap.sh" ""
if [ "$#" -eq 0 ]; then set -- reproduce all; fi
shared="$(cd "$(dirname "$0")/.." && pwd)/../shared/data"
if [ -z "${JAXAE_RAW_DATA:-}" ] && [ -d "$shared/mnist" ]; then
  export JAXAE_RAW_DATA="$(cd "$(dirname "$0")/.." && pwd)/.raw-data"
  mkdir -p "$JAXAE_RAW_DATA"
  [ -e "$JAXAE_RAW_DATA/mnist" ] || ln -s "$(cd "$shared/mnist" && pwd)" "$JAXAE_RAW_DATA/mnist"
  if [ ! -f "$JAXAE_RAW_DATA/cifar10/cifar-10-binary.tar.gz" ] && [ -f "$shared/cifar10/make_binary.py" ]; then
    echo "cifar10: writing the raw archive from the JPEG stand-in (about a minute)"
    python "$shared/cifar10/make_binary.py" "$JAXAE_RAW_DATA/cifar10"
  fi
fi
exec python -m jaxae "$@"
