"""DPM over gRPC (the DAQ service), for every I/O style.

- :mod:`~acnet_proto.adapters.grpc.threaded`: :class:`GRPCBackend`, blocking and
  thread-safe (``acnet_proto.grpc()``);
- :mod:`~acnet_proto.adapters.grpc.asyncio`: on ``grpc.aio``;
- :mod:`~acnet_proto.adapters.grpc.trio`: grpc's blocking calls in trio's worker
  threads (needs the ``grpc`` and ``trio`` extras);
- ``_common``: what the three share (configuration, failures, blocking calls,
  the stream thread);
- :mod:`~acnet_proto.adapters.grpc.server`: the base of the gRPC servers (the
  simulated DAQ and DevDB, the supervised proxy);
- ``stubs``: the generated service stubs (``scripts/regen-protos``).

The messages are made and read by :mod:`acnet_proto.services.daq`, in the core.
"""
