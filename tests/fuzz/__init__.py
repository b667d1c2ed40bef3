"""Fuzzing of every RPC handler and every parser (hypothesis); see ``docs/assurance.md``."""
