# Sourced by the scripts beside it: makes ./.venv (once) and installs jaxae with the extras given.
# Usage: source scripts/bootstrap.sh "[torch,dev]"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "jaxae: creating .venv with $($python --version)"
  "$python" -m venv .venv
  .venv/bin/python -m pip install -qq --upgrade pip
fi
echo "jaxae: installing jaxae$1 into .venv"
# -qq and no build-backend warnings: errors still print (and stop the script); the rest is noise.
PYTHONWARNINGS=ignore .venv/bin/python -m pip install -qq --editable ".$1"
export PATH="$PWD/.venv/bin:$PATH"
