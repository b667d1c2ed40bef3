#!/usr/bin/env bash
# Fail when the committed enlace/v1 code no longer matches protos/enlace/v1/*.proto.
#
# Why: generated code is committed (a node installs without protoc); a change to a .proto that
# was not regenerated, or a hand edit of generated code, would ship a wire format that differs
# from its documented source. This regenerates into a scratch directory and compares.
#
# Invariants: the working tree is never modified; every differing, missing or stale generated
# file is named, followed by the fix. With no .proto files and no generated modules the check
# passes (the protocol simply does not exist yet).
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

scratch=$(mktemp -d)
trap 'rm -rf -- "$scratch"' EXIT

generated_in() {
  # Generated module names (relative to enlace/v1) under the given output root, sorted.
  local dir=$1/enlace/v1
  [[ -d "$dir" ]] || return 0
  find "$dir" -maxdepth 1 -type f \
    \( -name '*_pb2.py' -o -name '*_pb2.pyi' -o -name '*_pb2_grpc.py' \) \
    -printf '%f\n' | sort
}

shopt -s nullglob
protos=(protos/enlace/v1/*.proto)
shopt -u nullglob

if [[ ${#protos[@]} -eq 0 && -z "$(generated_in "$root")" ]]; then
  echo "check_proto_drift: no .proto files under protos/enlace/v1 and no generated code; ok"
  exit 0
fi

bash scripts/gen_protos.sh "$scratch" 2>"$scratch.log" || {
  cat "$scratch.log" >&2
  rm -f "$scratch.log"
  echo "check_proto_drift: error: scripts/gen_protos.sh failed (output above)" >&2
  exit 1
}
rm -f "$scratch.log"

problems=()
details=""
while IFS= read -r name; do
  committed=enlace/v1/$name
  if [[ ! -f "$committed" ]]; then
    problems+=("missing   $committed")
  elif ! cmp -s "$committed" "$scratch/enlace/v1/$name"; then
    problems+=("differs   $committed")
    details+=$(diff -u --label "committed $committed" --label "regenerated $committed" \
      "$committed" "$scratch/enlace/v1/$name" | head -n 30 || true)
    details+=$'\n'
  fi
done < <(generated_in "$scratch")

while IFS= read -r name; do
  if [[ ! -f "$scratch/enlace/v1/$name" ]]; then
    problems+=("stale     enlace/v1/$name (its .proto no longer exists)")
  fi
done < <(generated_in "$root")

for pkg in enlace/__init__.py enlace/v1/__init__.py; do
  [[ -f "$pkg" ]] || problems+=("missing   $pkg")
done

if [[ ${#problems[@]} -gt 0 ]]; then
  {
    echo "check_proto_drift: FAILED: the generated code in enlace/v1 does not match protos/:"
    printf '  %s\n' "${problems[@]}"
    if [[ -n "$details" ]]; then
      echo
      echo "First lines of each difference:"
      printf '%s' "$details"
    fi
    echo
    echo "Fix: run scripts/gen_protos.sh, then commit protos/ and enlace/ together, e.g."
    echo "  bash scripts/gen_protos.sh && git add -A enlace/ protos/ && git commit"
    echo "(generated code is never edited by hand)"
  } >&2
  exit 1
fi

# Generated code that is on disk but not committed would pass here and fail on a fresh clone.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  untracked=$(git ls-files --others --exclude-standard -- enlace/ || true)
  if [[ -n "$untracked" ]]; then
    echo "check_proto_drift: warning: generated files not committed yet:" >&2
    printf '  %s\n' "${untracked//$'\n'/$'\n'  }" >&2
  fi
fi

echo "check_proto_drift: ${#protos[@]} proto file(s); enlace/v1 matches its sources"
