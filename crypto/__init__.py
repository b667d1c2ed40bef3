"""Cryptographic building blocks of crm-enlace.

Public surface: :mod:`crypto.errors` (the exception hierarchy), :mod:`crypto.signing`
(Ed25519 with domain separation), :mod:`crypto.keys` (node key material on disk),
:mod:`crypto.envelope` (signed request/response headers), and, as they land,
:mod:`crypto.oprf` (RFC 9497) and template protection for biometrics.
"""
