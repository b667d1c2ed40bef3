"""Bilateral sharing agreements: model, signatures, evaluation, quotas, disclosure profiles.

Everything here is pure (no I/O); the node passes ``now`` and the store-backed counters in.
"""
