#!/usr/bin/env bash
# Stop a server started by scripts/start_postgres.sh and delete its data directory.
#
# Usage: scripts/stop_postgres.sh [DATA_DIR]        (default: $ENLACE_PG_DATA)
#
# Why: CI's exit trap and developers both need one safe way to throw the test cluster away.
# Invariants: only a directory that start_postgres.sh made (named enlace-pg.* and holding
# PG_VERSION, or already empty) is ever deleted; stopping an already stopped or already removed
# server succeeds, so the script can run from an exit trap after any failure.
set -euo pipefail

log() { printf 'stop_postgres: %s\n' "$*" >&2; }

data_dir=${1:-${ENLACE_PG_DATA:-}}
if [[ -z "$data_dir" ]]; then
  log "error: no data directory given and ENLACE_PG_DATA is not set"
  exit 2
fi
if [[ ! -d "$data_dir" ]]; then
  log "$data_dir does not exist; nothing to stop"
  exit 0
fi
case "$(basename "$data_dir")" in
  enlace-pg.*) ;;
  *)
    log "error: refusing to touch $data_dir: not a directory made by start_postgres.sh"
    exit 2
    ;;
esac

if [[ -f "$data_dir/PG_VERSION" ]]; then
  bindir=${ENLACE_PG_BINDIR:-${PG_BINDIR:-}}
  if [[ -z "$bindir" ]]; then
    if pg_ctl_path=$(command -v pg_ctl 2>/dev/null); then
      bindir=$(dirname "$(readlink -f "$pg_ctl_path")")
    else
      bindir=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V -r | head -n 1 || true)
    fi
  fi
  owner_cmd=()
  if [[ $(id -u) -eq 0 ]] && id -u postgres >/dev/null 2>&1; then
    owner_cmd=(runuser -u postgres --)
  fi
  if [[ -f "$data_dir/postmaster.pid" ]]; then
    if [[ -n "$bindir" && -x "$bindir/pg_ctl" ]] &&
      (cd / && "${owner_cmd[@]}" "$bindir/pg_ctl" -D "$data_dir" -m fast -w -t 30 stop \
        >/dev/null 2>&1); then
      log "server stopped"
    else
      # pg_ctl missing or the fast shutdown hung: end the postmaster this cluster recorded.
      pid=$(head -n 1 "$data_dir/postmaster.pid" 2>/dev/null || true)
      if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        log "pg_ctl stop failed; sending SIGQUIT to postmaster $pid"
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  fi
elif [[ -n "$(ls -A "$data_dir")" ]]; then
  log "error: refusing to delete $data_dir: it holds files but no PG_VERSION"
  exit 2
fi

rm -rf -- "$data_dir"
log "removed $data_dir"
