"""Servers that stand between clients and a DPM: the supervised gRPC proxy and the recorder."""
