"""Bridges from GateBench gates to the models of other libraries."""
