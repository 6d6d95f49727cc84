#!/usr/bin/env bash
# The test command: installs jaxae with PyTorch (for the parity tests) into a virtual environment,
# lints with ruff, then runs pytest on 2 worker processes (pytest-xdist). Arguments go to pytest,
# e.g. `bash scripts/test.sh -k torch_port`.
# JAXAE_STACK=oldest runs it on the oldest supported releases instead of the newest (scripts/bootstrap.sh).
source "$(dirname "$0")/bootstrap.sh" "[torch,dev]"
# The explorer's browser test drives Debian's headless Chromium; as root (as CI runs) it is installed here.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "jaxae: installing Debian's chromium and chromium-driver for the explorer's browser test"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null \
      || echo "jaxae: installing Chromium failed: the browser test is skipped"
  else
    echo "jaxae: no chromium and chromedriver, and no root to install them: the browser test is skipped"
  fi
fi
ruff check --quiet jaxae tests examples benchmarks scripts
exec python -m pytest -n 2 "$@"
