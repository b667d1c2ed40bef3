"""The node's store: one database (SQLite by default, PostgreSQL in production).

Public surface: :class:`Store` (opened with :func:`open_store`), whose methods are the only
way node code reads or writes the database. The contract tests in
``tests/integration/test_store_contract.py`` run every method on both backends.
"""

from node.store.store import Store, open_store

__all__ = ["Store", "open_store"]
