"""The KDC the fixtures start lives in the package (the demo uses it too)."""

from acnet_proto.adapters.sim.kdc import KDC, REALM, SERVICES, USERS, start_kdc

__all__ = ["KDC", "REALM", "SERVICES", "USERS", "start_kdc"]
