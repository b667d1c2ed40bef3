#!/usr/bin/env bash
# Static checks of the whole repository: ruff check, ruff format --check, mypy.
#
# Usage: scripts/lint.sh              (from anywhere; uses .venv/bin tools when present)
#
# Why: one command that CI (.ci/run) and developers run identically. All three checks run
# even when an earlier one fails, so one run reports every problem; the exit status is
# non-zero when any of them failed. Configuration lives in pyproject.toml only.
set -euo pipefail
export LC_NUMERIC=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

tool() {
  if [[ -x "$root/.venv/bin/$1" ]]; then
    printf '%s\n' "$root/.venv/bin/$1"
  elif command -v "$1" >/dev/null 2>&1; then
    command -v "$1"
  else
    printf 'lint: error: %s not found; run: .venv/bin/pip install -e '"'"'.[dev]'"'"'\n' \
      "$1" >&2
    return 1
  fi
}
ruff_bin=$(tool ruff)
mypy_bin=$(tool mypy)

now() { printf '%s\n' "${EPOCHREALTIME:-$(date +%s)}"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fs", b - a }'; }

failed=()
run_check() {
  local name=$1
  shift
  local start end rc=0
  printf -- '--- lint: %s\n' "$name"
  start=$(now)
  "$@" || rc=$?
  end=$(now)
  if [[ $rc -eq 0 ]]; then
    printf -- '--- lint: %s ok (%s)\n' "$name" "$(elapsed "$start" "$end")"
  else
    printf -- '--- lint: %s FAILED with exit code %d (%s)\n' "$name" "$rc" \
      "$(elapsed "$start" "$end")"
    failed+=("$name")
  fi
}

run_check "ruff check" "$ruff_bin" check .
run_check "ruff format --check" "$ruff_bin" format --check .
run_check "mypy" "$mypy_bin"

if [[ ${#failed[@]} -gt 0 ]]; then
  printf 'lint: FAILED:' >&2
  printf ' [%s]' "${failed[@]}" >&2
  printf '\n' >&2
  echo "lint: fix with 'ruff check --fix .' and 'ruff format .'; mypy errors need code changes" >&2
  exit 1
fi
echo "lint: all checks passed"
