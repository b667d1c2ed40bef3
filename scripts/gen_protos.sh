#!/usr/bin/env bash
# Regenerate the Python code of the wire protocol from protos/enlace/v1/*.proto.
#
# Usage: scripts/gen_protos.sh [OUTPUT_ROOT]       (default: the repository root)
#
# Why: the generated modules are committed so that an installed node needs no protoc, and
# scripts/check_proto_drift.sh fails CI when they no longer match their sources.
#
# Invariants:
#   * the proto package (enlace.v1), the folder (protos/enlace/v1, enlace/v1) and the Python
#     import path (enlace.v1.*_pb2) agree, because protoc runs with -Iprotos;
#   * the output is deterministic: sources are passed in byte order (LC_ALL=C) to the pinned
#     grpcio-tools protoc, and nothing time- or host-dependent is written;
#   * enlace/__init__.py and enlace/v1/__init__.py exist afterwards (created, never overwritten);
#   * generated modules whose .proto is gone are deleted, so the output mirrors the sources.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root}
mkdir -p "$out"
out=$(cd "$out" && pwd)

python_bin=${PYTHON:-}
if [[ -z "$python_bin" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then
    python_bin=$root/.venv/bin/python
  else
    python_bin=$(command -v python3)
  fi
fi

cd "$root"
shopt -s nullglob
protos=(protos/enlace/v1/*.proto)
shopt -u nullglob

mkdir -p "$out/enlace/v1"
for pkg in "$out/enlace" "$out/enlace/v1"; do
  if [[ ! -e "$pkg/__init__.py" ]]; then
    printf '"""Generated from protos/enlace/v1 by scripts/gen_protos.sh; do not edit."""\n' \
      >"$pkg/__init__.py"
  fi
done

remove_generated() {
  local generated
  shopt -s nullglob
  for generated in "$out"/enlace/v1/*_pb2.py "$out"/enlace/v1/*_pb2.pyi \
    "$out"/enlace/v1/*_pb2_grpc.py; do
    rm -f -- "$generated"
  done
  shopt -u nullglob
}

if [[ ${#protos[@]} -eq 0 ]]; then
  remove_generated
  printf 'gen_protos: no .proto files under protos/enlace/v1; nothing to generate\n' >&2
  exit 0
fi
mapfile -t protos < <(printf '%s\n' "${protos[@]}" | sort)

if ! "$python_bin" -c 'import grpc_tools.protoc' 2>/dev/null; then
  printf 'gen_protos: error: %s cannot import grpc_tools; install the dev extras:\n' \
    "$python_bin" >&2
  printf "  .venv/bin/pip install -e '.[dev]'\n" >&2
  exit 1
fi

# Generate into a scratch directory first, so a protoc error leaves the output untouched.
scratch=$(mktemp -d)
trap 'rm -rf -- "$scratch"' EXIT
"$python_bin" -m grpc_tools.protoc -Iprotos \
  --python_out="$scratch" --pyi_out="$scratch" --grpc_python_out="$scratch" "${protos[@]}"

# Replace every generated module, so one whose .proto is gone cannot linger.
remove_generated
shopt -s nullglob
new_files=("$scratch"/enlace/v1/*)
shopt -u nullglob
cp -- "${new_files[@]}" "$out/enlace/v1/"

printf 'gen_protos: generated %d module(s) from %d proto file(s) into %s/enlace/v1\n' \
  "${#new_files[@]}" "${#protos[@]}" "$out" >&2
