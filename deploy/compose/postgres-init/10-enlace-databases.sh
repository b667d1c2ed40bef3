#!/bin/sh
# PostgreSQL first-start script (run once by the postgres image, as the postgres user, from
# /docker-entrypoint-initdb.d): one role and one database per node, nothing shared.
#
# For each name in ENLACE_NODES (e.g. "pan cri hnd crm") it creates the login role
# enlace_<name> with the password read from /run/secrets/db_<name>, and the database
# enlace_<name> owned by that role, which no other role may connect to. The password travels
# to the server as a psql variable quoted by psql itself (:'password'), never pasted into SQL.
#
# PSQL overrides the client command (tests point it at another server); PGHOST, PGPORT,
# PGUSER and PGDATABASE are honoured as usual.
set -eu

secrets_dir=${ENLACE_SECRETS_DIR:-/run/secrets}
psql_cmd=${PSQL:-psql}
export PGUSER="${PGUSER:-${POSTGRES_USER:-postgres}}"
export PGDATABASE="${PGDATABASE:-${POSTGRES_DB:-postgres}}"

nodes=${ENLACE_NODES:?set ENLACE_NODES, e.g. "pan cri hnd crm"}

# Check every name and secret before creating anything.
for name in $nodes; do
  case $name in
    *[!a-z0-9_]*)
      echo "10-enlace-databases: invalid node name '$name' (a-z, 0-9, _ only)" >&2
      exit 1
      ;;
  esac
  if [ ! -s "$secrets_dir/db_$name" ]; then
    echo "10-enlace-databases: missing or empty $secrets_dir/db_$name" >&2
    exit 1
  fi
done

for name in $nodes; do
  password=$(cat "$secrets_dir/db_$name")
  role=enlace_$name
  $psql_cmd -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
    -v role="$role" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
  echo "10-enlace-databases: created role and database $role"
done
