"""Operating a node for real: leader election, metrics, JSON logs, doctor, rotation, backups.

* :mod:`node.ops.leader` — one scheduler leader among the replicas of a node (PostgreSQL
  session advisory lock; a SQLite node is its own leader).
* :mod:`node.ops.metrics` — the Prometheus registry of a node and its HTTP endpoint.
* :mod:`node.ops.logging_json` — one JSON object per log line, with the request id.
* :mod:`node.ops.doctor` — checks an operator runs before calling for help, each with its fix.
* :mod:`node.ops.rotation` — signing-key and TLS-certificate rotation with overlapping
  validity, and the expiry report alarms are raised from.
* :mod:`node.ops.backup` — consistent backups (SQLite online backup, ``pg_dump``) and restore.

Nothing here changes what the request path decides: these modules observe it, schedule it
and keep its key material and database in shape.
"""
