#!/usr/bin/env bash
# The main job: installs jaxae into ./.venv and runs `python -m jaxae` with the arguments given.
# Default: `reproduce all`, the seed experiments in jaxae, ending with the comparison tables
# (the PyTorch columns come from the committed results/reproduction).
# Offline, datasets are imported from a folder of raw archives: $JAXAE_RAW_DATA, or else the
# folder ../shared/data beside the checkout where one exists (this project's machines keep theirs
# there), assembled in .raw-data/ (MNIST as is, CIFAR-10's archive written by its make_binary.py).
source "$(dirname "$0")/bootstrap.sh" ""
if [ "$#" -eq 0 ]; then set -- reproduce all; fi
raw="$(cd "$(dirname "$0")/.." && pwd)/../shared/data"
if [ -z "${JAXAE_RAW_DATA:-}" ] && [ -d "$raw/mnist" ]; then
  export JAXAE_RAW_DATA="$(cd "$(dirname "$0")/.." && pwd)/.raw-data"
  mkdir -p "$JAXAE_RAW_DATA"
  [ -e "$JAXAE_RAW_DATA/mnist" ] || ln -s "$(cd "$raw/mnist" && pwd)" "$JAXAE_RAW_DATA/mnist"
  if [ ! -f "$JAXAE_RAW_DATA/cifar10/cifar-10-binary.tar.gz" ] && [ -f "$raw/cifar10/make_binary.py" ]; then
    echo "cifar10: writing the raw archive from the folder's JPEG copy (about a minute)"
    python "$raw/cifar10/make_binary.py" "$JAXAE_RAW_DATA/cifar10"
  fi
fi
exec python -m jaxae "$@"
