"""Aggregated statistics: queries, the CRM quarterly matrices, computation and protection.

Only aggregate cells leave the node, after the disclosure-control profile of the agreement
that allows the request has been applied (:mod:`policies.disclosure`).
"""
