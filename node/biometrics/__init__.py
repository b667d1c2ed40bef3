"""Biometric matching at the holder: per-peer galleries of protected codes and synthetic faces.

The protection itself (pairwise keys, keyed projections) is pure and lives in
:mod:`crypto.biohash`; this package holds what a node keeps and searches:
:mod:`node.biometrics.gallery` (exact Hamming search, score bands, persistence) and
:mod:`node.biometrics.synthetic` (embeddings for the evaluation harness and the tests).
Raw templates never leave the node; only codes computed under a pairwise key do.
"""
