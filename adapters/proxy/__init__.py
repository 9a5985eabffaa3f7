"""Servers that stand between clients and a DPM.

- :mod:`~acnet_proto.adapters.proxy.supervised`: the supervised DAQ gRPC proxy in
  front of any backend, enforcing policies (:mod:`acnet_proto.proxy`) and auditing;
- :mod:`~acnet_proto.adapters.proxy.record`: a DPM/TCP proxy recording transcripts.
"""
