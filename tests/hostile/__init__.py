"""Hostile peers: the toolkit that builds malicious requests, and the attacks it drives.

A package (not a bare test directory) so that ``tests/fuzz`` and ``tests/faults`` import the
same toolkit as ``hostile.toolkit``.
"""
