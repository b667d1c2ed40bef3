"""Passenger and crew manifests (UN/EDIFACT PAXLST, bus CSV): import, screening, retention."""
