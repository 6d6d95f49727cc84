#!/usr/bin/env bash
# The main job: installs jaxae into ./.venv and runs `python -m jaxae` with the arguments given
# (default: `models`, the table of the seed models and their parameter counts).
source "$(dirname "$0")/bootstrap.sh" ""
if [ "$#" -eq 0 ]; then set -- models; fi
exec python -m jaxae "$@"
