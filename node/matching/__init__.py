"""Private identity matching (DESIGN section 7): what is OPRF-evaluated, and how hits are found.

:mod:`node.matching.keys` builds the exact byte strings fed to the OPRF from normalised records;
the filter, its manifest and the per-epoch OPRF keys are pure cryptography and live in
:mod:`crypto.filter` and :mod:`crypto.match_keys`.
"""
