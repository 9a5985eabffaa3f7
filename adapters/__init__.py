"""All of acnet-proto's I/O: sockets, threads, event loops, clocks, and the libraries that
do I/O (grpc, pika, gssapi, requests, paramiko). Installed as ``acnet_proto.adapters``.

Every adapter is a thin layer that moves bytes and keeps time for the pure core
(:mod:`acnet_proto`), which decides everything else:

- :mod:`~acnet_proto.adapters.dpm`: DPM over TCP (sync, threaded, asyncio, trio);
- :mod:`~acnet_proto.adapters.grpc`: DPM over gRPC;
- :mod:`~acnet_proto.adapters.dmq`: DMQ over RabbitMQ;
- :mod:`~acnet_proto.adapters.acl` and :mod:`~acnet_proto.adapters.devdb`: ACL over
  HTTP, the DevDB client;
- :mod:`~acnet_proto.adapters.kerberos`: Kerberos through gssapi;
- :mod:`~acnet_proto.adapters.default`: the global backend behind ``acnet_proto.read()``;
- :mod:`~acnet_proto.adapters.sim`: the simulated servers;
- :mod:`~acnet_proto.adapters.proxy`: the supervised proxy and the recorder;
- :mod:`~acnet_proto.adapters.ssh`: SSH to ACNET hosts;
- :mod:`~acnet_proto.adapters.cli`: the command-line tools and the demo.
"""
