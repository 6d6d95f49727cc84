#!/usr/bin/env bash
# The test command (scripts/test.sh) from a fresh clone of this repository, under conditions the suite
# was not written under, one after another, with one summary line per condition at the end:
#   one-core    taskset -c 0: a single CPU core
#   non-root    a user who is not root (created with useradd as `jaxae-tester` when run as root);
#               the browser and tmpfs tests skip, with their messages. It needs a Python that this
#               user can run: PYTHON= if given, else the system's python3 with the stack that fits it
#               (3.11: JAXAE_STACK=oldest), since root's pyenv is out of the user's reach
#   empty-home  $HOME on a fresh empty folder: no pip, compilation or dataset caches
#   user-flags  XLA_FLAGS and JAX_PLATFORMS=cpu set by the user beforehand
# Each condition clones anew and installs into the clone (as test.sh does): about 40 minutes in all.
#
# Usage: bash scripts/test-anywhere.sh [--only COND[,COND...]] [--python VENV_PYTHON] [-- PYTEST ARGS...]
#   --only     run these conditions only
#   --python   skip the install: run pytest with this virtual environment's python on the clone
#              (quick checks of the conditions themselves, e.g. with `-- -k test_losses`)
# Logs: the folder printed at the start, one log per condition; each clone is removed once its condition ends.
set -uo pipefail
repository="$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
conditions=(one-core non-root empty-home user-flags)
python=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) IFS=, read -r -a conditions <<<"$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
user_flags="--xla_cpu_multi_thread_eigen=false --xla_force_host_platform_device_count=2"
work="$(mktemp -d /tmp/jaxae-anywhere.XXXXXX)"
chmod 755 "$work"
echo "jaxae: cloning $repository for each of: ${conditions[*]}; logs in $work"

# The test command inside the clone, as one shell line (pytest's arguments quoted).
command_line() {
  local pytest_args
  pytest_args="$(printf ' %q' -rs "$@")"  # -rs: each skipped test's reason, in the log
  if [ -n "$python" ]; then
    echo "PYTHONPATH=\$PWD $(printf %q "$python") -m pytest -n 2 -p no:cacheprovider$pytest_args"
  else
    echo "bash scripts/test.sh$pytest_args"
  fi
}

run_condition() {  # run_condition NAME PYTEST_ARGS...: the exit status of the test command under NAME
  local name="$1" clone="$work/$1/jaxae" line
  shift
  git clone -q "$repository" "$clone" || return 1
  line="cd $(printf %q "$clone") && $(command_line "$@")"
  case "$name" in
    one-core) taskset -c 0 bash -c "$line" ;;
    non-root)
      if [ "$(id -u)" != 0 ]; then bash -c "$line"; return; fi
      id jaxae-tester >/dev/null 2>&1 || useradd --create-home jaxae-tester || return 1
      chown -R jaxae-tester "$work/$name"
      local user_python="${PYTHON:-/usr/bin/python3}" stack="${JAXAE_STACK:-}"
      if [ -z "${PYTHON:-}" ] && [ -z "$stack" ] && "$user_python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        stack=oldest  # the system's Python 3.11 is the oldest end's
      fi
      runuser -u jaxae-tester -- env -i PATH="/usr/local/bin:/usr/bin:/bin" PYTHON="$user_python" ${stack:+JAXAE_STACK="$stack"} \
        HOME="$(getent passwd jaxae-tester | cut -d: -f6)" bash -c "$line" ;;
    empty-home)
      mkdir "$work/$name/home"
      env -u XDG_CACHE_HOME -u PIP_CACHE_DIR -u JAX_COMPILATION_CACHE_DIR -u JAXAE_COMPILATION_CACHE \
        HOME="$work/$name/home" bash -c "$line" ;;
    user-flags) XLA_FLAGS="$user_flags" JAX_PLATFORMS=cpu bash -c "$line" ;;
    *) echo "jaxae: unknown condition '$name' (one of: one-core non-root empty-home user-flags)" >&2; return 2 ;;
  esac
}

summary=()
for name in "${conditions[@]}"; do
  mkdir -p "$work/$name"
  echo "jaxae: $name ..."
  started=$SECONDS
  run_condition "$name" "$@" >"$work/$name.log" 2>&1
  status=$?
  rm -rf "${work:?}/$name"  # the clone and its virtual environment (about 7 GB); the log stays
  result="$(grep -E '^=+ .*(passed|failed|error).* =+$' "$work/$name.log" | tail -1 | tr -d '=' | xargs)"
  summary+=("$name: $([ $status = 0 ] && echo PASS || echo "FAIL ($status)") ${result:-no pytest summary}, $((SECONDS - started)) s; log $work/$name.log")
done
printf '%s\n' "${summary[@]}"
for line in "${summary[@]}"; do [[ "$line" == *": PASS "* ]] || exit 1; done
