"""The simulated servers, each a thin I/O layer over the simulator's pure half
(:mod:`acnet_proto.sim`), sharing one device model when started together.

- :mod:`~acnet_proto.adapters.sim.dpm`: DPM over TCP (:class:`SimServer`, on asyncio);
- :mod:`~acnet_proto.adapters.sim.daq`: the DAQ gRPC service (DPM over gRPC);
- :mod:`~acnet_proto.adapters.sim.devdb`: the DevDB gRPC service;
- :mod:`~acnet_proto.adapters.sim.acl`: the ACL CGI over HTTP;
- :mod:`~acnet_proto.adapters.sim.dmq`: DMQ, a consumer on a RabbitMQ broker;
- :mod:`~acnet_proto.adapters.sim.kdc`: a throw-away MIT Kerberos KDC (demo, tests).
"""
