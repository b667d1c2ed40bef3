#!/bin/sh
# Entrypoint of the crm-enlace image: `enlace` with its arguments, after one optional step.
#
# ENLACE_DATABASE_PASSWORD_FILE names a file (a Docker or Kubernetes secret) holding the
# PostgreSQL password. It is exported as PGPASSWORD, which libpq (psycopg) uses when
# ENLACE_DATABASE_URL carries no password, so the password appears in no compose file, no
# node.toml and no `docker inspect` output. A missing or empty file stops the container
# before the node starts, with the reason on stderr.
set -eu

if [ -n "${ENLACE_DATABASE_PASSWORD_FILE:-}" ]; then
  if [ ! -r "$ENLACE_DATABASE_PASSWORD_FILE" ]; then
    echo "enlace-entrypoint: cannot read ENLACE_DATABASE_PASSWORD_FILE=$ENLACE_DATABASE_PASSWORD_FILE" >&2
    exit 78
  fi
  PGPASSWORD=$(cat "$ENLACE_DATABASE_PASSWORD_FILE")
  if [ -z "$PGPASSWORD" ]; then
    echo "enlace-entrypoint: $ENLACE_DATABASE_PASSWORD_FILE is empty" >&2
    exit 78
  fi
  export PGPASSWORD
  unset ENLACE_DATABASE_PASSWORD_FILE
fi

exec enlace "$@"
