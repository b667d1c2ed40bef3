#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the test suite.
#
# Why: the store must behave the same on SQLite and PostgreSQL, so CI (and any developer)
# needs a real server that costs nothing to set up and leaves nothing behind.
#
# Invariants:
#   * the server listens on 127.0.0.1 only (TCP) plus a Unix socket inside its data directory;
#     authentication is `trust` for 127.0.0.1 and the local socket, nothing else is allowed;
#   * the data directory is a fresh `mktemp -d`; durability is switched off (fsync,
#     synchronous_commit, full_page_writes) because the data is thrown away;
#   * stdout carries only `export NAME=value` lines, so callers can write
#         eval "$(scripts/start_postgres.sh)"
#     everything else (progress, errors) goes to stderr;
#   * on failure nothing is left running and the data directory is removed.
#
# PostgreSQL refuses to run as root: when started as root the cluster belongs to the system
# user `postgres` (created if missing) and every server command runs through `runuser`.
# Stop and remove the server with scripts/stop_postgres.sh.
#
# Environment: PG_BINDIR (directory holding initdb/pg_ctl; found automatically otherwise),
# ENLACE_PG_DATABASE (default enlace_test), ENLACE_PG_MAX_CONNECTIONS (default 200).
set -euo pipefail

log() { printf 'start_postgres: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

database=${ENLACE_PG_DATABASE:-enlace_test}
max_connections=${ENLACE_PG_MAX_CONNECTIONS:-200}
[[ "$database" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] ||
  die "ENLACE_PG_DATABASE must be a plain identifier (letters, digits, _), not '$database'"
[[ "$max_connections" =~ ^[0-9]+$ ]] || die "ENLACE_PG_MAX_CONNECTIONS must be a number"

# --- locate the server binaries ----------------------------------------------------------------
find_bindir() {
  if [[ -n "${PG_BINDIR:-}" ]]; then
    printf '%s\n' "$PG_BINDIR"
    return 0
  fi
  local initdb_path
  if initdb_path=$(command -v initdb 2>/dev/null) && command -v pg_ctl >/dev/null 2>&1; then
    # Follow symlinks so that createdb/pg_isready come from the same installation.
    dirname "$(readlink -f "$initdb_path")"
    return 0
  fi
  local candidate
  while IFS= read -r candidate; do
    if [[ -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -V -r)
  return 1
}

if ! bindir=$(find_bindir); then
  if [[ $(id -u) -eq 0 && -n "${CI:-}" ]] && command -v apt-get >/dev/null 2>&1; then
    log "no PostgreSQL server binaries found; installing the distribution's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    bindir=$(find_bindir) || die "postgresql was installed but initdb/pg_ctl are still missing"
  else
    die "initdb/pg_ctl not found on PATH nor under /usr/lib/postgresql/*/bin;" \
      "install PostgreSQL (Debian: apt-get install postgresql) or set PG_BINDIR"
  fi
fi
for tool in initdb pg_ctl; do
  [[ -x "$bindir/$tool" ]] || die "$bindir/$tool is missing or not executable"
done
pg_isready_bin=$bindir/pg_isready
[[ -x "$pg_isready_bin" ]] || pg_isready_bin=$(command -v pg_isready || true)
psql_bin=$bindir/psql
[[ -x "$psql_bin" ]] || psql_bin=$(command -v psql || true)
[[ -n "$psql_bin" ]] || die "psql not found next to $bindir/initdb nor on PATH"

python_bin=${PYTHON:-}
if [[ -z "$python_bin" ]]; then
  python_bin=$(command -v python3 || command -v python || true)
fi
[[ -n "$python_bin" ]] || die "python3 is needed to pick a free port"

# --- who owns the cluster ---------------------------------------------------------------------
as_root=false
if [[ $(id -u) -eq 0 ]]; then
  as_root=true
  if ! id -u postgres >/dev/null 2>&1; then
    log "creating system user postgres"
    if getent group postgres >/dev/null 2>&1; then
      useradd --system --create-home --gid postgres --shell /bin/sh postgres
    else
      useradd --system --create-home --user-group --shell /bin/sh postgres
    fi
  fi
  command -v runuser >/dev/null 2>&1 || die "running as root needs runuser (util-linux)"
fi

# Run a server-side command as the cluster owner, from a directory that owner can read.
as_owner() {
  if $as_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# --- data directory ---------------------------------------------------------------------------
data_dir=$(mktemp -d "${TMPDIR:-/tmp}/enlace-pg.XXXXXXXXXX")
case "$data_dir" in
  *[[:space:]\'\"\\]*)
    rmdir "$data_dir"
    die "temporary directory '$data_dir' contains whitespace or quotes; set TMPDIR elsewhere"
    ;;
esac
server_started=false

cleanup_on_failure() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    if $server_started; then
      as_owner "$bindir/pg_ctl" -D "$data_dir" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [[ -f "$data_dir/server.log" ]]; then
      log "last lines of the server log:"
      tail -n 20 "$data_dir/server.log" >&2 || true
    fi
    rm -rf -- "$data_dir"
  fi
}
trap cleanup_on_failure EXIT

chmod 700 "$data_dir"
if $as_root; then
  chown postgres:postgres "$data_dir"
fi

log "initialising a cluster in $data_dir"
as_owner "$bindir/initdb" -D "$data_dir" -U postgres -E UTF8 --locale=C \
  --auth-local=trust --auth-host=trust >"$data_dir.initdb.log" 2>&1 || {
  cat "$data_dir.initdb.log" >&2
  rm -f "$data_dir.initdb.log"
  die "initdb failed"
}
rm -f "$data_dir.initdb.log"

# Only the local socket and 127.0.0.1 may connect; no IPv6, no other address, no password.
cat >"$data_dir/pg_hba.conf" <<'HBA'
# Throwaway test cluster written by scripts/start_postgres.sh.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
HBA
if $as_root; then
  chown postgres:postgres "$data_dir/pg_hba.conf"
fi

free_port() {
  "$python_bin" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# The port is free when picked but another process may take it before the server binds it;
# try a few ports before giving up.
port=""
for attempt in 1 2 3 4 5; do
  candidate_port=$(free_port)
  options="-c port=$candidate_port -c listen_addresses=127.0.0.1"
  options+=" -c unix_socket_directories='$data_dir'"
  options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  options+=" -c max_connections=$max_connections"
  rm -f "$data_dir/server.log"
  if pg_ctl_output=$(as_owner "$bindir/pg_ctl" -D "$data_dir" -l "$data_dir/server.log" \
    -w -t 60 -o "$options" start 2>&1); then
    server_started=true
    port=$candidate_port
    break
  fi
  if grep -q 'could not bind\|Address already in use' "$data_dir/server.log" 2>/dev/null; then
    log "port $candidate_port was taken (attempt $attempt); trying another"
    continue
  fi
  printf '%s\n' "$pg_ctl_output" >&2
  die "pg_ctl could not start the server"
done
[[ -n "$port" ]] || die "no free port found after 5 attempts"

# pg_ctl -w already waited for the postmaster; also wait for TCP on 127.0.0.1 to answer.
ready=false
for _ in $(seq 1 100); do
  if [[ -n "$pg_isready_bin" ]]; then
    if "$pg_isready_bin" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
      ready=true
      break
    fi
  elif "$psql_bin" -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc 'SELECT 1' \
    >/dev/null 2>&1; then
    ready=true
    break
  fi
  sleep 0.2
done
$ready || die "the server did not accept connections on 127.0.0.1:$port within 20 s"

"$psql_bin" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atq \
  -c "CREATE DATABASE \"$database\"" >&2 || die "could not create database $database"

version=$("$psql_bin" -h 127.0.0.1 -p "$port" -U postgres -d "$database" -Atqc 'SHOW server_version')
log "PostgreSQL $version ready on 127.0.0.1:$port, database $database, data in $data_dir"

trap - EXIT
printf 'export ENLACE_TEST_POSTGRES_URL=%s\n' \
  "postgresql+psycopg://postgres@127.0.0.1:$port/$database"
printf 'export ENLACE_PG_DATA=%q\n' "$data_dir"
printf 'export ENLACE_PG_PORT=%s\n' "$port"
printf 'export ENLACE_PG_BINDIR=%q\n' "$bindir"
