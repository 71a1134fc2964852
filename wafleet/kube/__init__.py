"""Kubernetes access shared by the connector and the API: a small async client and the CR."""
