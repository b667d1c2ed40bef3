"""Faults: SIGKILL mid-write, lost database, full disk, hung peers; see ``docs/assurance.md``."""
