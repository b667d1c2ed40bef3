"""The local federation demo: several real node processes on loopback, one signed directory."""
