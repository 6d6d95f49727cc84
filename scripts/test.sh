#!/usr/bin/env bash
# The test command: installs jaxae with PyTorch (for the parity tests) into ./.venv, runs pytest
# on 2 worker processes (pytest-xdist; about 14 min on 2 cores with the install; most tests are compile-bound).
# Arguments go to pytest, e.g. `bash scripts/test.sh -k torch_port`.
source "$(dirname "$0")/bootstrap.sh" "[torch,dev]"
exec python -m pytest -n 2 "$@"
