# Sourced by the scripts beside it: makes a virtual environment (once) and installs jaxae with the extras given.
# Usage: source scripts/bootstrap.sh "[torch,dev]"
#
# JAXAE_STACK chooses what it is installed on; both ends of the supported range are tested:
#   newest (default)  ./.venv: the newest Python 3.13 or 3.12 found, and the newest releases the
#                     package index serves (upgraded on every run).
#   oldest            ./.venv-oldest: Python 3.11 and the oldest supported releases (scripts/oldest-stack.txt).
# PYTHON=/path/to/python overrides the interpreter.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
stack="${JAXAE_STACK:-newest}"

find_python() {  # the first of the given versions that runs, on PATH or under pyenv
  local version candidate
  for version in "$@"; do
    for candidate in "python$version" "$(pyenv root 2>/dev/null)"/versions/"$version"*/bin/python; do
      if "$candidate" --version >/dev/null 2>&1; then command -v "$candidate"; return; fi
    done
  done
  echo "jaxae: no Python $* found (set PYTHON=/path/to/python)" >&2
  return 1
}

case "$stack" in
  newest) venv=.venv; python="${PYTHON:-$(find_python 3.13 3.12)}"; pins=(--upgrade --upgrade-strategy eager) ;;
  oldest) venv=.venv-oldest; python="${PYTHON:-$(find_python 3.11)}"; pins=(--constraint scripts/oldest-stack.txt) ;;
  *) echo "jaxae: JAXAE_STACK must be newest or oldest, got '$stack'" >&2; exit 2 ;;
esac
if [ ! -x "$venv/bin/python" ]; then
  echo "jaxae: creating $venv with $("$python" --version)"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -qq --upgrade pip
fi
echo "jaxae: installing jaxae$1 into $venv (the $stack supported stack)"
# -qq and no build-backend warnings: errors still print (and stop the script); the rest is noise.
PYTHONWARNINGS=ignore "$venv/bin/python" -m pip install -qq "${pins[@]}" --editable ".$1"
# Off this machine's Python 3.11 the index's torch is a CUDA build, whose triton, imported after JAX and
# TensorFlow, has crashed pytest workers; the parity tests run torch on the CPU and need no triton.
if "$venv/bin/python" -m pip show -qq triton 2>/dev/null; then "$venv/bin/python" -m pip uninstall -qq -y triton; fi
export PATH="$PWD/$venv/bin:$PATH"
