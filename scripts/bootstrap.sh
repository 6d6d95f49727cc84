# Sourced by the scripts beside it: makes ./.venv (once) and installs jaxae with the extras given.
# Usage: source scripts/bootstrap.sh "[torch,dev]"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "jaxae: creating .venv with $($python --version)"
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
echo "jaxae: installing jaxae$1 into .venv"
.venv/bin/python -m pip install --quiet --editable ".$1"
export PATH="$PWD/.venv/bin:$PATH"
