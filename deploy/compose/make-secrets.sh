#!/bin/sh
# Create the database passwords of the compose federation in ./secrets, once.
#
# One random password per file: postgres.txt (the superuser) and <node>.txt for the role of
# each node's own database. Existing files are kept, so running it again never changes a
# password that PostgreSQL already holds. The directory is 0700 (only you can enter it); the
# files are 0644 because Docker mounts them as they are into containers running as other
# users (uid 999 for PostgreSQL, 10001 for the nodes), who must read them.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 700 secrets
for name in postgres pan cri hnd crm; do
  file=secrets/$name.txt
  if [ -s "$file" ]; then
    echo "kept    $file"
    continue
  fi
  # 32 random bytes, hex: no character needs quoting in a URL, SQL or shell.
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$file"
  chmod 644 "$file"
  echo "created $file"
done
