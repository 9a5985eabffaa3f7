"""Fault injection for the client and server tests: a DPM-aware proxy on loopback."""

from tests.support.faults.proxy import DIRECTIONS, KINDS, Action, Connection, Fault, Proxy

__all__ = ["DIRECTIONS", "KINDS", "Action", "Connection", "Fault", "Proxy"]
