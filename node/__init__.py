"""The crm-enlace node: gRPC services, peer client, store, ingest, jobs, secretariat and CLI."""

__version__ = "0.1.0"
PROTOCOL_VERSION = "enlace/1"
