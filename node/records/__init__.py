"""Local records: the canonical forms every node agrees on before anything is hashed or counted.

ICAO 9303 document numbers and MRZs (:mod:`node.records.icao`), names (:mod:`node.records.names`),
partial dates (:mod:`node.records.dates`), the regional code lists
(:mod:`node.records.codelists`) and each node's equivalence table
(:mod:`node.records.equivalence`). Two countries must turn the same passport into the same bytes,
so every rule here is versioned and documented in ``docs/normalisation.md``.
"""
