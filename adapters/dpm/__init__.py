"""DPM over TCP, for every I/O style, each a thin layer over the one engine.

- :mod:`~acnet_proto.adapters.dpm.sync`: :class:`SyncClient`, one socket, for scripts;
- :mod:`~acnet_proto.adapters.dpm.threaded`: :class:`DPMBackend`, pooled and
  thread-safe (``acnet_proto.dpm()``);
- :mod:`~acnet_proto.adapters.dpm.asyncio` and :mod:`~acnet_proto.adapters.dpm.trio`:
  the same backend (``_async``) on each library's own primitives;
- ``_blocking``: the socket link the sync and threaded clients share.

What to send and what replies mean is decided in the core
(:mod:`acnet_proto.engine`, :mod:`acnet_proto.plans`, :mod:`acnet_proto.streams`).
"""
