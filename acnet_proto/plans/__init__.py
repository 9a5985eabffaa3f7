"""Plans: what to send for a read or a write, and how the replies fold into results.

- :mod:`~acnet_proto.plans.lists`: DPM lists (one-shot reads, streams) and their
  replies as :class:`~acnet_proto.types.Reading` objects;
- :mod:`~acnet_proto.plans.settings`: the Kerberos settings flow and the write list.

A plan runs on a :class:`~acnet_proto.engine.ClientConnection`; every DPM
adapter uses the same plans, so they only move bytes.
"""
