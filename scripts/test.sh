#!/usr/bin/env bash
# The test command: installs jaxae with PyTorch (for the parity tests) into a virtual environment,
# lints with ruff, then runs pytest on 2 worker processes (pytest-xdist). Arguments go to pytest,
# e.g. `bash scripts/test.sh -k torch_port`.
# JAXAE_STACK=oldest runs it on the oldest supported releases instead of the newest (scripts/bootstrap.sh).
source "$(dirname "$0")/bootstrap.sh" "[torch,dev]"
ruff check --quiet jaxae tests examples benchmarks
exec python -m pytest -n 2 "$@"
