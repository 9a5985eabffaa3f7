"""The pure halves of the other central services: what their messages mean, with no I/O.

- :mod:`~acnet_proto.services.daq`: DPM over gRPC (the DAQ service) as readings and results;
- :mod:`~acnet_proto.services.devdb`: DevDB's device records, and a TTL cache;
- :mod:`~acnet_proto.services.dmq`: DMQ's keys, signed layout, samples and client jobs;
- :mod:`~acnet_proto.services.acl`: the ACL CGI's query text and printed output.

The clients that do the I/O are in ``acnet_proto.adapters``; the simulated
servers' side is :mod:`acnet_proto.sim`.
"""
